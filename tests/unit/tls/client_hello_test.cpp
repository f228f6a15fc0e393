// ClientHelloReader: real ClientHellos captured from openssl s_client and curl (tests/unit/tls/data/, TLS 1.2-only and
// TLS 1.3, with and without SNI) read whole, grown a byte at a time, split at every point and re-framed into records
// of 1, 7 and 100 bytes; hellos built here for the edges (a 255-byte name, a message at the 16 KiB bound) and for each
// malformed case; the unrecognized_name alert's bytes.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tls/client_hello.hpp"

using ringtun::tls::ClientHelloReader;
using ringtun::tls::unrecognized_name_alert;
using Outcome = ClientHelloReader::Outcome;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes load(const char* name) {
  const std::string path = std::string(RINGTUN_CLIENT_HELLO_DATA) + "/" + name;
  Bytes bytes;
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::uint8_t buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
  }
  REQUIRE_MESSAGE(!bytes.empty(), "cannot read ", path);
  return bytes;
}

std::span<const std::byte> view(const Bytes& b, std::size_t n) {
  return std::as_bytes(std::span(b.data(), n));
}

// One per-core scratch buffer, as the gateway has; scribbled over between calls to show nothing is kept in it.
std::vector<std::byte>& scratch() {
  static std::vector<std::byte> buffer(ClientHelloReader::kMaxHello);
  return buffer;
}
void scribble() {
  for (std::byte& b : scratch()) b = std::byte{0xa5};
}

struct Result {
  Outcome outcome;
  std::string name;
  std::string error;
  friend bool operator==(const Result&, const Result&) = default;
};

// For doctest's messages: "found 'x.example'", "error 'record too long'".
std::ostream& operator<<(std::ostream& os, const Result& r) {
  static constexpr const char* kNames[] = {"need more", "found", "no name", "error"};
  return os << kNames[static_cast<int>(r.outcome)] << " '" << (r.outcome == Outcome::kError ? r.error : r.name) << "'";
}

Result result_of(const ClientHelloReader& reader) {
  return {reader.outcome(), std::string(reader.name()), reader.error()};
}

Result read_whole(const Bytes& bytes) {
  ClientHelloReader reader;
  (void)reader.read(view(bytes, bytes.size()), scratch());
  return result_of(reader);
}

// The prefix grows a byte at a time; the answer is the first one that is not kNeedMore (or kNeedMore at the end).
Result read_bytewise(const Bytes& bytes) {
  ClientHelloReader reader;
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    scribble();
    if (reader.read(view(bytes, n), scratch()) != Outcome::kNeedMore) break;
  }
  return result_of(reader);
}

Result read_split(const Bytes& bytes, std::size_t split) {
  ClientHelloReader reader;
  if (reader.read(view(bytes, split), scratch()) == Outcome::kNeedMore) {
    scribble();
    (void)reader.read(view(bytes, bytes.size()), scratch());
  }
  return result_of(reader);
}

// Every way of feeding `bytes` gives the same answer as reading them whole; returns that answer.
Result read_every_way(const Bytes& bytes) {
  Result whole = read_whole(bytes);
  CHECK(read_bytewise(bytes) == whole);
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    const Result r = read_split(bytes, split);
    if (!(r == whole)) {
      FAIL_CHECK("split at ", split, " gives ", r, " instead of ", whole);
      break;
    }
  }
  return whole;
}

void put16(Bytes& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
void put24(Bytes& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 16));
  put16(b, v);
}
void append(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}

// The handshake message (header included) out of a single-record capture.
Bytes message_of(const Bytes& record) {
  const std::size_t length = std::size_t{record[6]} << 16 | std::size_t{record[7]} << 8 | record[8];
  return Bytes(record.begin() + 5, record.begin() + 5 + 4 + static_cast<std::ptrdiff_t>(length));
}

