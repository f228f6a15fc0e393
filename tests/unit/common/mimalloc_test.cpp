// The programs link mimalloc so that it replaces malloc/new everywhere (design card). This proves the override is
// real in a binary linked the same way, rather than mimalloc sitting unused beside glibc's allocator.
#include <doctest/doctest.h>
#include <mimalloc.h>

#include <cstdlib>
#include <memory>

TEST_CASE("malloc and operator new are served by mimalloc") {
  void* p = std::malloc(64);
  auto q = std::make_unique<char[]>(4096);
  CHECK(mi_version() >= 200);
  CHECK(mi_is_in_heap_region(p));
  CHECK(mi_is_in_heap_region(q.get()));
  std::free(p);
}
