#include "tls/client_hello.hpp"

#include <array>
#include <cstring>

#include "common/assert.hpp"

namespace ringtun::tls {

namespace {

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeClientHello = 1;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordBody = 16384;  // 2^14: RFC 8446 section 5.1 (and 5246 section 6.2.1)
constexpr std::size_t kHandshakeHeader = 4;
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint8_t kNameTypeHostName = 0;
constexpr std::size_t kMaxSessionId = 32;
constexpr std::size_t kRandom = 32;

// Reads big-endian fields from a bounded span. A read past the end sets `short_` and yields zeros, so a parser can
// read a whole group of fields and check once.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  std::size_t left() const noexcept { return bytes_.size(); }
  bool short_read() const noexcept { return short_; }

  std::uint32_t u8() noexcept { return number(1); }
  std::uint32_t u16() noexcept { return number(2); }
  std::span<const std::byte> take(std::size_t n) noexcept {
    if (n > bytes_.size()) {
      short_ = true;
      n = bytes_.size();
    }
    std::span<const std::byte> out = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return out;
  }

 private:
  std::uint32_t number(std::size_t n) noexcept {
    std::uint32_t v = 0;
    for (std::byte b : take(n)) v = v << 8 | std::to_integer<std::uint32_t>(b);
    return short_ ? 0 : v;
  }

  std::span<const std::byte> bytes_;
  bool short_ = false;
};

constexpr std::array<std::byte, 7> kUnrecognizedNameAlert = {
    std::byte{21},                 // content type: alert
    std::byte{3},   std::byte{3},  // version 3.3 (TLS 1.2, as TLS 1.3 writes it too)
    std::byte{0},   std::byte{2},  // length
    std::byte{2},                  // level: fatal
    std::byte{112},                // description: unrecognized_name
};

}  // namespace

std::span<const std::byte> unrecognized_name_alert() noexcept {
  return kUnrecognizedNameAlert;
}

ClientHelloReader::Outcome ClientHelloReader::fail(const char* reason) noexcept {
  outcome_ = Outcome::kError;
  error_ = reason;
  needed_ = 0;
  name_length_ = 0;
  return outcome_;
}

ClientHelloReader::Outcome ClientHelloReader::read(std::span<const std::byte> prefix,
                                                   std::span<std::byte> scratch) noexcept {
  if (outcome_ != Outcome::kNeedMore) return outcome_;
  RINGTUN_CHECK(scratch.size() >= kMaxHello, "ClientHelloReader: scratch under kMaxHello bytes");
  RINGTUN_ASSERT(prefix.size() >= record_at_, "ClientHelloReader: the prefix shrank between calls");
  const std::size_t size = prefix.size();
  auto byte_at = [&](std::size_t i) { return std::to_integer<std::uint32_t>(prefix[i]); };

  // Walk the complete records. Each check runs as soon as its bytes are in, and always in stream order, so the
  // answer (and the reason of an error) does not depend on how the bytes were split between calls.
  for (;;) {
    const std::size_t start = record_at_;
    // No record starting here could end within kMaxHello: this is what bounds the caller's buffer.
    if (start + kRecordHeader + 1 > kMaxHello) return fail("ClientHello over 16 KiB");
    auto need = [&](std::size_t end) {
      needed_ = static_cast<std::uint32_t>(end - size);
      return Outcome::kNeedMore;
    };
    if (size < start + 1) return need(start + kRecordHeader);
    const std::uint32_t type = byte_at(start);
    if (type != kContentHandshake) {
      if (start != 0) return fail("non-handshake record inside the ClientHello");
      // SSL 2.0's record header sets the top bit of its first byte (a CLIENT-HELLO compatible with SSLv2 starts so);
      // nothing sends one since the early 2000s, and it has no extensions, so no SNI.
      return fail((type & 0x80) != 0 ? "SSLv2 hello" : "not a TLS handshake record");
    }
    if (size < start + 2) return need(start + kRecordHeader);
    if (byte_at(start + 1) != 3) return fail("record version is not 3.x");
    if (size < start + kRecordHeader) return need(start + kRecordHeader);
    const std::size_t length = byte_at(start + 3) << 8 | byte_at(start + 4);
    if (length == 0) return fail("empty handshake record");
    if (length > kMaxRecordBody) return fail("record too long");
    const std::size_t end = start + kRecordHeader + length;
    if (end > kMaxHello) return fail("ClientHello over 16 KiB");
    if (size < end) return need(end);

    // Consume the record: keep the handshake header's bytes, count the rest.
    std::size_t i = start + kRecordHeader;
    while (handshake_have_ < kHandshakeHeader && i < end)
      head_[handshake_have_++] = static_cast<std::uint8_t>(byte_at(i++));
    handshake_have_ += static_cast<std::uint32_t>(end - i);
    record_at_ = static_cast<std::uint32_t>(end);
    if (handshake_total_ == 0 && handshake_have_ >= kHandshakeHeader) {
      if (head_[0] != kHandshakeClientHello) return fail("not a ClientHello");
      const std::size_t body = std::size_t{head_[1]} << 16 | std::size_t{head_[2]} << 8 | head_[3];
      if (kHandshakeHeader + body > kMaxHello) return fail("ClientHello over 16 KiB");
      handshake_total_ = static_cast<std::uint32_t>(kHandshakeHeader + body);
    }
    if (handshake_total_ != 0 && handshake_have_ >= handshake_total_) break;
  }
  needed_ = 0;

  // The usual case: one record holds the whole message; parse it in place.
  const std::size_t first_length = byte_at(3) << 8 | byte_at(4);
  if (first_length >= handshake_total_) return parse(prefix.subspan(kRecordHeader, handshake_total_));

  // Defragment: the records were all checked above; copy their bodies up to the message's end.
  std::size_t copied = 0;
  for (std::size_t at = 0; copied < handshake_total_;) {
    const std::size_t length = byte_at(at + 3) << 8 | byte_at(at + 4);
    const std::size_t n = length < handshake_total_ - copied ? length : handshake_total_ - copied;
    std::memcpy(scratch.data() + copied, prefix.data() + at + kRecordHeader, n);
    copied += n;
    at += kRecordHeader + length;
  }
  return parse(scratch.first(handshake_total_));
}

