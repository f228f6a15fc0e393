// Access policy: CIDR parsing (every error and its message), matching at prefix boundaries, lists, the deny/allow
// order, the rate table (injected clock) and the shared connection counters (also from several threads).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "route/access_policy.hpp"

using namespace ringtun::route;  // NOLINT
using ringtun::Errc;

namespace {

Cidr cidr(std::string_view text) {
  std::string error_text;
  auto parsed = parse_cidr(text, &error_text);
  REQUIRE_MESSAGE(parsed.has_value(), error_text);
  return *parsed;
}

IpAddress ip(std::string_view text) {
  const Cidr host = cidr(text);
  REQUIRE(host.bits == 128);
  return host.prefix;
}

// The message parse_cidr gives for `text`, or "parsed: <cidr>" when it accepts it.
std::string error_of(std::string_view text) {
  std::string error_text = "untouched";
  auto parsed = parse_cidr(text, &error_text);
  if (parsed) return "parsed: " + parsed->to_string();
  CHECK(parsed.error().code() == Errc::kInvalidArgument);
  return error_text;
}

std::string list_error_of(std::string_view text) {
  std::string error_text = "untouched";
  auto parsed = parse_cidr_list(text, &error_text);
  if (parsed) return "parsed " + std::to_string(parsed->size());
  CHECK(parsed.error().code() == Errc::kInvalidArgument);
  return error_text;
}

IpAddress v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  const std::uint8_t bytes[4] = {a, b, c, d};
  return IpAddress::from_v4(bytes);
}

TEST_CASE("NetworkSet: the same answers as walking the list, for random networks and addresses") {
  std::mt19937_64 rng(20261202);
  for (int round = 0; round < 200; ++round) {
    std::vector<Cidr> list;
    const int count = static_cast<int>(rng() % 40);
    for (int i = 0; i < count; ++i) {
      IpAddress base;
      const bool v4 = rng() % 2 == 0;
      for (auto& b : base.bytes) b = static_cast<std::uint8_t>(rng() % 4);  // small alphabet: overlaps happen
      if (v4) {
        std::uint8_t four[4] = {static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3),
                                static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3)};
        base = IpAddress::from_v4(four);
      }
      const unsigned bits = v4 ? 96 + static_cast<unsigned>(rng() % 33) : static_cast<unsigned>(rng() % 129);
      Cidr c;
      c.bits = static_cast<std::uint8_t>(bits);
      for (unsigned bit = 0; bit < 128; ++bit) {  // the prefix: base with the host bits cleared
        if (bit < bits && (base.bytes[bit / 8] & (0x80u >> (bit % 8))) != 0) {
          c.prefix.bytes[bit / 8] = static_cast<std::uint8_t>(c.prefix.bytes[bit / 8] | (0x80u >> (bit % 8)));
        }
      }
      list.push_back(c);
    }
    const NetworkSet set(list);
    CHECK(set.ranges() <= list.size());
    for (int probe = 0; probe < 300; ++probe) {
      IpAddress a;
      if (rng() % 2 == 0) {
        std::uint8_t four[4] = {static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3),
                                static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3)};
        a = IpAddress::from_v4(four);
      } else {
        for (auto& b : a.bytes) b = static_cast<std::uint8_t>(rng() % 4);
      }
      CAPTURE(round);
      CAPTURE(a.to_string());
      CHECK(set.contains(a) == any_contains(list, a));
    }
  }
}

