// Certificates for a first run (a self-signed pair the gateway makes for itself) and their fingerprints.
#include "tls/tls.hpp"
#include "tls/report.hpp"

// clang-format off
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>
// clang-format on

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace ringtun::tls {

namespace {

// Writes the whole file with `mode`, replacing any old one atomically (write to a temporary name, then rename).
Status write_file(const std::string& path, const std::vector<std::uint8_t>& bytes, mode_t mode,
                  std::string* error_text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return detail::report(error_text, path + ": cannot create: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return detail::report(error_text, path + ": cannot write: " + std::strerror(saved));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    return detail::report(error_text, path + ": cannot write: " + std::strerror(saved));
  }
  return {};
}

Result<std::vector<std::uint8_t>> to_pem(const std::vector<std::uint8_t>& der, int type, std::string* error_text) {
  std::vector<std::uint8_t> pem(der.size() * 2 + 256);
  const int n = wc_DerToPem(der.data(), static_cast<word32>(der.size()), pem.data(), static_cast<word32>(pem.size()),
                            type);
  if (n <= 0) return detail::report(error_text, "cannot encode PEM (wolfSSL error " + std::to_string(n) + ")");
  pem.resize(static_cast<std::size_t>(n));
  return pem;
}

// subjectAltName: one dNSName. DER: SEQUENCE { [2] IA5String }.
int encode_dns_alt_name(const std::string& name, std::uint8_t* out, std::size_t capacity) {
  if (name.size() > 120 || name.size() + 4 > capacity) return -1;
  out[0] = 0x30;
  out[1] = static_cast<std::uint8_t>(name.size() + 2);
  out[2] = 0x82;
  out[3] = static_cast<std::uint8_t>(name.size());
  std::memcpy(out + 4, name.data(), name.size());
  return static_cast<int>(name.size() + 4);
}

}  // namespace

Status generate_self_signed(const std::string& cert_path, const std::string& key_path, const std::string& common_name,
                            unsigned days, std::string* error_text) {
  init_library();
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) return detail::report(error_text, "cannot initialise wolfSSL's random generator");
  ecc_key key;
  wc_ecc_init(&key);
  Cert cert;
  std::vector<std::uint8_t> cert_der(4096), key_der(512);
  int cert_size = -1, key_size = -1;
  const int made = wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1);
  if (made == 0 && wc_InitCert(&cert) == 0) {
    std::snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", common_name.c_str());
    std::snprintf(cert.subject.org, CTC_NAME_SIZE, "%s", "ringtun");
    cert.daysValid = static_cast<int>(days);
    cert.isCA = 0;
    cert.selfSigned = 1;
    cert.sigType = CTC_SHA256wECDSA;
    cert.altNamesSz = encode_dns_alt_name(common_name, cert.altNames, sizeof cert.altNames);
    if (cert.altNamesSz < 0) cert.altNamesSz = 0;
    const int body = wc_MakeCert_ex(&cert, cert_der.data(), static_cast<word32>(cert_der.size()), ECC_TYPE, &key, &rng);
    if (body > 0) {
      cert_size = wc_SignCert_ex(cert.bodySz, cert.sigType, cert_der.data(), static_cast<word32>(cert_der.size()),
                                 ECC_TYPE, &key, &rng);
    }
    key_size = wc_EccKeyToDer(&key, key_der.data(), static_cast<word32>(key_der.size()));
  }
  wc_ecc_free(&key);
  wc_FreeRng(&rng);
  if (made != 0 || cert_size <= 0 || key_size <= 0) {
    return detail::report(error_text, "cannot generate a self-signed certificate (wolfSSL error " +
                                      std::to_string(made != 0 ? made : (cert_size <= 0 ? cert_size : key_size)) +
                                      ")");
  }
  cert_der.resize(static_cast<std::size_t>(cert_size));
  key_der.resize(static_cast<std::size_t>(key_size));
  auto key_pem = to_pem(key_der, ECC_PRIVATEKEY_TYPE, error_text);
  if (!key_pem) return Unexpected{key_pem.error()};
  auto cert_pem = to_pem(cert_der, CERT_TYPE, error_text);
  if (!cert_pem) return Unexpected{cert_pem.error()};
  // The key first: a certificate without its key would be loaded and then fail.
  RINGTUN_TRY(write_file(key_path, *key_pem, 0600, error_text));
  RINGTUN_TRY(write_file(cert_path, *cert_pem, 0644, error_text));
  return {};
}

Result<std::string> fingerprint_of_pem_file(const std::string& path, std::string* error_text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return detail::report(error_text, path + ": cannot read the file");
  std::vector<unsigned char> pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (pem.size() > (1u << 20)) return detail::report(error_text, path + ": larger than 1 MiB: not a certificate");
  std::vector<unsigned char> der(pem.size());
  const int n = wc_CertPemToDer(pem.data(), static_cast<int>(pem.size()), der.data(), static_cast<int>(der.size()),
                                CERT_TYPE);
  if (n <= 0) return detail::report(error_text, path + ": no PEM certificate in the file");
  return fingerprint_of_der({der.data(), static_cast<std::size_t>(n)});
}

std::string fingerprint_of_der(std::span<const std::uint8_t> der) {
  std::uint8_t digest[WC_SHA256_DIGEST_SIZE] = {};
  (void)wc_Sha256Hash(der.data(), static_cast<word32>(der.size()), digest);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (std::uint8_t b : digest) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace ringtun::tls
