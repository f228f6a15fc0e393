#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../ring/test_support.hpp"
#include "ops/access_log.hpp"

using ringtun::ops::AccessLog;
using ringtun::ops::AccessLogSink;
using ringtun::ops::AccessRecord;
using ringtun::ops::LogFormat;

namespace {

constexpr std::uint64_t kEndMs = 1796223301123;  // 2026-12-02T14:55:01.123Z

AccessRecord http_record() {
  AccessRecord r;
  r.end_ms = kEndMs;
  r.duration_ms = 42;
  r.client = "192.0.2.1:5555";
  r.listener = "http";
  r.service = "web";
  r.host = "app.example.com";
  r.agent = "agent-7";
  r.method = "GET";
  r.target = "/index.html?q=1";
  r.status = 200;
  r.bytes_in = 512;
  r.bytes_out = 10240;
  r.outcome = "ok";
  return r;
}

AccessRecord tcp_record() {
  AccessRecord r;
  r.end_ms = 1000;  // 1970-01-01T00:00:01.000Z
  r.duration_ms = 0;
  r.client = "[2001:db8::1]:40000";
  r.listener = "tcp:8080";
  r.bytes_in = 0;
  r.bytes_out = 0;
  r.outcome = "refused";
  r.reason = "no agent for service";
  return r;
}

std::string format(const AccessRecord& r, LogFormat f) {
  std::string out;
  AccessLog::format(r, f, out);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char buf[] = "/tmp/ringtun_access_XXXXXX";
    REQUIRE(::mkdtemp(buf) != nullptr);
    path = buf;
  }
  ~TempDir() {
    for (const char* name : {"/access.log", "/access.log.1"}) ::unlink((path + name).c_str());
    ::rmdir(path.c_str());
  }
};

// Parses one JSON line; fails the test if it is not one valid object.
simdjson::dom::element parse_line(simdjson::dom::parser& parser, const std::string& line) {
  simdjson::dom::element doc;
  const auto error = parser.parse(line).get(doc);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, line);
  REQUIRE(doc.is_object());
  return doc;
}

std::string json_string(simdjson::dom::element doc, const char* key) {
  std::string_view v;
  REQUIRE_MESSAGE(doc[key].get(v) == simdjson::SUCCESS, key);
  return std::string(v);
}

}  // namespace

TEST_CASE("text format: an HTTP request and a refused connection, exactly") {
  CHECK(format(http_record(), LogFormat::kText) ==
        "2026-12-02T14:55:01.123Z 192.0.2.1:5555 http web app.example.com agent-7 \"GET /index.html?q=1\" 200 512 "
        "10240 42ms ok");
  CHECK(format(tcp_record(), LogFormat::kText) ==
        "1970-01-01T00:00:01.000Z [2001:db8::1]:40000 tcp:8080 - - - \"-\" - 0 0 0ms refused "
        "\"no agent for service\"");
}

TEST_CASE("JSON format: every field, empty optional strings and status 0 as null") {
  CHECK(format(http_record(), LogFormat::kJson) ==
        "{\"time\":\"2026-12-02T14:55:01.123Z\",\"client\":\"192.0.2.1:5555\",\"listener\":\"http\","
        "\"service\":\"web\",\"host\":\"app.example.com\",\"agent\":\"agent-7\",\"method\":\"GET\","
        "\"target\":\"/index.html?q=1\",\"status\":200,\"bytes_in\":512,\"bytes_out\":10240,\"duration_ms\":42,"
        "\"outcome\":\"ok\",\"reason\":null}");
  CHECK(format(tcp_record(), LogFormat::kJson) ==
        "{\"time\":\"1970-01-01T00:00:01.000Z\",\"client\":\"[2001:db8::1]:40000\",\"listener\":\"tcp:8080\","
        "\"service\":null,\"host\":null,\"agent\":null,\"method\":null,\"target\":null,\"status\":null,"
        "\"bytes_in\":0,\"bytes_out\":0,\"duration_ms\":0,\"outcome\":\"refused\","
        "\"reason\":\"no agent for service\"}");

  simdjson::dom::parser parser;
  const std::string line = format(http_record(), LogFormat::kJson);
  auto doc = parse_line(parser, line);
  CHECK(json_string(doc, "host") == "app.example.com");
  std::uint64_t status = 0;
  CHECK(doc["status"].get(status) == simdjson::SUCCESS);
  CHECK(status == 200);
}

