#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "ring/buffer_pool.hpp"
#include "ring/net.hpp"

using namespace ringtun;
using ring::net::parse_address;

TEST_CASE("parse_address accepts IPv4, [IPv6], localhost and bare ports") {
  auto a = parse_address("127.0.0.1:8080");
  REQUIRE(a);
  CHECK(a->port() == 8080);
  CHECK(a->is_loopback());
  CHECK(a->to_string() == "127.0.0.1:8080");
  auto b = parse_address("[::1]:443");
  REQUIRE(b);
  CHECK(b->family() == AF_INET6);
  CHECK(b->is_loopback());
  CHECK(b->to_string() == "[::1]:443");
  auto c = parse_address("localhost:0");
  REQUIRE(c);
  CHECK(c->is_loopback());
  auto d = parse_address(":7000");
  REQUIRE(d);
  CHECK_FALSE(d->is_loopback());
  CHECK(parse_address("7000")->port() == 7000);
}

TEST_CASE("parse_address rejects malformed input with a parse error") {
  for (const char* bad : {"", "1.2.3.4:", "1.2.3.4:70000", "1.2.3.4:12ab", "host.example:80", "::1:80", "[::1]80",
                          "[::1", "1.2.3.4:-1"}) {
    CAPTURE(bad);
    auto r = parse_address(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::kParse);
  }
}

TEST_CASE("listen_tcp: the sockets it accepts have TCP_NODELAY (inherited: no setsockopt per connection)") {
  auto listen_at = ringtun::ring::net::parse_address("127.0.0.1:0");
  REQUIRE(listen_at);
  auto listener = ringtun::ring::net::listen_tcp(*listen_at, false);
  REQUIRE(listener);
  auto bound = ringtun::ring::net::local_address(*listener);
  REQUIRE(bound);
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(::connect(client, bound->get(), bound->length) == 0);
  int accepted = -1;
  for (int i = 0; i < 1000 && accepted < 0; ++i) {
    accepted = ::accept(*listener, nullptr, nullptr);
    if (accepted < 0) ::usleep(1000);
  }
  REQUIRE(accepted >= 0);
  int value = 0;
  socklen_t length = sizeof value;
  REQUIRE(::getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0);
  CHECK(value == 1);
  ::close(accepted);
  ::close(client);
  ::close(*listener);
}

TEST_CASE("FixedBufferPool lends each buffer once, counts in-use and high water, reports exhaustion") {
  auto made = ring::FixedBufferPool::create(nullptr, 4, 1024);
  REQUIRE(made);
  std::unique_ptr<ring::FixedBufferPool> pool(*made);
  std::vector<ring::FixedBuffer> lent;
  for (int i = 0; i < 4; ++i) {
    auto b = pool->acquire();
    REQUIRE(b);
    CHECK(b->size == 1024);
    lent.push_back(*b);
  }
  CHECK(pool->in_use() == 4);
  auto none = pool->acquire();
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Errc::kExhausted);
  for (std::size_t i = 0; i < lent.size(); ++i) {
    for (std::size_t j = i + 1; j < lent.size(); ++j) CHECK(lent[i].index != lent[j].index);
  }
  pool->release(lent[2]);
  pool->release(lent[0]);
  CHECK(pool->in_use() == 2);
  CHECK(pool->high_water() == 4);
  auto again = pool->acquire();
  REQUIRE(again);
  CHECK(again->index == lent[0].index);  // LIFO: the warmest buffer comes back first
}

TEST_CASE("FixedBufferPool rejects bad sizes") {
  CHECK_FALSE(ring::FixedBufferPool::create(nullptr, 0, 1024));
  CHECK_FALSE(ring::FixedBufferPool::create(nullptr, 70000, 1024));
}
