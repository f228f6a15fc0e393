// ServiceSet, SlotBook and the reload diff (edge-agent/service_set.hpp): pure, no loop.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "edge-agent/service_set.hpp"
#include "tunnel/upstream_pool.hpp"

using namespace ringtun;
using namespace ringtun::agent;

namespace {

std::vector<app::ServiceConfig> services(std::initializer_list<const char*> exposes) {
  std::vector<app::ServiceConfig> out;
  for (const char* text : exposes) {
    std::string error;
    auto service = app::parse_expose(text, &error);
    REQUIRE_MESSAGE(service, error);
    out.push_back(std::move(*service));
  }
  return out;
}

std::shared_ptr<const ServiceSet> build(SlotBook& book, std::initializer_list<const char*> exposes,
                                        const ServiceSet* previous) {
  std::string error;
  auto set = book.build(services(exposes), "", previous, &error);
  REQUIRE_MESSAGE(set, error);
  return *set;
}

std::vector<std::string> names(const ServiceSet& set, const std::vector<std::size_t>& indexes) {
  std::vector<std::string> out;
  for (std::size_t i : indexes) out.push_back(set[i].config.name);
  return out;
}

std::uint32_t generation(const AgentService& service) {
  return service.upstream_key >> tunnel::UpstreamPool::kKeyIndexBits;
}

}  // namespace

TEST_CASE("a set finds its services by name and declares what connection 0 claims") {
  SlotBook book;
  auto set = build(book, {"tcp:web@8080=127.0.0.1:80", "http:app@app.example.com=127.0.0.1:3000"}, nullptr);
  REQUIRE(set->size() == 2);
  const AgentService* web = set->find("web");
  REQUIRE(web != nullptr);
  CHECK(web->decl.port == 8080);
  CHECK(web->decl.host.empty());
  const AgentService* app = set->find("app");
  REQUIRE(app != nullptr);
  CHECK(app->decl.port == 0);
  CHECK(app->decl.host == "app.example.com");
  CHECK(set->index_of(*app) == 1);
  CHECK(set->find("nope") == nullptr);
  CHECK(set->by_name().front().first == "app");
  CHECK(web->slot != app->slot);
}

TEST_CASE("the diff sorts services into added, removed, claimed again and changed locally") {
  SlotBook book;
  auto before = build(book,
                      {"tcp:same@8080=127.0.0.1:80", "tcp:gone@8081=127.0.0.1:81", "tcp:moved@8082=127.0.0.1:82",
                       "tcp:local@8083=127.0.0.1:83", "tcp:proxy@8084=127.0.0.1:84"},
                      nullptr);
  auto after = build(book,
                     {"tcp:new@9000=127.0.0.1:90", "tcp:same@8080=127.0.0.1:80", "tcp:moved@8092=127.0.0.1:82",
                      "tcp:local@8083=127.0.0.1:93", "tcp:proxy@8084=127.0.0.1:84,proxy-protocol=v2"},
                     before.get());
  const ServiceDiff diff = diff_services(*before, *after);
  CHECK(names(*after, diff.added) == std::vector<std::string>{"new"});
  CHECK(names(*before, diff.removed) == std::vector<std::string>{"gone"});
  CHECK(names(*after, diff.reclaimed) == std::vector<std::string>{"moved"});
  CHECK(names(*after, diff.changed) == std::vector<std::string>{"local", "proxy"});
  CHECK_FALSE(diff.empty());
  CHECK(diff_services(*after, *after).empty());
}

TEST_CASE("a kind or an address list is part of the claim: a change claims again") {
  SlotBook book;
  auto before = build(book, {"tcp:a@8080=127.0.0.1:80"}, nullptr);
  auto after = build(book, {"http:a@a.example.com=127.0.0.1:80"}, before.get());
  CHECK(names(*after, diff_services(*before, *after).reclaimed) == std::vector<std::string>{"a"});
  auto lists = services({"tcp:a@8080=127.0.0.1:80"});
  std::string error;
  lists[0].allow_from = *route::parse_cidr_list("127.0.0.2", &error);
  auto narrowed = book.build(lists, "", before.get(), &error);
  REQUIRE(narrowed);
  CHECK(names(**narrowed, diff_services(*before, **narrowed).reclaimed) == std::vector<std::string>{"a"});
}

