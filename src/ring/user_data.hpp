// The 64-bit user_data every submission carries: {op, slot index, slot generation}, never a raw pointer.
//
// A completion names the socket slot it belongs to by index and generation. A slot's generation changes when it
// is freed, so a completion that arrives for a freed and reused slot is recognised (generation mismatch) and
// dropped, instead of being delivered to the new owner. Slots are freed only after all their in-flight
// operations are reaped, so in a correct loop such drops stay at zero; the loop counts them.
// Thread rules: pure values.
#pragma once

#include <cstdint>

namespace ringtun::ring {

enum class Op : std::uint8_t {
  kNone = 0,
  kAccept,       // multishot accept on a listener
  kConnect,
  kLinkTimeout,  // the timeout linked to a connect
  kRecv,         // multishot recv from the provided buffer ring
  kSend,         // sendmsg (gather) or send of a fixed buffer
  kShutdown,     // a direct shutdown(2) (never a ring op): tags its on_shutdown()
  kCancel,
  kDoorbell,     // read on the loop's eventfd (cross-core wake-up); has no slot
  kWake,         // a test/utility no-op
};

struct UserData {
  Op op = Op::kNone;
  std::uint32_t index = 0;       // socket slot index
  std::uint32_t generation = 0;  // 24 bits kept

  static constexpr std::uint32_t kGenerationMask = 0xFFFFFFu;

  constexpr std::uint64_t encode() const noexcept {
    return (static_cast<std::uint64_t>(op) << 56) |
           (static_cast<std::uint64_t>(generation & kGenerationMask) << 32) | index;
  }
  static constexpr UserData decode(std::uint64_t v) noexcept {
    return UserData{static_cast<Op>(v >> 56), static_cast<std::uint32_t>(v),
                    static_cast<std::uint32_t>(v >> 32) & kGenerationMask};
  }
};

}  // namespace ringtun::ring
