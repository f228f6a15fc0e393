// Counter: a number one thread writes and any thread may read, with no lock and no atomic read-modify-write.
//
// Each core owns its counters as plain memory; the owning thread updates them with a relaxed load + store (an
// ordinary add on x86, no LOCK prefix), and the admin side reads them with relaxed loads and sums across cores. A
// reader sees each counter's latest value or a slightly older one, never a torn one. Two threads must never write
// the same Counter: that is what makes the plain add correct.
// Copying a Counter takes a snapshot of its value (for stats structs returned by value).
// Thread rules: one writer thread (the owner), any number of reader threads.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringtun {

class Counter {
 public:
  constexpr Counter() noexcept = default;
  Counter(const Counter& other) noexcept : value_(other.get()) {}
  Counter& operator=(const Counter& other) noexcept {
    set(other.get());
    return *this;
  }

  // Owner thread only.
  void add(std::uint64_t n = 1) noexcept { set(get() + n); }
  void sub(std::uint64_t n = 1) noexcept { set(get() - n); }  // for gauges (streams open)
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  Counter& operator++() noexcept {
    add(1);
    return *this;
  }
  Counter& operator--() noexcept {
    sub(1);
    return *this;
  }
  Counter& operator+=(std::uint64_t n) noexcept {
    add(n);
    return *this;
  }
  Counter& operator-=(std::uint64_t n) noexcept {
    sub(n);
    return *this;
  }

  // Any thread.
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }
  operator std::uint64_t() const noexcept { return get(); }  // NOLINT: reads like the plain integer it replaces

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace ringtun
