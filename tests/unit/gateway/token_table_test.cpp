// TokenTable and plan_token_reload: a reload keeps each kept token's index, revokes removed ones in place, appends
// new ones, and says which changed how; restart_only_changes names what a reload cannot apply.
#include <doctest/doctest.h>

#include "gateway/token_table.hpp"

namespace ringtun::gateway {
namespace {

app::TokenRule token(const char* secret, std::uint16_t low = 1, std::uint16_t high = 65535) {
  app::TokenRule rule;
  rule.secret = secret;
  rule.port_low = low;
  rule.port_high = high;
  return rule;
}

route::Cidr cidr(const char* text) {
  std::string error;
  auto parsed = route::parse_cidr(text, &error);
  REQUIRE(parsed);
  return *parsed;
}

TEST_CASE("a reload that changes nothing plans nothing") {
  const TokenTable table = make_token_table({token("a"), token("b")});
  const TokenReload plan = plan_token_reload(table, {token("b"), token("a")});  // order in the file does not matter
  CHECK(plan.added.empty());
  CHECK(plan.removed.empty());
  CHECK(plan.changed.empty());
  CHECK(plan.policies_changed == 0);
  CHECK_FALSE(plan.any_policy);
  REQUIRE(plan.table.slots.size() == 2);
  CHECK(plan.table.live(0)->secret == "a");
  CHECK(plan.table.live(1)->secret == "b");
}

TEST_CASE("kept tokens keep their index; removed ones are revoked in place; new ones are appended") {
  const TokenTable table = make_token_table({token("a"), token("b"), token("c")});
  const TokenReload plan = plan_token_reload(table, {token("new"), token("c"), token("a")});
  CHECK(plan.removed == std::vector<std::uint32_t>{1});
  CHECK(plan.added == std::vector<std::uint32_t>{3});
  CHECK(plan.changed.empty());
  REQUIRE(plan.table.slots.size() == 4);
  CHECK(plan.table.live(0)->secret == "a");
  CHECK(plan.table.live(1) == nullptr);
  CHECK(plan.table.slots[1].revoked);
  CHECK(plan.table.slots[1].rule.secret.empty());  // no secret of a removed token stays behind
  CHECK(plan.table.live(2)->secret == "c");
  CHECK(plan.table.live(3)->secret == "new");
  CHECK(plan.table.live_count() == 3);
  CHECK(plan.table.live(4) == nullptr);

  // A revoked slot is never reused, even for the same secret given back: a late message of the released session
  // must not be taken for the new one's.
  const TokenReload again = plan_token_reload(plan.table, {token("a"), token("c"), token("new"), token("b")});
  CHECK(again.added == std::vector<std::uint32_t>{4});
  CHECK(again.table.live(1) == nullptr);
  CHECK(again.table.live(4)->secret == "b");
}

TEST_CASE("a changed port range or host list narrows routes; a changed policy counts as a policy change") {
  app::TokenRule a = token("a", 8000, 8999);
  app::TokenRule b = token("b");
  b.hosts = {"*.example.com"};
  const TokenTable table = make_token_table({a, b, token("c")});

  app::TokenRule a2 = token("a", 8000, 8099);
  app::TokenRule b2 = b;
  b2.access.deny.push_back(cidr("127.0.0.3/32"));
  app::TokenRule c2 = token("c");
  c2.hosts = {"app.test"};
  c2.access.max_conns = 5;
  const TokenReload plan = plan_token_reload(table, {a2, b2, c2});
  CHECK(plan.changed == std::vector<std::uint32_t>{0, 1, 2});
  CHECK(plan.routes_narrowed == std::vector<std::uint32_t>{0, 2});
  CHECK(plan.policies_changed == 2);
  CHECK(plan.any_policy);
  CHECK(plan.table.live(0)->port_high == 8099);
  REQUIRE(plan.table.live(1)->access.deny.size() == 1);
  CHECK(plan.table.live(1)->access.deny[0].to_string() == "127.0.0.3/32");
  CHECK(plan.table.live(2)->access.max_conns == 5);
}

TEST_CASE("removing the only token with a policy leaves no policy") {
  app::TokenRule a = token("a");
  a.access.conn_rate = 10;
  const TokenReload plan = plan_token_reload(make_token_table({a, token("b")}), {token("b")});
  CHECK_FALSE(plan.any_policy);
  CHECK(plan.policies_changed == 0);  // a removal is counted as a removal
  CHECK(plan.removed == std::vector<std::uint32_t>{0});
}

TEST_CASE("settings a running gateway cannot change are named by their flag") {
  app::GatewayConfig running;
  running.listen_text = "127.0.0.1:7000";
  running.tokens = {token("a")};
  app::GatewayConfig next = running;
  next.tokens = {token("b")};  // tokens reload: not listed
  CHECK(restart_only_changes(running, next).empty());
  next.http_listen_text = "127.0.0.1:8080";
  next.common.admin_listen_text = "127.0.0.1:9000";
  next.common.threads = 3;
  next.common.cpus = {0};
  next.common.busy_poll_us = 50;
  CHECK(restart_only_changes(running, next) ==
        std::vector<std::string>{"--http-listen", "--admin-listen", "--threads", "--cpus", "--busy-poll-us"});
}

}  // namespace
}  // namespace ringtun::gateway
