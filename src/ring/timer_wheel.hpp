// TimerWheel: thousands of cheap timers (heartbeats, idle timeouts, connect back-off) on one core.
//
// A hierarchical timing wheel with 1 ms ticks: 4 levels of 64 slots cover ~4.6 hours; a longer delay is parked in
// the last level and re-filed when it cascades. Schedule, cancel and re-schedule are O(1) and allocation-free:
// a Timer is intrusive (the owner embeds it, e.g. in a connection). The loop drives the wheel with the current
// time once per turn and sleeps no longer than next_expiry_ms(), so no kernel timeout is armed per timer.
//
// Ordering: timers fire in order of expiry tick; timers due in the same tick fire in the order they were filed
// into that tick's slot. A callback may schedule or cancel any timer, including itself.
// Ownership: the wheel never owns a Timer. A Timer must be cancelled (or have fired) before it is destroyed; its
// destructor cancels it if still armed, so embedding it in an object makes that automatic.
// Thread rules: one core; the wheel and its timers are touched only by the loop thread that owns them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace ringtun::ring {

class TimerWheel;

class Timer {
 public:
  using Callback = void (*)(void* context);

  Timer() = default;
  Timer(Callback callback, void* context) noexcept : callback_(callback), context_(context) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Binds a member function: Timer t = Timer::bind<&Conn::on_idle>(this);
  template <auto Method, typename Owner>
  static Timer bind(Owner* owner) noexcept {
    return Timer([](void* ctx) { (static_cast<Owner*>(ctx)->*Method)(); }, owner);
  }
  void set_callback(Callback callback, void* context) noexcept { callback_ = callback; context_ = context; }

  bool armed() const noexcept { return wheel_ != nullptr; }
  std::uint64_t expiry_ms() const noexcept { return expiry_; }

 private:
  friend class TimerWheel;
  Timer(Timer&& other) noexcept : callback_(other.callback_), context_(other.context_) {}  // for bind() only

  Timer* prev_ = nullptr;
  Timer* next_ = nullptr;
  TimerWheel* wheel_ = nullptr;  // non-null while armed
  std::uint64_t expiry_ = 0;     // absolute tick (ms)
  std::uint16_t slot_ = 0;       // level * 64 + slot, or kDetached while on a firing list
  Callback callback_ = nullptr;
  void* context_ = nullptr;
};

class TimerWheel {
 public:
  static constexpr unsigned kLevels = 4;
  static constexpr unsigned kSlotsPerLevel = 64;
  static constexpr std::uint64_t kMaxDelayMs = (1ULL << (6 * kLevels)) - 1;

  explicit TimerWheel(std::uint64_t now_ms) noexcept;
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms (or re-arms) `timer` to fire `delay_ms` after the wheel's current time.
  void schedule(Timer& timer, std::uint64_t delay_ms) noexcept;
  void cancel(Timer& timer) noexcept;

  // Fires every timer due at or before now_ms; returns how many fired.
  std::size_t advance(std::uint64_t now_ms) noexcept;

  // The earliest time at which advance() may have work: the nearest timer's expiry, or earlier (a cascade
  // point). Never later than a real expiry. nullopt when nothing is armed.
  std::optional<std::uint64_t> next_expiry_ms() const noexcept;

  std::uint64_t now_ms() const noexcept { return current_ == 0 ? 0 : current_ - 1; }
  std::size_t armed_count() const noexcept { return armed_; }

 private:
  struct Slot {  // circular list sentinel
    Timer head;
  };
  static constexpr std::uint16_t kDetached = 0xFFFF;

  void file(Timer& timer) noexcept;
  void unlink(Timer& timer) noexcept;
  void cascade(unsigned level, unsigned slot) noexcept;
  std::size_t fire_current_tick() noexcept;

  Slot slots_[kLevels][kSlotsPerLevel];
  std::uint64_t occupied_[kLevels] = {};  // bit s set: slot s of that level is non-empty
  std::uint64_t current_;                 // the next tick to process
  std::size_t armed_ = 0;
};

}  // namespace ringtun::ring