// `message` cut into handshake records of `size` bytes each (the last one shorter).
Bytes frame(const Bytes& message, std::size_t size, std::uint8_t type = 22) {
  Bytes out;
  for (std::size_t at = 0; at < message.size(); at += size) {
    const std::size_t n = std::min(size, message.size() - at);
    out.push_back(type);
    out.push_back(3);
    out.push_back(1);
    put16(out, n);
    out.insert(out.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
               message.begin() + static_cast<std::ptrdiff_t>(at + n));
  }
  return out;
}

struct Extension {
  std::uint16_t type;
  Bytes data;
};

Extension server_name(std::string_view name, std::uint8_t name_type = 0) {
  Bytes data;
  put16(data, 3 + name.size());
  data.push_back(name_type);
  put16(data, name.size());
  data.insert(data.end(), name.begin(), name.end());
  return {0, data};
}

// A ClientHello handshake message built field by field: each field's length can be set wrong on purpose.
struct HelloSpec {
  std::uint8_t version_major = 3;
  std::size_t session_id = 32;
  std::size_t suites_length = 4;
  std::size_t compressions = 1;
  bool has_extensions = true;
  std::vector<Extension> extensions;
  std::ptrdiff_t extensions_length_skew = 0;  // added to the extensions block's length field
  std::uint8_t handshake_type = 1;
};

Bytes build(const HelloSpec& spec) {
  Bytes body;
  body.push_back(spec.version_major);
  body.push_back(3);
  body.insert(body.end(), 32, 0x42);  // random
  body.push_back(static_cast<std::uint8_t>(spec.session_id));
  body.insert(body.end(), spec.session_id, 0x17);
  put16(body, spec.suites_length);
  for (std::size_t i = 0; i < spec.suites_length; ++i) body.push_back(i % 2 == 0 ? 0x13 : 0x01);
  body.push_back(static_cast<std::uint8_t>(spec.compressions));
  body.insert(body.end(), spec.compressions, 0);
  if (spec.has_extensions) {
    Bytes block;
    for (const Extension& e : spec.extensions) {
      put16(block, e.type);
      put16(block, e.data.size());
      append(block, e.data);
    }
    put16(body, static_cast<std::size_t>(static_cast<std::ptrdiff_t>(block.size()) + spec.extensions_length_skew));
    append(body, block);
  }
  Bytes message{spec.handshake_type};
  put24(message, body.size());
  append(message, body);
  return message;
}

Extension padding(std::size_t n) {
  return {21, Bytes(n, 0)};
}

Result found(std::string_view name) {
  return {Outcome::kFound, std::string(name), ""};
}
Result no_name() {
  return {Outcome::kNoName, "", ""};
}
Result error(const char* reason) {
  return {Outcome::kError, "", reason};
}

}  // namespace

TEST_CASE("captured ClientHellos: whole, byte by byte, at every split point") {
  struct Capture {
    const char* file;
    Result expected;
  };
  const Capture captures[] = {
      {"openssl_tls13_sni.bin", found("x.example")},    {"openssl_tls12_sni.bin", found("x.example")},
      {"openssl_tls13_nosni.bin", no_name()},           {"openssl_tls12_nosni.bin", no_name()},
      {"curl_tls13_sni.bin", found("app.example.com")}, {"curl_tls12_sni.bin", found("app.example.com")},
      {"curl_tls13_ip_nosni.bin", no_name()},
  };
  for (const Capture& c : captures) {
    CAPTURE(c.file);
    const Bytes bytes = load(c.file);
    CHECK(read_every_way(bytes) == c.expected);

    // A prefix short of the whole record: kNeedMore, and bytes_needed() counts what the record still lacks.
    ClientHelloReader reader;
    CHECK(reader.read(view(bytes, 0), scratch()) == Outcome::kNeedMore);
    CHECK(reader.bytes_needed() == 5);
    CHECK(reader.read(view(bytes, 3), scratch()) == Outcome::kNeedMore);
    CHECK(reader.bytes_needed() == 2);
    CHECK(reader.read(view(bytes, 10), scratch()) == Outcome::kNeedMore);
    CHECK(reader.bytes_needed() == bytes.size() - 10);
    CHECK(reader.name().empty());
    CHECK(reader.read(view(bytes, bytes.size()), scratch()) == c.expected.outcome);
    CHECK(reader.bytes_needed() == 0);
    // Final: asking again answers the same.
    CHECK(reader.read(view(bytes, bytes.size()), scratch()) == c.expected.outcome);
    CHECK(reader.name() == c.expected.name);
  }
}

