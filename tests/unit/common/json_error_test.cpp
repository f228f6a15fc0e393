// The JSON syntax-error locator: it must agree with simdjson on what is valid (it runs only after simdjson rejected a
// document), and name the first offending byte with a line, a column in characters and a reason.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

#include "common/json_error.hpp"
#include "sample_configs.hpp"

using ringtun::locate_json_error;

namespace {

// The depth the config loader uses (src/app): 32 open objects/arrays; simdjson counts the document as one more.
constexpr std::size_t kDepth = 32;

// Seeds for the mutation test: the shapes of real config files.
using ringtun::samples::kAgentJson;
using ringtun::samples::kGatewayJson;

}  // namespace

TEST_CASE("the location: offset, line, column in characters, and the reason") {
  auto where = locate_json_error("{\n  \"a\": 1,\n}", kDepth);
  REQUIRE(where.found);
  CHECK(where.offset == 12);
  CHECK(where.line == 3);
  CHECK(where.column == 1);
  CHECK(where.reason == "trailing comma before '}'");
  // Columns count characters: the two-byte \u00e9 before the mistake counts once.
  auto utf8 = locate_json_error("{\"\xC3\xA9\": 1 2}", kDepth);
  REQUIRE(utf8.found);
  CHECK(utf8.offset == 9);
  CHECK(utf8.column == 9);
  CHECK(utf8.reason == "expected ',' or '}' after a member (missing comma?)");
  auto empty = locate_json_error("", kDepth);
  REQUIRE(empty.found);
  CHECK(empty.reason == "the document is empty");
  auto deep = locate_json_error(std::string(kDepth + 1, '['), kDepth);
  REQUIRE(deep.found);
  CHECK(deep.offset == kDepth);
  CHECK(deep.reason == "nested deeper than 32 levels");
}

TEST_CASE("locate_json_error finds nothing in valid documents") {
  for (std::string_view doc :
       {std::string_view(kGatewayJson), std::string_view(kAgentJson), std::string_view("[]"),
        std::string_view(" {\"a\": [1, -0, 0.5e-3, 1E+2, true, false, null, \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]} "),
        std::string_view("\"\\ud83d\\ude00 \xF0\x9F\x98\x80\""), std::string_view("18446744073709551615"),
        std::string_view("-9223372036854775808")}) {
    CAPTURE(doc);
    auto where = locate_json_error(doc, kDepth);
    CHECK_FALSE_MESSAGE(where.found, where.reason);
  }
  std::string deepest(kDepth, '[');
  deepest += std::string(kDepth, ']');
  CHECK_FALSE(locate_json_error(deepest, kDepth).found);
}

// The locator runs only after simdjson rejected a document, so it must agree with simdjson on what is valid:
// otherwise a rejected file would get the vague fallback message, or (worse) a wrong location.
TEST_CASE("the error locator agrees with simdjson on seeded mutations of valid configs") {
  simdjson::dom::parser parser;
  REQUIRE(parser.allocate(4096, kDepth + 1) == simdjson::SUCCESS);
  const std::string alphabet = std::string("{}[],:\"\\/ \n\t0123456789-+.eEtrufalsn'x") + '\0' + "\x80\xC3\xA9\xFF";
  std::mt19937 rng(20240611);
  int disagreements = 0;
  int invalid = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string doc = round % 2 == 0 ? kGatewayJson : kAgentJson;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % (doc.size() + 1);
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          if (at < doc.size()) doc[at] = c;
          break;
        case 1:
          doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          if (at < doc.size()) doc.erase(at, 1);
          break;
      }
    }
    simdjson::padded_string padded(doc);
    simdjson::dom::element root;
    bool simdjson_ok = parser.parse(padded).get(root) == simdjson::SUCCESS;
    auto where = locate_json_error(doc, kDepth);
    invalid += simdjson_ok ? 0 : 1;
    if (simdjson_ok == where.found) {
      ++disagreements;
      if (disagreements <= 5) {
        MESSAGE("disagreement: simdjson ok=" << simdjson_ok << " locator: " << where.reason << " in: " << doc);
      }
    }
    if (where.found) CHECK(where.offset <= doc.size());
  }
  CHECK(disagreements == 0);
  CHECK(invalid > 5000);  // the mutations do exercise the error path
}

TEST_CASE("depth limit agrees with simdjson at the boundary") {
  simdjson::dom::parser parser;
  REQUIRE(parser.allocate(4096, kDepth + 1) == simdjson::SUCCESS);
  for (std::size_t depth = kDepth - 2; depth <= kDepth + 2; ++depth) {
    for (bool objects : {false, true}) {
      std::string doc;
      for (std::size_t i = 0; i < depth; ++i) doc += objects ? "{\"a\":" : "[";
      doc += "1";
      for (std::size_t i = 0; i < depth; ++i) doc += objects ? "}" : "]";
      CAPTURE(depth);
      CAPTURE(objects);
      simdjson::padded_string padded(doc);
      simdjson::dom::element root;
      bool simdjson_ok = parser.parse(padded).get(root) == simdjson::SUCCESS;
      CHECK(simdjson_ok == !locate_json_error(doc, kDepth).found);
    }
  }
}

TEST_CASE("numbers at the edge of range agree with simdjson") {
  simdjson::dom::parser parser;
  for (const char* number : {"1e-400",
                             "-1e-400",
                             "4.9e-324",
                             "2.4e-324",
                             "1.7976931348623157e308",
                             "1.797693134862315807e308",
                             "1.797693134862315808e308",
                             "1.7976931348623159e308",
                             "-1.7976931348623159e308",
                             "100000000000000000000000000000000000000e300",
                             "123456789012345678901234.5",
                             "9223372036854775808",
                             "18446744073709551615",
                             "18446744073709551616",
                             "-9223372036854775808",
                             "-9223372036854775809",
                             "-18446744073709551615",
                             "-0",
                             "0e0",
                             "-0.0E-0"}) {
    std::string doc = std::string("[") + number + "]";
    CAPTURE(doc);
    simdjson::padded_string padded(doc);
    simdjson::dom::element root;
    bool simdjson_ok = parser.parse(padded).get(root) == simdjson::SUCCESS;
    CHECK(simdjson_ok == !locate_json_error(doc, kDepth).found);
  }
}