TEST_CASE("NetworkSet: edges of the address space, nesting and adjacent networks merged") {
  const std::vector<Cidr> everything = {cidr("::/0")};
  CHECK(NetworkSet(everything).contains(ip("::")));
  CHECK(NetworkSet(everything).contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  const std::vector<Cidr> adjacent = {cidr("10.0.0.0/25"), cidr("10.0.0.128/25"), cidr("10.0.0.7"),
                                      cidr("255.255.255.255/32"), cidr("ffff:ffff:ffff:ffff::/64")};
  const NetworkSet set(adjacent);
  CHECK(set.ranges() == 3);  // 10.0.0.0/24 in one piece, the broadcast address, the top /64
  CHECK(set.contains(ip("10.0.0.0")));
  CHECK(set.contains(ip("10.0.0.255")));
  CHECK_FALSE(set.contains(ip("10.0.1.0")));
  CHECK(set.contains(ip("255.255.255.255")));
  CHECK_FALSE(set.contains(ip("255.255.255.254")));
  CHECK(set.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(set.contains(ip("ffff:ffff:ffff:fffe:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(NetworkSet().contains(ip("1.2.3.4")));
  // check_lists gives the same verdicts compiled and not.
  AccessRules rules;
  rules.allow = {cidr("10.0.0.0/8")};
  rules.deny = {cidr("10.1.0.0/16")};
  const Verdict before = check_lists(rules, ip("10.1.2.3"));
  rules.compile();
  CHECK(check_lists(rules, ip("10.1.2.3")) == before);
  CHECK(check_lists(rules, ip("10.2.0.1")) == Verdict::kAllowed);
  CHECK(check_lists(rules, ip("11.0.0.1")) == Verdict::kNotAllowed);
}

}  // namespace

TEST_CASE("IPv4 CIDRs are held over the IPv4-mapped form") {
  const Cidr ten = cidr("10.0.0.0/8");
  CHECK(ten.bits == 96 + 8);
  CHECK(ten.prefix == v4(10, 0, 0, 0));
  CHECK(ten.prefix.is_v4());
  CHECK(cidr("127.0.0.2").bits == 128);
  CHECK(cidr("127.0.0.2").prefix == v4(127, 0, 0, 2));
  CHECK(cidr("0.0.0.0/0").bits == 96);
  CHECK(cidr("255.255.255.255/32").prefix == v4(255, 255, 255, 255));
  CHECK(cidr("0.0.0.0").prefix == v4(0, 0, 0, 0));
}

TEST_CASE("IPv6 CIDRs") {
  const Cidr doc = cidr("2001:db8::/32");
  CHECK(doc.bits == 32);
  CHECK(doc.prefix.bytes[0] == 0x20);
  CHECK(doc.prefix.bytes[1] == 0x01);
  CHECK(doc.prefix.bytes[2] == 0x0d);
  CHECK(doc.prefix.bytes[3] == 0xb8);
  CHECK_FALSE(doc.prefix.is_v4());
  CHECK(cidr("::/0").bits == 0);
  CHECK(cidr("::1").bits == 128);
  CHECK(cidr("2001:DB8::1/128") == cidr("2001:db8::1"));
}

TEST_CASE("::ffff:a.b.c.d is the IPv4 address") {
  const Cidr mapped = cidr("::ffff:1.2.3.4");
  CHECK(mapped.prefix.is_v4());
  CHECK(mapped == cidr("1.2.3.4"));
  CHECK(mapped.to_string() == "1.2.3.4/32");
  CHECK(cidr("1.2.0.0/16").contains(mapped.prefix));
  CHECK(cidr("::ffff:1.2.0.0/112") == cidr("1.2.0.0/16"));
}

TEST_CASE("parse_cidr errors name the rule and quote the input") {
  SUBCASE("IPv4 parts") {
    CHECK(error_of("1.2.3.256") == "1.2.3.256: an IPv4 part is above 255");
    CHECK(error_of("1.2.3.99999999999999999999") == "1.2.3.99999999999999999999: an IPv4 part is above 255");
    CHECK(error_of("01.2.3.4") == "01.2.3.4: an IPv4 part has a leading zero (octal or decimal?)");
    CHECK(error_of("1.2.3.00") == "1.2.3.00: an IPv4 part has a leading zero (octal or decimal?)");
    const std::string four_parts = ": an IPv4 address has four parts separated by '.', none of them empty";
    CHECK(error_of("1.2.3.4.5") == "1.2.3.4.5" + four_parts);
    CHECK(error_of("1.2.3") == "1.2.3" + four_parts);
    CHECK(error_of("1..2.3") == "1..2.3" + four_parts);
    CHECK(error_of("1.2.3.4.") == "1.2.3.4." + four_parts);
    CHECK(error_of(".1.2.3") == ".1.2.3" + four_parts);
    CHECK(error_of("10") == "10" + four_parts);
    CHECK(error_of("10/8") == "10/8" + four_parts);
  }
  SUBCASE("prefix lengths") {
    CHECK(error_of("10.0.0.0/33") == "10.0.0.0/33: the prefix length is above 32 for IPv4");
    CHECK(error_of("10.0.0.0/4294967296") == "10.0.0.0/4294967296: the prefix length is above 32 for IPv4");
    CHECK(error_of("::/129") == "::/129: the prefix length is above 128 for IPv6");
    CHECK(error_of("::ffff:1.2.3.4/129") == "::ffff:1.2.3.4/129: the prefix length is above 128 for IPv6");
    CHECK(error_of("10.0.0.0/08") == "10.0.0.0/08: the prefix length has a leading zero");
    CHECK(error_of("::/00") == "::/00: the prefix length has a leading zero");
    CHECK(error_of("10.0.0.0/") == "10.0.0.0/: empty prefix length after '/'");
    CHECK(error_of("10.0.0.0/-1") == "10.0.0.0/-1: the prefix length is not a decimal number");
    CHECK(error_of("10.0.0.0/+8") == "10.0.0.0/+8: the prefix length is not a decimal number");
    CHECK(error_of("10.0.0.0/ 8") == "10.0.0.0/ 8: the prefix length is not a decimal number");
    CHECK(error_of("10.0.0.0/8/8") == "10.0.0.0/8/8: the prefix length is not a decimal number");
    CHECK(error_of("10.0.0.0/0x8") == "10.0.0.0/0x8: the prefix length is not a decimal number");
  }
  SUBCASE("host bits past the prefix suggest the network") {
    CHECK(error_of("10.0.0.1/8") == "10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)");
    CHECK(error_of("192.168.1.77/24") == "192.168.1.77/24: host bits are set (the network is 192.168.1.0/24)");
    CHECK(error_of("10.0.0.3/31") == "10.0.0.3/31: host bits are set (the network is 10.0.0.2/31)");
    CHECK(error_of("1.2.3.4/0") == "1.2.3.4/0: host bits are set (the network is 0.0.0.0/0)");
    CHECK(error_of("2001:db8::1/32") == "2001:db8::1/32: host bits are set (the network is 2001:db8::/32)");
    CHECK(error_of("::1/0") == "::1/0: host bits are set (the network is ::/0)");
    CHECK(error_of("::ffff:10.0.0.1/104") == "::ffff:10.0.0.1/104: host bits are set (the network is 10.0.0.0/8)");
    // Below /96 the ffff of the mapped form is itself host bits.
    CHECK(error_of("::ffff:0.0.0.0/95") == "::ffff:0.0.0.0/95: host bits are set (the network is ::fffe:0:0/95)");
  }
  SUBCASE("empty and garbage") {
    CHECK(error_of("") == "empty address (expected ADDR or ADDR/BITS)");
    CHECK(error_of("abc") == "abc: not an IPv4 or IPv6 address");
    CHECK(error_of("localhost/8") == "localhost/8: not an IPv4 or IPv6 address");
    CHECK(error_of(" 1.2.3.4") == " 1.2.3.4: not an IPv4 or IPv6 address");
    CHECK(error_of("1.2.3.4 ") == "1.2.3.4 : not an IPv4 or IPv6 address");
    CHECK(error_of("-1.2.3.4") == "-1.2.3.4: not an IPv4 or IPv6 address");
    CHECK(error_of("/8") == "/8: an IPv4 address has four parts separated by '.', none of them empty");
    CHECK(error_of("::g") == "::g: not an IPv6 address");
    CHECK(error_of(":::") == ":::: not an IPv6 address");
    CHECK(error_of("1:2:3:4:5:6:7:8:9") == "1:2:3:4:5:6:7:8:9: not an IPv6 address");
    CHECK(error_of("::ffff:01.2.3.4") == "::ffff:01.2.3.4: not an IPv6 address");
    CHECK(error_of("fe80::1%eth0") == "fe80::1%eth0: not an IPv6 address");
    CHECK(error_of(std::string(60, ':')) == std::string(60, ':') + ": not an IPv6 address");
  }
  SUBCASE("unprintable and long input") {
    // inet_pton stops at a NUL: what precedes it must not be taken for the whole.
    CHECK(error_of(std::string_view("::1\0junk", 8)) == "::1\\x00junk: not an IPv6 address");
    CHECK(error_of("\x01\xff"
                   "1.2.3.4\n") == "\\x01\\xff1.2.3.4\\x0a: not an IPv4 or IPv6 address");
    const std::string long_text(200, 'x');
    CHECK(error_of(long_text) == std::string(80, 'x') + "...: not an IPv4 or IPv6 address");
  }
  SUBCASE("without an error text") {
    CHECK_FALSE(parse_cidr("10.0.0.1/8", nullptr).has_value());
    CHECK_FALSE(parse_cidr_list("10.0.0.0/8,", nullptr).has_value());
  }
}

TEST_CASE("contains at prefix boundaries") {
  SUBCASE("/0") {
    const Cidr everything = cidr("::/0");
    CHECK(everything.contains(ip("::")));
    CHECK(everything.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    CHECK(everything.contains(ip("10.1.2.3")));
    const Cidr every_v4 = cidr("0.0.0.0/0");
    CHECK(every_v4.contains(ip("0.0.0.0")));
    CHECK(every_v4.contains(ip("255.255.255.255")));
    CHECK_FALSE(every_v4.contains(ip("::1")));
    CHECK_FALSE(every_v4.contains(ip("2001:db8::1")));
    CHECK_FALSE(every_v4.contains(ip("::fffe:1.2.3.4")));
  }
  SUBCASE("/1") {
    const Cidr upper = cidr("128.0.0.0/1");
    CHECK(upper.contains(ip("128.0.0.0")));
    CHECK(upper.contains(ip("255.255.255.255")));
    CHECK_FALSE(upper.contains(ip("127.255.255.255")));
    const Cidr lower = cidr("0.0.0.0/1");
    CHECK(lower.contains(ip("127.255.255.255")));
    CHECK_FALSE(lower.contains(ip("128.0.0.0")));
    const Cidr v6_upper = cidr("8000::/1");
    CHECK(v6_upper.contains(ip("8000::")));
    CHECK(v6_upper.contains(ip("ffff::1")));
    CHECK_FALSE(v6_upper.contains(ip("7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  }
  SUBCASE("/31 and /32") {
    const Cidr pair = cidr("10.0.0.2/31");
    CHECK_FALSE(pair.contains(ip("10.0.0.1")));
    CHECK(pair.contains(ip("10.0.0.2")));
    CHECK(pair.contains(ip("10.0.0.3")));
    CHECK_FALSE(pair.contains(ip("10.0.0.4")));
    const Cidr one = cidr("10.0.0.2/32");
    CHECK(one.contains(ip("10.0.0.2")));
    CHECK_FALSE(one.contains(ip("10.0.0.3")));
    CHECK_FALSE(one.contains(ip("10.0.0.1")));
    CHECK_FALSE(one.contains(ip("::a00:2")));  // IPv4-compatible, not mapped: another address
  }
  SUBCASE("/127 and /128") {
    const Cidr pair = cidr("2001:db8::2/127");
    CHECK_FALSE(pair.contains(ip("2001:db8::1")));
    CHECK(pair.contains(ip("2001:db8::2")));
    CHECK(pair.contains(ip("2001:db8::3")));
    CHECK_FALSE(pair.contains(ip("2001:db8::4")));
    const Cidr one = cidr("2001:db8::1/128");
    CHECK(one.contains(ip("2001:db8::1")));
    CHECK_FALSE(one.contains(ip("2001:db8::")));
    CHECK_FALSE(one.contains(ip("2001:db8::3")));
  }
  SUBCASE("an IPv6 /64 and a /10 that ends inside a byte") {
    const Cidr subnet = cidr("2001:db8:0:1::/64");
    CHECK(subnet.contains(ip("2001:db8:0:1::")));
    CHECK(subnet.contains(ip("2001:db8:0:1:ffff:ffff:ffff:ffff")));
    CHECK_FALSE(subnet.contains(ip("2001:db8:0:2::")));
    CHECK_FALSE(subnet.contains(ip("2001:db8::ffff:ffff:ffff:ffff")));
    const Cidr link_local = cidr("fe80::/10");
    CHECK(link_local.contains(ip("fe80::1")));
    CHECK(link_local.contains(ip("febf:ffff::1")));
    CHECK_FALSE(link_local.contains(ip("fec0::1")));
    CHECK_FALSE(link_local.contains(ip("fe7f::1")));
  }
}

TEST_CASE("IpAddress from socket bytes and as text") {
  const std::uint8_t loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  CHECK(IpAddress::from_v6(loopback6) == ip("::1"));
  CHECK_FALSE(IpAddress::from_v6(loopback6).is_v4());
  CHECK(v4(10, 1, 2, 3) == ip("10.1.2.3"));
  CHECK(v4(10, 1, 2, 3) == ip("::ffff:10.1.2.3"));
  CHECK(v4(10, 1, 2, 3).to_string() == "10.1.2.3");
  CHECK(v4(0, 0, 0, 0).to_string() == "0.0.0.0");
  CHECK(ip("::1").to_string() == "::1");
  CHECK(ip("2001:0db8:0000:0000:0000:0000:0000:0001").to_string() == "2001:db8::1");
  CHECK(ip("::").to_string() == "::");
}

TEST_CASE("Cidr::to_string is the canonical text and parses back to the same network") {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"127.0.0.2", "127.0.0.2/32"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"255.255.255.254/31", "255.255.255.254/31"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"2001:0DB8:0000::/32", "2001:db8::/32"},
      {"::1", "::1/128"},
      {"::/0", "::/0"},
      {"::ffff:10.0.0.0/104", "10.0.0.0/8"},
      {"::ffff:0:0/96", "0.0.0.0/0"},
      {"fe80::/10", "fe80::/10"},
      {"2001:db8:0:1::/64", "2001:db8:0:1::/64"},
  };
  for (const auto& [text, canonical] : cases) {
    CAPTURE(text);
    const Cidr parsed = cidr(text);
    CHECK(parsed.to_string() == canonical);
    CHECK(cidr(parsed.to_string()) == parsed);
  }
}

TEST_CASE("parse_cidr_list") {
  SUBCASE("spaces around entries") {
    std::string error_text;
    auto list = parse_cidr_list(" 10.0.0.0/8 ,2001:db8::/32,\t127.0.0.1 ", &error_text);
    REQUIRE_MESSAGE(list.has_value(), error_text);
    REQUIRE(list->size() == 3);
    CHECK((*list)[0] == cidr("10.0.0.0/8"));
    CHECK((*list)[1] == cidr("2001:db8::/32"));
    CHECK((*list)[2] == cidr("127.0.0.1"));
    CHECK(list_error_of("1.2.3.4") == "parsed 1");
  }
  SUBCASE("empty entries and lists") {
    CHECK(list_error_of("10.0.0.0/8,,1.2.3.4") == "10.0.0.0/8,,1.2.3.4: empty entry (number 2)");
    CHECK(list_error_of("10.0.0.0/8, ") == "10.0.0.0/8, : empty entry (number 2)");
    CHECK(list_error_of(",10.0.0.0/8") == ",10.0.0.0/8: empty entry (number 1)");
    CHECK(list_error_of(",") == ",: empty entry (number 1)");
    CHECK(list_error_of("") == "empty list (expected CIDR[,CIDR...])");
    CHECK(list_error_of("  ") == "empty list (expected CIDR[,CIDR...])");
  }
  SUBCASE("an entry's error quotes the entry") {
    CHECK(list_error_of("10.0.0.0/8,  10.0.0.1/8 ") == "10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)");
    CHECK(list_error_of("10.0.0.0/8;1.2.3.4") == "10.0.0.0/8;1.2.3.4: the prefix length is not a decimal number");
  }
  SUBCASE("a network listed twice, however written") {
    CHECK(list_error_of("10.0.0.0/8,1.2.3.4,::ffff:10.0.0.0/104") == "10.0.0.0/8 is listed twice (entries 1 and 3)");
    CHECK(list_error_of("2001:db8::/32, 2001:DB8::/32") == "2001:db8::/32 is listed twice (entries 1 and 2)");
    // The same prefix at another length is another network.
    CHECK(list_error_of("10.0.0.0/8,10.0.0.0/16") == "parsed 2");
  }
  SUBCASE("at most kMaxCidrs entries") {
    std::string text;
    for (std::size_t i = 0; i < kMaxCidrs; ++i) {
      if (i != 0) text += ',';
      text += "10.0." + std::to_string(i / 256) + '.' + std::to_string(i % 256);
    }
    CHECK(list_error_of(text) == "parsed 4096");
    CHECK(list_error_of(text + ",1.1.1.1") == "more than 4096 entries in one list");
    CHECK(list_error_of(text + ",10.0.0.0") == "more than 4096 entries in one list");
  }
}

TEST_CASE("check_lists: deny before allow") {
  AccessRules rules;
  CHECK(rules.empty());
  CHECK(check_lists(rules, ip("1.2.3.4")) == Verdict::kAllowed);
  rules.allow = {cidr("10.0.0.0/8")};
  rules.deny = {cidr("10.1.0.0/16"), cidr("2001:db8::/32")};
  CHECK_FALSE(rules.empty());
  CHECK(check_lists(rules, ip("10.1.2.3")) == Verdict::kDenied);
  CHECK(check_lists(rules, ip("10.2.0.1")) == Verdict::kAllowed);
  CHECK(check_lists(rules, ip("11.0.0.1")) == Verdict::kNotAllowed);
  CHECK(check_lists(rules, ip("2001:db8::1")) == Verdict::kDenied);
  CHECK(check_lists(rules, ip("2001:db9::1")) == Verdict::kNotAllowed);
  rules.allow.clear();  // no allow list: all but the denied
  CHECK(check_lists(rules, ip("11.0.0.1")) == Verdict::kAllowed);
  CHECK(check_lists(rules, ip("10.1.0.0")) == Verdict::kDenied);
  CHECK(any_contains(rules.deny, ip("10.1.255.255")));
  CHECK_FALSE(any_contains({}, ip("10.1.255.255")));

  AccessRules rate_only;
  rate_only.conn_rate = 1;
  CHECK_FALSE(rate_only.empty());
}

TEST_CASE("verdict_name") {
  CHECK(std::string(verdict_name(Verdict::kAllowed)) == "allowed");
  CHECK(std::string(verdict_name(Verdict::kDenied)) == "denied");
  CHECK(std::string(verdict_name(Verdict::kNotAllowed)) == "not_allowed");
  CHECK(std::string(verdict_name(Verdict::kRateLimited)) == "rate_limited");
  CHECK(std::string(verdict_name(Verdict::kServiceFull)) == "max_conns");
  CHECK(std::string(verdict_name(Verdict::kClientFull)) == "max_conns_per_client");
  CHECK(std::string(verdict_name(static_cast<Verdict>(200))) == "unknown");
}

TEST_CASE("RateTable") {
  constexpr std::uint64_t kSeed = 0x5eed;
  SUBCASE("slots are a power of two, at least 64") {
    CHECK(RateTable(0, kSeed).slots() == 64);
    CHECK(RateTable(64, kSeed).slots() == 64);
    CHECK(RateTable(65, kSeed).slots() == 128);
  }
  SUBCASE("burst, then refusal, then refill as time passes, capped at the burst") {
    RateTable table(1024, kSeed);
    const IpAddress client = ip("10.0.0.1");
    // 2 connections a second, bursts of 3.
    CHECK(table.take(client, 0, 2000, 3000, 1000));
    CHECK(table.take(client, 0, 2000, 3000, 1000));
    CHECK(table.take(client, 0, 2000, 3000, 1000));
    CHECK_FALSE(table.take(client, 0, 2000, 3000, 1000));
    CHECK_FALSE(table.take(client, 0, 2000, 3000, 1499));  // 998 thousandths
    CHECK(table.take(client, 0, 2000, 3000, 1500));
    CHECK_FALSE(table.take(client, 0, 2000, 3000, 1500));
    // A long quiet spell fills the bucket to the burst, no further.
    for (int i = 0; i < 3; ++i) CHECK(table.take(client, 0, 2000, 3000, 100000));
    CHECK_FALSE(table.take(client, 0, 2000, 3000, 100000));
  }
  SUBCASE("a clock that goes backwards adds nothing") {
    RateTable table(64, kSeed);
    const IpAddress client = ip("10.0.0.1");
    CHECK(table.take(client, 0, 1000, 1000, 5000));
    CHECK_FALSE(table.take(client, 0, 1000, 1000, 1000));
    CHECK_FALSE(table.take(client, 0, 1000, 1000, 5999));
    CHECK(table.take(client, 0, 1000, 1000, 6000));
  }
  SUBCASE("rates below one a second add up over short gaps") {
    RateTable table(64, kSeed);
    const IpAddress client = ip("10.0.0.1");
    CHECK(table.take(client, 0, 500, 1000, 0));
    std::uint64_t allowed_at = 0;
    for (std::uint64_t now = 1; now <= 3000 && allowed_at == 0; ++now) {
      if (table.take(client, 0, 500, 1000, now)) allowed_at = now;
    }
    CHECK(allowed_at == 2000);
  }
  SUBCASE("huge rates and times saturate instead of overflowing") {
    RateTable table(64, kSeed);
    const IpAddress client = ip("::1");
    CHECK(table.take(client, 0, UINT64_MAX / 2, 2000, 0));
    CHECK(table.take(client, 0, UINT64_MAX / 2, 2000, 0));
    CHECK_FALSE(table.take(client, 0, UINT64_MAX / 2, 2000, 0));
    CHECK(table.take(client, 0, UINT64_MAX / 2, 2000, UINT64_MAX));
    CHECK(table.take(client, 0, UINT64_MAX / 2, 2000, UINT64_MAX));
    CHECK_FALSE(table.take(client, 0, UINT64_MAX / 2, 2000, UINT64_MAX));
  }
  SUBCASE("addresses and tokens have buckets of their own") {
    RateTable table(1 << 16, kSeed);
    const IpAddress a = ip("10.0.0.1");
    const IpAddress b = ip("10.0.0.2");
    CHECK(table.take(a, 0, 1000, 1000, 0));
    CHECK_FALSE(table.take(a, 0, 1000, 1000, 0));
    CHECK(table.take(b, 0, 1000, 1000, 0));
    CHECK(table.take(a, 1, 1000, 1000, 0));
    CHECK_FALSE(table.take(b, 0, 1000, 1000, 0));
    CHECK_FALSE(table.take(a, 1, 1000, 1000, 0));
  }
  SUBCASE("another key takes a slot over with a full bucket") {
    RateTable table(64, kSeed);
    const IpAddress a = ip("10.0.0.1");
    CHECK(table.take(a, 0, 1000, 1000, 0));
    CHECK_FALSE(table.take(a, 0, 1000, 1000, 0));
    // 1000 other addresses over 64 slots: every one starts full, and one of them has taken a's slot (each lands there
    // with odds 1/64; the seed is fixed, so this is deterministic).
    for (std::uint32_t i = 0; i < 1000; ++i) {
      const auto n = static_cast<std::uint8_t>(i);
      CHECK(table.take(v4(172, 16, static_cast<std::uint8_t>(i >> 8), n), 0, 1000, 1000, 0));
    }
    // a's bucket was evicted: it starts again full although no time passed (the limit is approximate, never the
    // memory).
    CHECK(table.take(a, 0, 1000, 1000, 0));
  }
}

TEST_CASE("ClientCounts") {
  ClientCounts counts(256, 7);
  const IpAddress a = ip("10.0.0.1");
  const std::uint32_t slot = counts.slot_of(a, 3);
  CHECK(slot < 256);
  CHECK(counts.slot_of(a, 3) == slot);
  CHECK(counts.held(slot) == 0);
  CHECK(counts.try_acquire(slot, 2));
  CHECK(counts.try_acquire(slot, 2));
  CHECK_FALSE(counts.try_acquire(slot, 2));
  CHECK(counts.held(slot) == 2);
  counts.release(slot);
  CHECK(counts.held(slot) == 1);
  CHECK(counts.try_acquire(slot, 2));
  CHECK_FALSE(counts.try_acquire(slot, 1));  // a lower limit refuses what is already held
  counts.release(slot);
  counts.release(slot);
  CHECK(counts.held(slot) == 0);
  CHECK_FALSE(counts.try_acquire(slot, 0));

  SUBCASE("one shared slot: addresses share the limit (errs toward refusing)") {
    ClientCounts one(1, 7);
    const std::uint32_t first = one.slot_of(ip("10.0.0.1"), 0);
    const std::uint32_t second = one.slot_of(ip("2001:db8::1"), 5);
    CHECK(first == 0);
    CHECK(second == 0);
    CHECK(one.try_acquire(first, 1));
    CHECK_FALSE(one.try_acquire(second, 1));
  }
  SUBCASE("slots spread over the table") {
    std::set<std::uint32_t> slots;
    for (std::uint32_t i = 0; i < 64; ++i) slots.insert(counts.slot_of(v4(10, 0, 0, static_cast<std::uint8_t>(i)), 0));
    CHECK(slots.size() > 40);  // 64 balls in 256 bins: about 57 distinct
  }
}

TEST_CASE("ServiceCounts") {
  SUBCASE("service_key") {
    const std::uint64_t key = service_key(1, 2, 443, "app.example.com");
    CHECK(key != 0);
    CHECK(service_key(1, 2, 443, "app.example.com") == key);
    CHECK(service_key(0, 2, 443, "app.example.com") != key);
    CHECK(service_key(1, 1, 443, "app.example.com") != key);
    CHECK(service_key(1, 2, 444, "app.example.com") != key);
    CHECK(service_key(1, 2, 443, "app.example.org") != key);
    CHECK(service_key(1, 2, 443, std::string_view("a\0", 2)) != service_key(1, 2, 443, "a"));
    CHECK(service_key(1, 0, 0, "") != 0);
  }
  SUBCASE("limits and release") {
    ServiceCounts counts(16);
    const std::uint32_t slot = counts.slot_of(service_key(0, 0, 8080, ""));
    REQUIRE(slot != ServiceCounts::kNoSlot);
    CHECK(counts.slot_of(service_key(0, 0, 8080, "")) == slot);
    CHECK(counts.try_acquire(slot, 2));
    CHECK(counts.try_acquire(slot, 2));
    CHECK_FALSE(counts.try_acquire(slot, 2));
    CHECK(counts.held(slot) == 2);
    counts.release(slot);
    CHECK(counts.try_acquire(slot, 2));
    counts.release(slot);
    counts.release(slot);
    CHECK(counts.held(slot) == 0);
    CHECK_FALSE(counts.full());
  }
  SUBCASE("a full table returns kNoSlot, which is not counted") {
    ServiceCounts counts(3);  // rounded up to 4
    std::vector<std::uint32_t> slots;
    for (std::uint16_t port = 1; port <= 4; ++port) slots.push_back(counts.slot_of(service_key(0, 0, port, "")));
    CHECK(std::find(slots.begin(), slots.end(), ServiceCounts::kNoSlot) == slots.end());
    CHECK(std::set<std::uint32_t>(slots.begin(), slots.end()).size() == 4);
    CHECK_FALSE(counts.full());
    const std::uint32_t none = counts.slot_of(service_key(0, 0, 5, ""));
    CHECK(none == ServiceCounts::kNoSlot);
    CHECK(counts.full());
    CHECK(counts.try_acquire(none, 0));
    CHECK(counts.held(none) == 0);
    counts.release(none);
    // Keys already in keep their counters.
    for (std::uint16_t port = 1; port <= 4; ++port) {
      CHECK(counts.slot_of(service_key(0, 0, port, "")) == slots[port - 1]);
    }
  }
  SUBCASE("four threads inserting the same keys agree on their slots") {
    constexpr std::size_t kKeys = 32;
    ServiceCounts counts(kKeys);
    std::vector<std::vector<std::uint32_t>> seen(4, std::vector<std::uint32_t>(kKeys));
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 4; ++t) {
      threads.emplace_back([&counts, &seen, t] {
        for (std::size_t i = 0; i < kKeys; ++i) {
          const std::size_t k = (t % 2 == 0) ? i : kKeys - 1 - i;  // two orders, so that inserts race
          seen[t][k] = counts.slot_of(service_key(static_cast<std::uint32_t>(k), 0, 1, ""));
        }
      });
    }
    for (auto& thread : threads) thread.join();
    CHECK_FALSE(counts.full());
    for (std::size_t t = 1; t < 4; ++t) CHECK(seen[t] == seen[0]);
    CHECK(std::set<std::uint32_t>(seen[0].begin(), seen[0].end()).size() == kKeys);
  }
  SUBCASE("four threads acquiring and releasing keep the counts exact") {
    ServiceCounts counts(64);
    constexpr std::uint32_t kLimit = 1000;
    const std::uint64_t contended = service_key(0, 0, 80, "");
    std::atomic<std::uint32_t> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&counts, &granted, contended] {
        // Churn on a few keys, each acquire released again...
        for (std::uint32_t i = 0; i < 20000; ++i) {
          const std::uint32_t slot = counts.slot_of(service_key(1, 0, static_cast<std::uint16_t>(i % 8), ""));
          if (counts.try_acquire(slot, 3)) counts.release(slot);
        }
        // ... then all four race for one key's kLimit places, holding what they get.
        const std::uint32_t slot = counts.slot_of(contended);
        for (std::uint32_t i = 0; i < kLimit; ++i) {
          if (counts.try_acquire(slot, kLimit)) granted.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    CHECK(granted.load() == kLimit);
    CHECK(counts.held(counts.slot_of(contended)) == kLimit);
    for (std::uint16_t port = 0; port < 8; ++port) CHECK(counts.held(counts.slot_of(service_key(1, 0, port, ""))) == 0);
  }
}

TEST_CASE("ClientCounts from four threads") {
  ClientCounts counts(64, 1);
  const std::uint32_t slot = counts.slot_of(ip("10.0.0.1"), 0);
  std::atomic<std::uint32_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (counts.try_acquire(slot, 2)) counts.release(slot);
      }
      for (int i = 0; i < 100; ++i) {
        if (counts.try_acquire(slot, 50)) granted.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(granted.load() == 50);
  CHECK(counts.held(slot) == 50);
}