TEST_CASE("hostile fields cannot add a line or shift the text fields") {
  AccessRecord r = http_record();
  r.client = "1.2.3.4:5\n2026-12-02T00:00:00.000Z forged";
  r.service = "we b\"x";
  r.host = "evil.com\r\nX: y";
  r.agent = "a\tb\x1b[31m";
  r.method = "G\"ET";
  r.target = "/a b\" 200 1 1 1ms ok\n\\";
  r.reason = "bad \"thing\"\n\x7f";
  r.outcome = "error";

  const std::string text = format(r, LogFormat::kText);
  CHECK(text ==
        "2026-12-02T14:55:01.123Z 1.2.3.4:5?2026-12-02T00:00:00.000Z?forged http we?b?x evil.com??X:?y a?b?[31m "
        "\"G\\\"ET /a b\\\" 200 1 1 1ms ok?\\\\\" 200 512 10240 42ms error \"bad \\\"thing\\\"??\"");
  CHECK(text.find('\n') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);

  const std::string json = format(r, LogFormat::kJson);
  CHECK(std::none_of(json.begin(), json.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
  CHECK(json.find('\x7f') == std::string::npos);  // DEL escaped too: nothing a terminal would act on
  simdjson::dom::parser parser;
  auto doc = parse_line(parser, json);
  // The escaping is lossless: the parsed values are what the peer sent.
  CHECK(json_string(doc, "client") == std::string(r.client));
  CHECK(json_string(doc, "host") == std::string(r.host));
  CHECK(json_string(doc, "agent") == std::string(r.agent));
  CHECK(json_string(doc, "target") == std::string(r.target));
  CHECK(json_string(doc, "reason") == std::string(r.reason));
}

TEST_CASE("JSON strings: ill-formed UTF-8 becomes U+FFFD, well-formed UTF-8 stays") {
  struct Case {
    std::string in, out;
  };
  const std::string fffd = "\xEF\xBF\xBD";
  const Case cases[] = {
      {"caf\xC3\xA9", "caf\xC3\xA9"},                          // é
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},                // 4-byte emoji
      {"a\xC3", "a" + fffd},                                   // truncated at the end
      {"\xC0\xAF", fffd + fffd},                               // overlong '/'
      {"\xED\xA0\x80", fffd + fffd + fffd},                    // a surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},         // above U+10FFFF
      {"\xE2\x82x", fffd + "x"},                               // cut sequence: one U+FFFD for the maximal subpart
      {"\xFF", fffd},
  };
  simdjson::dom::parser parser;
  for (const Case& c : cases) {
    AccessRecord r = tcp_record();
    r.reason = c.in;
    const std::string json = format(r, LogFormat::kJson);
    CAPTURE(json);
    auto doc = parse_line(parser, json);  // simdjson rejects invalid UTF-8: parsing proves the output is valid
    CHECK(json_string(doc, "reason") == c.out);
  }
}

TEST_CASE("the target is cut at 256 bytes in both formats") {
  AccessRecord r = http_record();
  const std::string long_target = "/" + std::string(400, 'a');
  r.target = long_target;
  const std::string cut = long_target.substr(0, 256);
  CHECK(format(r, LogFormat::kText).find("\"GET " + cut + "\" 200") != std::string::npos);
  simdjson::dom::parser parser;
  const std::string json = format(r, LogFormat::kJson);
  CHECK(json_string(parse_line(parser, json), "target") == cut);
}

TEST_CASE("AccessLogSink::open creates the file 0640 and names the path when it cannot") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  const mode_t old_mask = ::umask(022);
  std::string error;
  auto sink = AccessLogSink::open(path, LogFormat::kText, &error);
  ::umask(old_mask);
  REQUIRE(sink.has_value());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(st.st_size == 0);

  const std::string bad = dir.path + "/missing/access.log";
  auto failed = AccessLogSink::open(bad, LogFormat::kText, &error);
  CHECK_FALSE(failed.has_value());
  CHECK(error == "--access-log: cannot open '" + bad + "': No such file or directory");

  auto to_stdout = AccessLogSink::open("-", LogFormat::kJson, nullptr);
  CHECK(to_stdout.has_value());
}

TEST_CASE("lines reach the file by the timer; after a rename, reopen() sends new lines to the new file") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  const std::string rotated = dir.path + "/access.log.1";
  auto loop = ringtun::test::make_loop();
  auto sink = AccessLogSink::open(path, LogFormat::kJson, nullptr);
  REQUIRE(sink.has_value());
  {
    AccessLog log(*loop, *sink);
    AccessRecord first = http_record();
    first.agent = "first";
    log.write(first);
    log.write(first);
    CHECK(read_file(path).empty());  // buffered until the timer
    REQUIRE(ringtun::test::run_until(*loop, [&] { return !read_file(path).empty(); }, 5'000));
    const std::string expected_first = format(first, LogFormat::kJson) + "\n";
    CHECK(read_file(path) == expected_first + expected_first);

    REQUIRE(::rename(path.c_str(), rotated.c_str()) == 0);
    (*sink)->reopen();
    AccessRecord second = tcp_record();
    second.agent = "second";
    log.write(second);
    REQUIRE(ringtun::test::run_until(*loop, [&] { return !read_file(path).empty(); }, 5'000));
    CHECK(read_file(path) == format(second, LogFormat::kJson) + "\n");
    CHECK(read_file(rotated) == expected_first + expected_first);

    // Without a reopen the same descriptor keeps being used; the destructor flushes what is buffered.
    log.write(second);
  }
  const std::string contents = read_file(path);
  CHECK(std::count(contents.begin(), contents.end(), '\n') == 2);
  CHECK(read_file(rotated).find("second") == std::string::npos);
}

TEST_CASE("a full buffer is flushed at once, without waiting for the timer") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  auto loop = ringtun::test::make_loop();
  auto sink = AccessLogSink::open(path, LogFormat::kText, nullptr);
  REQUIRE(sink.has_value());
  AccessLog log(*loop, *sink);
  const std::string line = format(http_record(), LogFormat::kText) + "\n";
  std::size_t lines = 0;
  while ((lines + 1) * line.size() < AccessLog::kFlushBytes) {
    log.write(http_record());
    ++lines;
  }
  CHECK(read_file(path).empty());
  log.write(http_record());  // crosses kFlushBytes
  ++lines;
  const std::string contents = read_file(path);
  CHECK(contents.size() == lines * line.size());
  CHECK(contents.substr(0, line.size()) == line);
  // Every line whole: the file is the same line repeated.
  for (std::size_t i = 0; i < lines; ++i) REQUIRE(contents.compare(i * line.size(), line.size(), line) == 0);
}