TEST_CASE("a name keeps its slot for the agent's life; the upstream generation changes with its local side") {
  SlotBook book;
  auto first = build(book, {"http:a@a.example.com=127.0.0.1:80", "tcp:b@8080=127.0.0.1:81"}, nullptr);
  const std::uint32_t slot_a = first->find("a")->slot;
  const std::uint32_t slot_b = first->find("b")->slot;
  CHECK(generation(*first->find("a")) == 0);
  // b gone, a unchanged, c new: a keeps its key, c gets a slot of its own.
  auto second = build(book, {"http:a@a.example.com=127.0.0.1:80", "tcp:c@8081=127.0.0.1:82"}, first.get());
  CHECK(second->find("a")->upstream_key == first->find("a")->upstream_key);
  const std::uint32_t slot_c = second->find("c")->slot;
  CHECK(slot_c != slot_a);
  CHECK(slot_c != slot_b);
  // a moves to another port: same slot, another generation. b back: its old slot, another generation.
  auto third = build(book, {"http:a@a.example.com=127.0.0.1:90", "tcp:b@8080=127.0.0.1:81"}, second.get());
  CHECK(third->find("a")->slot == slot_a);
  CHECK(third->find("a")->upstream_key != second->find("a")->upstream_key);
  CHECK(third->find("b")->slot == slot_b);
  CHECK(third->find("b")->upstream_key != first->find("b")->upstream_key);
  CHECK((third->find("b")->upstream_key & (kMaxServiceSlots - 1)) == slot_b);
}

TEST_CASE("the slots are bounded: a set with too many new names is refused and changes nothing") {
  SlotBook book;
  std::vector<app::ServiceConfig> many(kMaxServiceSlots - 1, services({"tcp:x@8080=127.0.0.1:80"})[0]);
  for (std::size_t i = 0; i < many.size(); ++i) many[i].name = "s" + std::to_string(i);
  std::string error;
  auto full = book.build(many, "", nullptr, &error);
  REQUIRE(full);
  auto two_more = book.build(services({"tcp:y@8081=127.0.0.1:80", "tcp:z@8082=127.0.0.1:80"}), "", full->get(), &error);
  CHECK_FALSE(two_more);
  CHECK(error.find("restart the agent") != std::string::npos);
  // Names seen before cost nothing; one new name still fits.
  auto one_more =
      book.build(services({"tcp:y@8081=127.0.0.1:80", "tcp:s0@8080=127.0.0.1:80"}), "", full->get(), &error);
  REQUIRE_MESSAGE(one_more, error);
  CHECK((*one_more)->find("y")->slot == kMaxServiceSlots - 1);
}

TEST_CASE("traffic counters keep their address as slots are added, and other threads find only what exists") {
  TrafficSlots slots;
  CHECK(slots.find(5) == nullptr);
  tunnel::StreamTraffic& five = slots.at(5);
  five.streams_opened.add(3);
  for (std::uint32_t slot = 0; slot < 1000; ++slot) slots.ensure(slot);
  CHECK(&slots.at(5) == &five);
  REQUIRE(slots.find(5) != nullptr);
  CHECK(slots.find(5)->streams_opened.get() == 3);
  CHECK(slots.find(kMaxServiceSlots - 1) == nullptr);
  CHECK(slots.find(kMaxServiceSlots) == nullptr);
}

TEST_CASE("--group travels in every declaration; a reload that changes it claims every service again") {
  SlotBook book;
  std::string error;
  auto blue = book.build(services({"tcp:a@8080=127.0.0.1:80", "http:b@b.example.com=127.0.0.1:81"}), "blue", nullptr,
                         &error);
  REQUIRE_MESSAGE(blue, error);
  CHECK((**blue)[0].decl.group == "blue");
  CHECK((**blue)[1].decl.group == "blue");
  auto same = book.build(services({"tcp:a@8080=127.0.0.1:80", "http:b@b.example.com=127.0.0.1:81"}), "blue",
                         blue->get(), &error);
  REQUIRE_MESSAGE(same, error);
  CHECK(diff_services(**blue, **same).empty());
  auto green = book.build(services({"tcp:a@8080=127.0.0.1:80", "http:b@b.example.com=127.0.0.1:81"}), "green",
                          same->get(), &error);
  REQUIRE_MESSAGE(green, error);
  const ServiceDiff diff = diff_services(**same, **green);
  CHECK(names(**green, diff.reclaimed) == std::vector<std::string>{"a", "b"});
  CHECK(diff.added.empty());
  CHECK(diff.removed.empty());
  CHECK(diff.changed.empty());
  auto none = book.build(services({"tcp:a@8080=127.0.0.1:80"}), "", green->get(), &error);
  REQUIRE_MESSAGE(none, error);
  CHECK((**none)[0].decl.group.empty());
}
