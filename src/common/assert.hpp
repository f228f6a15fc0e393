// Assertions. RINGTUN_ASSERT checks debug-only invariants (compiled out with NDEBUG). RINGTUN_CHECK guards
// invariants that must hold in release too: breaking one means memory is about to be corrupted, so it prints
// where and aborts ("impossible states crash loudly"). Untrusted input must never reach either: it gets an Error.
// Thread rules: callable from any thread.
#pragma once

namespace ringtun::detail {
[[noreturn]] void check_failed(const char* expr, const char* msg, const char* file, int line) noexcept;
}  // namespace ringtun::detail

#define RINGTUN_CHECK(cond, msg)                                                        \
  do {                                                                                  \
    if (__builtin_expect(!(cond), 0)) ::ringtun::detail::check_failed(#cond, msg, __FILE__, __LINE__); \
  } while (0)

#ifdef NDEBUG
#define RINGTUN_ASSERT(cond, msg) do { (void)sizeof(cond); } while (0)
#else
#define RINGTUN_ASSERT(cond, msg) RINGTUN_CHECK(cond, msg)
#endif