TEST_CASE("a ClientHello fragmented over records of 1, 7 and 100 bytes") {
  for (const char* file : {"curl_tls13_sni.bin", "openssl_tls12_sni.bin", "openssl_tls13_nosni.bin"}) {
    CAPTURE(file);
    const Bytes record = load(file);
    const Result expected = read_whole(record);
    for (std::size_t size : {1, 7, 100}) {
      CAPTURE(size);
      CHECK(read_every_way(frame(message_of(record), size)) == expected);
    }
  }
}

TEST_CASE("bytes after the ClientHello are ignored") {
  Bytes bytes = load("curl_tls13_sni.bin");
  // A change_cipher_spec record and an application_data record (0-RTT data, as a client with a ticket sends).
  append(bytes, {20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 5, 'h', 'e', 'l', 'l', 'o'});
  CHECK(read_every_way(bytes) == found("app.example.com"));
  // And after a fragmented one, inside the record that ends it: the rest of that record is not looked at.
  Bytes message = message_of(load("openssl_tls13_sni.bin"));
  Bytes framed = frame(message, 100);
  append(framed, {21, 3, 3, 0, 2, 2, 40});
  CHECK(read_every_way(framed) == found("x.example"));
}

TEST_CASE("built ClientHellos: names as sent, the first host_name, the 255-byte bound") {
  HelloSpec spec;
  spec.extensions = {{10, {0, 2, 0, 29}}, server_name("App.Example.COM"), {43, {2, 3, 4}}};
  CHECK(read_every_way(frame(build(spec), 16384)) == found("App.Example.COM"));

  // Bytes outside host-name rules come through as sent: the route table refuses them.
  spec.extensions = {server_name(std::string_view("a\0b\xff.example", 12))};
  CHECK(read_whole(frame(build(spec), 16384)) == found(std::string_view("a\0b\xff.example", 12)));

  // Two entries: the first host_name wins; an entry of another name type is skipped.
  Extension two{0, {}};
  put16(two.data, std::size_t{3} * (1 + 2 + 3));
  const std::pair<std::uint8_t, const char*> entries[] = {{7, "zzz"}, {0, "one"}, {0, "two"}};
  for (auto [type, name] : entries) {
    two.data.push_back(type);
    put16(two.data, 3);
    two.data.insert(two.data.end(), name, name + 3);
  }
  spec.extensions = {two};
  CHECK(read_whole(frame(build(spec), 16384)) == found("one"));
  spec.extensions = {server_name("xyz", 7)};
  CHECK(read_whole(frame(build(spec), 16384)) == no_name());

  const std::string longest(255, 'n');
  spec.extensions = {server_name(longest)};
  const Result r = read_every_way(frame(build(spec), 16384));
  CHECK(r == found(longest));
  CHECK(r.name.size() == ClientHelloReader::kMaxName);

  spec.extensions = {server_name(std::string(256, 'n'))};
  CHECK(read_whole(frame(build(spec), 16384)) == error("server name over 255 bytes"));
  spec.extensions = {server_name("")};
  CHECK(read_whole(frame(build(spec), 16384)) == error("empty server name"));

  // No extensions at all (a TLS 1.0-era hello), and an empty extensions block.
  spec.has_extensions = false;
  CHECK(read_every_way(frame(build(spec), 16384)) == no_name());
  spec.has_extensions = true;
  spec.extensions = {};
  CHECK(read_whole(frame(build(spec), 16384)) == no_name());
}

