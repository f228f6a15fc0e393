#include "ring/timer_wheel.hpp"

#include <bit>

#include "common/assert.hpp"

namespace ringtun::ring {

namespace {
constexpr unsigned kBits = 6;
constexpr std::uint64_t kMask = 63;
}  // namespace

Timer::~Timer() {
  if (wheel_ != nullptr) wheel_->cancel(*this);
}

TimerWheel::TimerWheel(std::uint64_t now_ms) noexcept : current_(now_ms + 1) {
  // current_ is the next tick to process: everything at or before now_ms is considered processed.
  for (auto& level : slots_) {
    for (auto& slot : level) slot.head.prev_ = slot.head.next_ = &slot.head;
  }
}

TimerWheel::~TimerWheel() {
  // Disarm whatever is left so Timer destructors that run later do not touch a dead wheel.
  for (auto& level : slots_) {
    for (auto& slot : level) {
      while (slot.head.next_ != &slot.head) {
        Timer* t = slot.head.next_;
        unlink(*t);
      }
    }
  }
}

void TimerWheel::schedule(Timer& timer, std::uint64_t delay_ms) noexcept {
  RINGTUN_ASSERT(timer.callback_ != nullptr, "timer without a callback");
  if (timer.wheel_ != nullptr) timer.wheel_->cancel(timer);
  // A delay of 0 fires at the next advance(); expiry is never in the already-processed past.
  timer.expiry_ = current_ - 1 + (delay_ms == 0 ? 1 : delay_ms);
  timer.wheel_ = this;
  ++armed_;
  file(timer);
}

void TimerWheel::cancel(Timer& timer) noexcept {
  if (timer.wheel_ != this) return;
  unlink(timer);
}

void TimerWheel::unlink(Timer& timer) noexcept {
  timer.prev_->next_ = timer.next_;
  timer.next_->prev_ = timer.prev_;
  if (timer.slot_ != kDetached) {
    unsigned level = timer.slot_ / kSlotsPerLevel;
    unsigned slot = timer.slot_ % kSlotsPerLevel;
    Timer& head = slots_[level][slot].head;
    if (head.next_ == &head) occupied_[level] &= ~(1ULL << slot);
  }
  timer.prev_ = timer.next_ = nullptr;
  timer.wheel_ = nullptr;
  --armed_;
}

void TimerWheel::file(Timer& timer) noexcept {
  std::uint64_t expiry = timer.expiry_;
  if (expiry < current_) expiry = current_;  // overdue (re-filed during a cascade): fire this tick
  std::uint64_t delta = expiry - current_;
  if (delta > kMaxDelayMs) {  // beyond the wheel: park at its far end, re-filed when that slot cascades
    delta = kMaxDelayMs;
    expiry = current_ + delta;
  }
  unsigned level = 0;
  while (level + 1 < kLevels && delta >= (1ULL << (kBits * (level + 1)))) ++level;
  unsigned slot = static_cast<unsigned>((expiry >> (kBits * level)) & kMask);
  Timer& head = slots_[level][slot].head;
  timer.slot_ = static_cast<std::uint16_t>(level * kSlotsPerLevel + slot);
  timer.prev_ = head.prev_;
  timer.next_ = &head;
  head.prev_->next_ = &timer;
  head.prev_ = &timer;
  occupied_[level] |= 1ULL << slot;
}

void TimerWheel::cascade(unsigned level, unsigned slot) noexcept {
  Timer& head = slots_[level][slot].head;
  if (head.next_ == &head) return;
  // Detach the list first: re-filing may put timers back into this very slot (a parked far-future timer).
  Timer* first = head.next_;
  Timer* last = head.prev_;
  head.next_ = head.prev_ = &head;
  occupied_[level] &= ~(1ULL << slot);
  last->next_ = nullptr;
  for (Timer* t = first; t != nullptr;) {
    Timer* next = t->next_;
    file(*t);
    t = next;
  }
}

std::size_t TimerWheel::fire_current_tick() noexcept {
  unsigned slot = static_cast<unsigned>(current_ & kMask);
  Timer& head = slots_[0][slot].head;
  // The tick is processed before any callback runs, so a callback that re-arms with delay 0 lands in the next
  // tick rather than in this slot's next turn of the wheel.
  ++current_;
  if (head.next_ == &head) return 0;
  // Move the due timers to a local list so callbacks can schedule and cancel freely.
  Timer firing;
  firing.prev_ = head.prev_;
  firing.next_ = head.next_;
  firing.next_->prev_ = &firing;
  firing.prev_->next_ = &firing;
  head.next_ = head.prev_ = &head;
  occupied_[0] &= ~(1ULL << slot);
  for (Timer* t = firing.next_; t != &firing; t = t->next_) t->slot_ = kDetached;
  std::size_t fired = 0;
  while (firing.next_ != &firing) {
    Timer* t = firing.next_;
    unlink(*t);  // disarmed before the callback, so it may re-arm itself
    ++fired;
    t->callback_(t->context_);
  }
  return fired;
}

std::size_t TimerWheel::advance(std::uint64_t now_ms) noexcept {
  std::size_t fired = 0;
  while (current_ <= now_ms) {
    if (armed_ == 0) {  // nothing armed: jump straight to now
      current_ = now_ms + 1;
      break;
    }
    // Cascade from the highest level whose boundary this tick is, downwards, so that timers land in the
    // lowest level that can hold them before level 0's slot for this tick fires.
    for (unsigned level = kLevels - 1; level >= 1; --level) {
      std::uint64_t low_mask = (1ULL << (kBits * level)) - 1;
      if ((current_ & low_mask) == 0) cascade(level, static_cast<unsigned>((current_ >> (kBits * level)) & kMask));
    }
    fired += fire_current_tick();
    if (occupied_[0] == 0 && current_ <= now_ms) {
      // Level 0 is empty: nothing can fire before the next level-1 boundary, where a cascade may refill it.
      std::uint64_t next_boundary = (current_ + kMask) & ~kMask;
      current_ = next_boundary < now_ms + 1 ? next_boundary : now_ms + 1;
    }
  }
  return fired;
}

std::optional<std::uint64_t> TimerWheel::next_expiry_ms() const noexcept {
  if (armed_ == 0) return std::nullopt;
  std::uint64_t best = UINT64_MAX;
  // Level 0 holds exact expiries within the next 64 ticks.
  if (occupied_[0] != 0) {
    unsigned pos = static_cast<unsigned>(current_ & kMask);
    std::uint64_t rotated = std::rotr(occupied_[0], static_cast<int>(pos));
    best = current_ + static_cast<unsigned>(std::countr_zero(rotated));
  }
  // A higher level's timers can only fire after their slot cascades: its boundary is a safe, early wake-up.
  for (unsigned level = 1; level < kLevels; ++level) {
    if (occupied_[level] == 0) continue;
    unsigned shift = kBits * level;
    std::uint64_t block = current_ >> shift;
    unsigned pos = static_cast<unsigned>(block & kMask);
    // At a block boundary this block's slot cascades at the very next tick (distance 0). Mid-block it has
    // already cascaded, so the slot at `pos` holds the block 64 ahead: scan from pos + 1 (distances 1..64).
    const bool at_boundary = (current_ & ((1ULL << shift) - 1)) == 0;
    const unsigned first = at_boundary ? pos : (pos + 1) & kMask;
    std::uint64_t rotated = std::rotr(occupied_[level], static_cast<int>(first));
    std::uint64_t dist = static_cast<unsigned>(std::countr_zero(rotated)) + (at_boundary ? 0 : 1);
    std::uint64_t start = (block + dist) << shift;
    if (start < current_) start = current_;
    if (start < best) best = start;
  }
  return best;
}

}  // namespace ringtun::ring
