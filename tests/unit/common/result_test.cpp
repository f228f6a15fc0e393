#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "common/result.hpp"

using ringtun::Errc;
using ringtun::Result;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return ringtun::fail(Errc::kInvalidArgument, "parse_positive");
  return v;
}
Result<int> doubled(int v) {
  RINGTUN_TRY(parse_positive(v));
  return v * 2;
}
}  // namespace

TEST_CASE("Result carries a value or an error") {
  auto ok = parse_positive(3);
  REQUIRE(ok.has_value());
  CHECK(*ok == 3);
  auto bad = parse_positive(-1);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == Errc::kInvalidArgument);
  CHECK(std::string(bad.error().context()) == "parse_positive");
}

TEST_CASE("RINGTUN_TRY propagates the first error") {
  CHECK(*doubled(4) == 8);
  auto r = doubled(0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::kInvalidArgument);
}

TEST_CASE("Result holds move-only values and copies values with destructors") {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  REQUIRE(r);
  auto p = std::move(r).value();
  CHECK(*p == 7);
  Result<std::string> s(std::string(100, 'x'));
  Result<std::string> s2 = s;
  s = ringtun::fail(Errc::kClosed);
  CHECK(s2->size() == 100);
  CHECK_FALSE(s);
}

TEST_CASE("errno errors describe themselves") {
  ringtun::Error e = ringtun::Error::from_errno(-ECONNREFUSED, "connect");
  CHECK(e.code() == Errc::kSystem);
  CHECK(e.sys_errno() == ECONNREFUSED);
  char buf[128];
  std::string text = e.describe(buf, sizeof buf);
  CHECK(text.find("connect: ") == 0);
  CHECK(text.find(std::strerror(ECONNREFUSED)) != std::string::npos);
  ringtun::Error plain(Errc::kLimit, "max streams");
  CHECK(std::string(plain.describe(buf, sizeof buf)) == "max streams: limit exceeded");
}

TEST_CASE("Result<void>") {
  ringtun::Status ok;
  CHECK(ok);
  ringtun::Status bad = ringtun::fail(Errc::kTimedOut, "connect");
  CHECK_FALSE(bad);
  CHECK(bad.error().code() == Errc::kTimedOut);
}
