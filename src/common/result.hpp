// Result<T>: a small subset of std::expected (g++ 12 ships <expected> only under -std=c++2b).
//
// Module boundaries return [[nodiscard]] Result<T>. An Error is a code from Errc plus, where the kernel gave one,
// the errno, plus a short static context string ("bind", "io_uring_queue_init"...). Errors are values: nothing
// here allocates or throws, so Result is safe on the data path.
// Thread rules: plain values; no shared state.
#pragma once

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "common/assert.hpp"

namespace ringtun {

// One code per way a call can fail that a caller might act on differently. Messages live in errc_message().
enum class Errc : std::uint16_t {
  kOk = 0,
  kSystem,          // a syscall failed; sys_errno() says which errno
  kInvalidArgument, // the caller passed something malformed (flag, address, size)
  kUnsupported,     // the kernel or a library lacks a feature we need
  kExhausted,       // a bounded pool, queue or table is full
  kNotFound,        // an id/handle does not name a live object (stale generation, freed slot)
  kClosed,          // the object is shutting down or closed
  kTimedOut,
  kProtocol,        // the peer broke the wire protocol
  kFlowControl,     // the peer sent beyond a window
  kLimit,           // a configured limit (streams, frame size, floods) was crossed
  kRefused,         // a peer or policy refused us (token, port)
  kParse,           // malformed text input (config, JSON, address)
};

const char* errc_message(Errc code) noexcept;

class Error {
 public:
  constexpr Error() = default;
  constexpr Error(Errc code, const char* context = "", int sys_errno = 0) noexcept
      : code_(code), sys_errno_(sys_errno), context_(context) {}

  // A syscall-style failure: `res` is a negative errno (the io_uring convention) or a positive errno.
  static constexpr Error from_errno(int err, const char* context) noexcept {
    return Error(Errc::kSystem, context, err < 0 ? -err : err);
  }

  constexpr Errc code() const noexcept { return code_; }
  constexpr int sys_errno() const noexcept { return sys_errno_; }
  constexpr const char* context() const noexcept { return context_; }

  // "context: message" into buf (always NUL-terminated); returns buf for use in log lines.
  const char* describe(char* buf, std::size_t size) const noexcept;

 private:
  Errc code_ = Errc::kOk;
  int sys_errno_ = 0;
  const char* context_ = "";
};

// Carries an Error into a Result without naming T, as std::unexpected does.
struct Unexpected {
  Error error;
};
constexpr Unexpected fail(Errc code, const char* context = "", int sys_errno = 0) noexcept {
  return Unexpected{Error(code, context, sys_errno)};
}
constexpr Unexpected fail_errno(int err, const char* context) noexcept {
  return Unexpected{Error::from_errno(err, context)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : has_value_(true) { new (&value_) T(value); }  // NOLINT: implicit like expected
  Result(T&& value) : has_value_(true) { new (&value_) T(std::move(value)); }  // NOLINT
  Result(Unexpected u) noexcept : has_value_(false), error_(u.error) {}   // NOLINT
  Result(const Result& other) : has_value_(other.has_value_) {
    if (has_value_) new (&value_) T(other.value_); else error_ = other.error_;
  }
  Result(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>) : has_value_(other.has_value_) {
    if (has_value_) new (&value_) T(std::move(other.value_)); else error_ = other.error_;
  }
  Result& operator=(Result other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    this->~Result();
    new (this) Result(std::move(other));
    return *this;
  }
  ~Result() { if (has_value_) value_.~T(); }

  bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }

  T& value() & { RINGTUN_CHECK(has_value_, "Result::value() on an error"); return value_; }
  const T& value() const& { RINGTUN_CHECK(has_value_, "Result::value() on an error"); return value_; }
  T&& value() && { RINGTUN_CHECK(has_value_, "Result::value() on an error"); return std::move(value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { RINGTUN_CHECK(!has_value_, "Result::error() on a value"); return error_; }

 private:
  bool has_value_;
  union {
    T value_;
    Error error_;
  };
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() noexcept = default;
  Result(Unexpected u) noexcept : has_value_(false), error_(u.error) {}  // NOLINT
  bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }
  void value() const { RINGTUN_CHECK(has_value_, "Result::value() on an error"); }
  const Error& error() const { RINGTUN_CHECK(!has_value_, "Result::error() on a value"); return error_; }

 private:
  bool has_value_ = true;
  Error error_;
};

using Status = Result<void>;

}  // namespace ringtun

// Propagates an error from an expression returning Result<...>.
#define RINGTUN_TRY(expr)                                          \
  do {                                                             \
    auto ringtun_try_result_ = (expr);                             \
    if (!ringtun_try_result_) return ::ringtun::Unexpected{ringtun_try_result_.error()}; \
  } while (0)