TEST_CASE("the 16 KiB bound: records and message") {
  // Two records whose end is exactly kMaxHello: the message fills the rest (4 bytes of it are its header).
  const std::size_t message_size = ClientHelloReader::kMaxHello - 10;
  HelloSpec spec;
  spec.extensions = {server_name("edge.example"), padding(0)};
  const std::size_t base = build(spec).size();
  spec.extensions.back() = padding(message_size - base);
  const Bytes message = build(spec);
  REQUIRE(message.size() == message_size);
  Bytes bytes = frame(message, 9000);
  REQUIRE(bytes.size() == ClientHelloReader::kMaxHello);
  CHECK(read_whole(bytes) == found("edge.example"));
  CHECK(read_split(bytes, 9007) == found("edge.example"));

  // One byte more: the second record would end past the bound, which is known from its header.
  spec.extensions.back() = padding(message_size - base + 1);
  bytes = frame(build(spec), 9000);
  CHECK(read_whole(bytes) == error("ClientHello over 16 KiB"));
  ClientHelloReader reader;
  CHECK(reader.read(view(bytes, 9005 + 5), scratch()) == Outcome::kError);

  // Small records: the record headers count toward the bound too.
  spec.extensions.back() = padding(4000);
  CHECK(read_whole(frame(build(spec), 4096)) == found("edge.example"));
  CHECK(read_whole(frame(build(spec), 1)) == error("ClientHello over 16 KiB"));

  // The handshake header alone says the message is too long.
  Bytes header{22, 3, 1, 0, 4, 1, 0, 0x40, 0x00};
  CHECK(read_whole(header) == error("ClientHello over 16 KiB"));

  // Whatever the bytes, a prefix of kMaxHello bytes gets a decision.
  // (Here: a message of 16372 bytes announced, then sent a byte per record.)
  Bytes open_ended{22, 3, 1, 0, 5, 1, 0, 0x3f, 0xf0, 3};
  while (open_ended.size() < ClientHelloReader::kMaxHello) append(open_ended, {22, 3, 1, 0, 1, 0});
  open_ended.resize(ClientHelloReader::kMaxHello);
  CHECK(read_whole(open_ended) == error("ClientHello over 16 KiB"));
  CHECK(read_split(open_ended, ClientHelloReader::kMaxHello - 7) == error("ClientHello over 16 KiB"));
}

