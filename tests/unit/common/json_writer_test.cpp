// JsonWriter and append_json_string: commas and nesting, RFC 8259 escaping, ill-formed UTF-8 replaced so the output
// always parses, numbers (doubles read back exactly). simdjson is the judge of validity (it validates UTF-8).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>

#include "common/json_writer.hpp"

using ringtun::append_json_string;
using ringtun::JsonWriter;

namespace {

std::string json_quoted(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

// Parses `json` as a lone string and returns its value; fails the test if it does not parse.
std::string parse_string(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  std::string_view value;
  const auto error = parser.parse(padded).get_string().get(value);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, json);
  return std::string(value);
}

}  // namespace

TEST_CASE("commas and nesting are placed by the writer") {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .field("a", std::uint64_t{1})
      .field("b", "two")
      .key("c").begin_array().number(1).number_signed(-2).begin_object().end_object().begin_array().end_array()
      .null().boolean(false).end_array()
      .key("d").begin_object().field("e", true).end_object()
      .end_object();
  CHECK(out == R"({"a":1,"b":"two","c":[1,-2,{},[],null,false],"d":{"e":true}})");

  simdjson::dom::parser parser;
  simdjson::padded_string padded(out);
  simdjson::dom::element doc;
  REQUIRE(parser.parse(padded).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["b"]) == "two");
  CHECK(std::int64_t(doc["c"].at(1)) == -2);
}

TEST_CASE("empty containers and a top-level array") {
  std::string out;
  JsonWriter(out).begin_array().end_array();
  CHECK(out == "[]");
  out.clear();
  JsonWriter w(out);
  w.begin_array().string("x").begin_array().number(0).end_array().end_array();
  CHECK(out == R"(["x",[0]])");
}

TEST_CASE("escaping: quote, backslash, control characters") {
  CHECK(json_quoted("") == R"("")");
  CHECK(json_quoted("plain") == R"("plain")");
  CHECK(json_quoted("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_quoted("\n\r\t") == R"("\n\r\t")");
  CHECK(json_quoted(std::string_view("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(json_quoted("\x7f/") == "\"\x7f/\"");  // DEL and '/' need no escape
  std::string del;
  append_json_string(del, "a\x7f", true);  // escape_del: for text a terminal may show (the access log)
  CHECK(del == R"("a\u007f")");
  CHECK(parse_string(del) == "a\x7f");
  for (int c = 0; c < 0x80; ++c) {
    const std::string one(1, static_cast<char>(c));
    CHECK(parse_string(json_quoted(one)) == one);
  }
}

TEST_CASE("valid UTF-8 passes through unchanged") {
  const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  CHECK(json_quoted(text) == "\"" + text + "\"");
  CHECK(parse_string(json_quoted(text)) == text);
}

TEST_CASE("ill-formed UTF-8 becomes U+FFFD, one per maximal subpart") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(json_quoted("\x80") == "\"" + r + "\"");                      // lone continuation
  CHECK(json_quoted("\xC0\xAF") == "\"" + r + r + "\"");              // overlong lead, then a continuation
  CHECK(json_quoted("\xE2\x82") == "\"" + r + "\"");                  // truncated at the end
  CHECK(json_quoted("\xE2\x82x") == "\"" + r + "x\"");                // truncated before ASCII
  CHECK(json_quoted("\xED\xA0\x80") == "\"" + r + r + r + "\"");      // a surrogate
  CHECK(json_quoted("\xF4\x90\x80\x80") == "\"" + r + r + r + r + "\"");  // past U+10FFFF
  CHECK(json_quoted("\xF0\x9F\x98") == "\"" + r + "\"");
  CHECK(json_quoted("\xFF\"") == "\"" + r + "\\\"\"");
  CHECK(json_quoted("\xE0\x80\x80") == "\"" + r + r + r + "\"");      // overlong 3-byte
}

TEST_CASE("any bytes give a string simdjson accepts (seeded random)") {
  std::mt19937 rng(20261202);
  for (int round = 0; round < 2000; ++round) {
    std::string text(rng() % 24, '\0');
    for (char& c : text) c = static_cast<char>(rng() & 0xFF);
    const std::string json = json_quoted(text);
    const std::string back = parse_string(json);
    // Valid input survives exactly; where the input was valid UTF-8 the round trip is the identity.
    if (simdjson::validate_utf8(text.data(), text.size())) CHECK(back == text);
  }
}

TEST_CASE("numbers: integers at the limits, doubles read back exactly, non-finite as null") {
  std::string out;
  JsonWriter w(out);
  w.begin_array()
      .number(std::numeric_limits<std::uint64_t>::max())
      .number_signed(std::numeric_limits<std::int64_t>::min())
      .number_double(0.1)
      .number_double(-2.5e-300)
      .number_double(1e21)
      .number_double(std::numeric_limits<double>::quiet_NaN())
      .number_double(std::numeric_limits<double>::infinity())
      .number_double(-std::numeric_limits<double>::infinity())
      .end_array();
  CHECK(out == "[18446744073709551615,-9223372036854775808,0.1,-2.5e-300,1e+21,null,null,null]");

  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    double value = 0;
    do {
      const std::uint64_t bits = rng();
      std::memcpy(&value, &bits, sizeof value);
    } while (!std::isfinite(value));
    std::string text;
    JsonWriter(text).begin_array().number_double(value).end_array();
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    double back = 0;
    REQUIRE_MESSAGE(parser.parse(padded).at(0).get_double().get(back) == simdjson::SUCCESS, text);
    CHECK(back == value);
  }
}