// `message`: the whole ClientHello handshake message, its 4-byte header included (RFC 8446 section 4.1.2; the
// TLS 1.2 form of RFC 5246 section 7.4.1.2 is the same up to the extensions, which it may leave out).
ClientHelloReader::Outcome ClientHelloReader::parse(std::span<const std::byte> message) noexcept {
  Cursor hello(message.subspan(kHandshakeHeader));
  const std::uint32_t version_major = hello.u8();
  (void)hello.u8();  // legacy_version's minor: 3.1..3.3 seen in the wild; TLS 1.3 pins it to 3.3
  (void)hello.take(kRandom);
  if (hello.short_read()) return fail("ClientHello truncated");
  if (version_major != 3) return fail("ClientHello version is not 3.x");
  const std::size_t session_id = hello.u8();
  if (session_id > kMaxSessionId) return fail("session_id over 32 bytes");
  (void)hello.take(session_id);
  const std::size_t suites = hello.u16();
  (void)hello.take(suites);
  if (hello.short_read()) return fail("ClientHello truncated");
  if (suites < 2 || suites % 2 != 0) return fail("bad cipher_suites length");
  const std::size_t compressions = hello.u8();
  (void)hello.take(compressions);
  if (hello.short_read()) return fail("ClientHello truncated");
  if (compressions == 0) return fail("no compression methods");
  // TLS 1.2 and earlier may end the message here: no extensions at all.
  if (hello.left() == 0) return outcome_ = Outcome::kNoName;

  const std::size_t extensions_length = hello.u16();
  if (hello.short_read() || extensions_length != hello.left()) return fail("malformed extensions");
  Cursor extensions(hello.take(extensions_length));
  bool seen_server_name = false;
  std::span<const std::byte> name;
  while (extensions.left() > 0) {
    const std::uint32_t type = extensions.u16();
    const std::size_t length = extensions.u16();
    Cursor data(extensions.take(length));
    if (extensions.short_read()) return fail("malformed extensions");
    if (type != kExtServerName) continue;
    if (seen_server_name) return fail("two server_name extensions");
    seen_server_name = true;
    // server_name_list<1..2^16-1>, each entry: name_type, then for host_name a HostName<1..2^16-1>. Other name
    // types were never defined; like OpenSSL we expect the same 2-byte length before them and skip them.
    const std::size_t list_length = data.u16();
    if (data.short_read() || list_length == 0 || list_length != data.left()) return fail("malformed server_name");
    while (data.left() > 0) {
      const std::uint32_t name_type = data.u8();
      const std::size_t name_length = data.u16();
      std::span<const std::byte> bytes = data.take(name_length);
      if (data.short_read()) return fail("malformed server_name");
      if (name_type != kNameTypeHostName || !name.empty()) continue;
      if (name_length == 0) return fail("empty server name");
      if (name_length > kMaxName) return fail("server name over 255 bytes");
      name = bytes;
    }
  }
  if (name.empty()) return outcome_ = Outcome::kNoName;
  std::memcpy(name_, name.data(), name.size());
  name_length_ = static_cast<std::uint8_t>(name.size());
  return outcome_ = Outcome::kFound;
}

}  // namespace ringtun::tls