TEST_CASE("malformed input: kError with its reason, however it is split") {
  const Bytes good = load("openssl_tls13_sni.bin");
  auto with = [&](std::size_t at, std::uint8_t value) {
    Bytes b = good;
    b[at] = value;
    return b;
  };
  struct Case {
    const char* what;
    Bytes bytes;
    const char* reason;
  };
  HelloSpec spec;
  spec.extensions = {server_name("a.example")};
  auto built = [&](auto change) {
    HelloSpec s = spec;
    change(s);
    return frame(build(s), 16384);
  };
  Bytes interleaved = frame(message_of(good), 100);
  interleaved.insert(interleaved.begin() + 105, {21, 3, 3, 0, 2, 1, 0});
  Bytes ccs_first = good;
  ccs_first.insert(ccs_first.begin(), {20, 3, 3, 0, 1, 1});
  Bytes sni_list_short = built([](HelloSpec& s) { s.extensions[0].data[1] -= 1; });
  Bytes two_sni = built([](HelloSpec& s) { s.extensions.push_back(server_name("b.example")); });
  // The handshake length set to `n`: the message now ends early, inside the record (which keeps its length).
  auto cut_at = [&](std::size_t n) {
    Bytes b = good;
    b[6] = 0;
    b[7] = static_cast<std::uint8_t>(n >> 8);
    b[8] = static_cast<std::uint8_t>(n);
    return b;
  };
  // Offset of the first extension's type in a built hello (record, handshake header, version, random, session_id,
  // 2 suites, 1 compression method, extensions length).
  constexpr std::size_t kFirstExtension = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1 + 2;
  Bytes overrun = built([](HelloSpec&) {});
  overrun[kFirstExtension + 3] += 1;
  Bytes stray_byte = built([](HelloSpec& s) { s.has_extensions = false; });
  stray_byte.push_back(0);  // one byte where the extensions length would go
  stray_byte[4] += 1;
  stray_byte[8] += 1;

  const Case cases[] = {
      {"an alert record", with(0, 21), "not a TLS handshake record"},
      {"application data", with(0, 23), "not a TLS handshake record"},
      {"change_cipher_spec before the hello", ccs_first, "not a TLS handshake record"},
      {"plain HTTP", Bytes{'G', 'E', 'T', ' ', '/'}, "not a TLS handshake record"},
      {"SSLv2", Bytes{0x80, 0x2e, 0x01, 0x00, 0x02}, "SSLv2 hello"},
      {"record version 2.0", with(1, 2), "record version is not 3.x"},
      {"record length 0", Bytes{22, 3, 1, 0, 0}, "empty handshake record"},
      {"record length 2^14 + 1", Bytes{22, 3, 1, 0x40, 0x01, 1}, "record too long"},
      {"record length 0xffff", Bytes{22, 3, 1, 0xff, 0xff}, "record too long"},
      {"handshake type 2 (ServerHello)", with(5, 2), "not a ClientHello"},
      {"an alert between the fragments", interleaved, "non-handshake record inside the ClientHello"},
      {"hello version 2.x", with(9, 2), "ClientHello version is not 3.x"},
      {"empty message", cut_at(0), "ClientHello truncated"},
      {"message cut in the random", cut_at(20), "ClientHello truncated"},
      {"message cut in the session_id", cut_at(50), "ClientHello truncated"},
      {"message cut in the cipher suites", cut_at(75), "ClientHello truncated"},
      {"session_id of 33", built([](HelloSpec& s) { s.session_id = 33; }), "session_id over 32 bytes"},
      {"odd cipher_suites", built([](HelloSpec& s) { s.suites_length = 3; }), "bad cipher_suites length"},
      {"no cipher_suites", built([](HelloSpec& s) { s.suites_length = 0; }), "bad cipher_suites length"},
      {"no compression methods", built([](HelloSpec& s) { s.compressions = 0; }), "no compression methods"},
      {"extensions block longer than the message", built([](HelloSpec& s) { s.extensions_length_skew = 1; }),
       "malformed extensions"},
      {"extensions block shorter than the message", built([](HelloSpec& s) { s.extensions_length_skew = -1; }),
       "malformed extensions"},
      {"one byte where the extensions length goes", stray_byte, "malformed extensions"},
      {"an extension overrunning the block", overrun, "malformed extensions"},
      {"server_name list shorter than the extension", sni_list_short, "malformed server_name"},
      {"empty server_name list", built([](HelloSpec& s) {
         s.extensions[0].data = {0, 0};
       }),
       "malformed server_name"},
      {"server_name extension of 1 byte", built([](HelloSpec& s) { s.extensions[0].data = {0}; }),
       "malformed server_name"},
      {"host_name overrunning the list", built([](HelloSpec& s) { s.extensions[0].data[4] += 1; }),
       "malformed server_name"},
      {"two server_name extensions", two_sni, "two server_name extensions"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK(read_every_way(c.bytes) == error(c.reason));
  }
}

TEST_CASE("unrecognized_name alert") {
  const std::span<const std::byte> alert = unrecognized_name_alert();
  const Bytes expected{21, 3, 3, 0, 2, 2, 112};
  REQUIRE(alert.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(std::to_integer<std::uint8_t>(alert[i]) == expected[i]);
}
