#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tunnel/byte_queue.hpp"

using namespace ringtun;
using tunnel::BlockPool;
using tunnel::ByteQueue;

namespace {
std::string drain(ByteQueue& q, std::size_t max_iov, std::size_t max_bytes) {
  std::string out;
  while (!q.empty()) {
    iovec iov[64];
    std::size_t n = q.gather(iov, max_iov, max_bytes);
    REQUIRE(n > 0);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
      out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      bytes += iov[i].iov_len;
    }
    CHECK(bytes <= max_bytes);
    q.consume(bytes);
  }
  return out;
}
std::span<const std::byte> bytes_of(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("ByteQueue keeps bytes in order across block boundaries and returns blocks when drained") {
  BlockPool pool(16 << 20);
  std::string expected;
  {
    ByteQueue q(pool);
    for (int i = 0; i < 200; ++i) {
      std::string piece(static_cast<std::size_t>((i * 7919) % 40000 + 1), static_cast<char>('a' + i % 26));
      expected += piece;
      REQUIRE(q.append(bytes_of(piece)));
    }
    CHECK(q.size() == expected.size());
    // Interleave partial consumption with appends.
    iovec iov[4];
    std::size_t n = q.gather(iov, 4, 100);
    REQUIRE(n >= 1);
    CHECK(iov[0].iov_len <= 100);
    CHECK(drain(q, 3, 50'000) == expected);
    CHECK(pool.in_use() == 0);
  }
  CHECK(pool.high_water() > 1);
}

TEST_CASE("ByteQueue refuses what the budget cannot hold and stays intact") {
  BlockPool pool(2 * BlockPool::kBlockSize);  // two blocks
  ByteQueue q(pool);
  std::string a(BlockPool::kBlockSize + 10, 'x');
  REQUIRE(q.append(bytes_of(a)));
  CHECK(pool.in_use() == 2);
  std::string b(BlockPool::kBlockSize, 'y');
  auto r = q.append(bytes_of(b));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::kExhausted);
  CHECK(q.size() == a.size());
  CHECK(drain(q, 8, 1 << 20) == a);
  CHECK(pool.in_use() == 0);
  REQUIRE(q.append(bytes_of(b)));  // freed blocks are reused
}
