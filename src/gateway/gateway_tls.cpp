// The gateway's TLS identity: the configured certificate, or a self-signed pair kept in the state directory.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.hpp"
#include "gateway/gateway.hpp"

namespace ringtun::gateway {

namespace {

// $STATE_DIRECTORY (systemd's StateDirectory=), /var/lib/ringtun for root, else the XDG state directory.
std::string default_state_dir() {
  if (const char* systemd = std::getenv("STATE_DIRECTORY"); systemd != nullptr && *systemd != '\0') {
    std::string dir = systemd;
    return dir.substr(0, dir.find(':'));  // several directories: the first
  }
  if (::geteuid() == 0) return "/var/lib/ringtun";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg == '/') return std::string(xdg) + "/ringtun";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return std::string(home) + "/.local/state/ringtun";
  }
  return "ringtun-state";
}

// mkdir -p with mode 0700 for the directories it creates.
bool make_dirs(const std::string& path, std::string* why) {
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    const std::string prefix = path.substr(0, i);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      *why = prefix + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<std::shared_ptr<const tls::Context>> make_gateway_tls(const app::GatewayConfig& config) {
  if (config.common.insecure_plaintext) {
    LOG_WARN("--insecure-plaintext: tunnel traffic is NOT encrypted and agents cannot authenticate this gateway; "
             "use it on trusted links and for benchmarks only");
    return std::shared_ptr<const tls::Context>();
  }
  tls::ServerSettings settings;
  settings.cert_file = config.common.cert_file;
  settings.key_file = config.common.key_file;
  settings.client_ca_file = config.client_ca_file;
  std::string error;
  if (settings.cert_file.empty()) {
    const std::string dir = config.state_dir.empty() ? default_state_dir() : config.state_dir;
    settings.cert_file = dir + "/gateway-cert.pem";
    settings.key_file = dir + "/gateway-key.pem";
    if (!exists(settings.cert_file) || !exists(settings.key_file)) {
      if (!make_dirs(dir, &error)) {
        LOG_ERROR("--state-dir: cannot create %s (give --cert/--key, or a writable --state-dir)", error.c_str());
        return ringtun::fail(Errc::kInvalidArgument, "state directory");
      }
      if (!tls::generate_self_signed(settings.cert_file, settings.key_file, "ringtun-gateway", 3650, &error)) {
        LOG_ERROR("cannot create a self-signed certificate: %s", error.c_str());
        return ringtun::fail(Errc::kInvalidArgument, "self-signed certificate");
      }
      LOG_INFO("generated a self-signed TLS certificate in %s (valid 10 years)", dir.c_str());
    }
  }
  auto context = tls::Context::server(settings, &error);
  if (!context) {
    LOG_ERROR("%s", error.c_str());
    return Unexpected{context.error()};
  }
  const std::string& fingerprint = (*context)->fingerprint();
  const tls::CryptoInfo crypto = tls::crypto_info();
  LOG_INFO("TLS certificate %s fingerprint %s", settings.cert_file.c_str(), fingerprint.c_str());
  LOG_INFO("TLS 1.3 with wolfSSL %s (%s AES-NI), ciphers %s%s", crypto.library_version,
           crypto.library_has_aesni ? "with" : "without", crypto.cipher_list,
           settings.client_ca_file.empty() ? "" : "; client certificates required");
  LOG_INFO("agents verify this gateway with: --gateway-fingerprint %s", fingerprint.c_str());
  return std::shared_ptr<const tls::Context>(std::move(*context));
}

void reload_gateway_tls(Gateway& gateway) {
  if (gateway.config.common.insecure_plaintext) {
    LOG_INFO("reload: no TLS certificate to reload (--insecure-plaintext)");
    return;
  }
  auto fresh = make_gateway_tls(gateway.config);
  if (!fresh) {
    LOG_ERROR("reload failed: new tunnel connections still get the previous TLS certificate");
    return;
  }
  gateway.tls.store(std::move(*fresh));
  LOG_INFO("reload: new tunnel connections get the certificate above; open ones keep theirs");
}

}  // namespace ringtun::gateway
