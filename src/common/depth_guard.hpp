// DepthGuard: counts an object's entry points on the stack, for objects that free themselves.
//
// A connection-like object whose callbacks can re-enter it synchronously (a session callback that closes the
// stream that called it, say) holds one of these in each entry point and frees itself only on the way out of the
// outermost one, when the count is back to 0: `{ DepthGuard g(depth_); ... } maybe_free();`.
// Thread rules: the owning object's thread.
#pragma once

namespace ringtun {

class DepthGuard {
 public:
  explicit DepthGuard(int& depth) noexcept : depth_(depth) { ++depth_; }
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

}  // namespace ringtun
