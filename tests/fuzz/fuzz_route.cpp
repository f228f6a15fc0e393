// libFuzzer target: the route table (src/route). The input is a script of claims, releases and lookups over names
// taken from the input itself: normalize_host never accepts what it would refuse a second time, a snapshot finds every
// exact name it holds, and no lookup of any bytes crashes or allocates past the table.
//
// Input: records of [op][len][bytes...]; op % 4: 0 claim an http/tls host, 1 claim a tcp port (alone or in a
// load-balancing group) or set a member's health, 2 release a session, 3 check and look a name up in a fresh snapshot.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "route/route.hpp"

using namespace ringtun::route;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Claims claims;
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::uint8_t op = data[at];
    const std::size_t len = data[at + 1];
    at += 2;
    const std::size_t take = len < size - at ? len : size - at;
    const std::string_view bytes(reinterpret_cast<const char*>(data + at), take);
    at += take;
    const std::uint32_t owner_token = op >> 6;
    const SessionRef session{static_cast<std::uint32_t>((op >> 4) & 3), 1};
    switch (op % 4) {
      case 0: {
        std::string folded;
        if (!normalize_host(bytes, true, &folded)) break;
        std::string twice;
        if (!normalize_host(folded, true, &twice) || twice != folded) __builtin_trap();
        const Kind kind = (op & 4) != 0 ? Kind::kHttp : Kind::kTls;
        const RouteKey key{kind, 0, folded};
        const ClaimResult result = claims.claim(Owner{owner_token, "a"}, session, key, "svc");
        auto table = claims.build();
        const Route* found = table->find(key);
        if (result.ok() != (found != nullptr && found->owner.token == owner_token)) __builtin_trap();
        if (result.ok() && folded[0] != '*' && table->find_host(kind, bytes) != found) __builtin_trap();
        break;
      }
      case 1: {
        // A tcp claim; bit 3 of op claims it in group "g" under an owner of the session's own (so several owners of
        // one token meet in a group); a third byte sets that member's health instead (bit 0 up).
        const std::uint16_t port = take >= 2 ? static_cast<std::uint16_t>(data[at - take] << 8 | data[at - take + 1]) : 0;
        const RouteKey key{Kind::kTcp, port, ""};
        if (take >= 3) {
          (void)claims.set_health(session, key, (data[at - take + 2] & 1) != 0);
          break;
        }
        const bool grouped = (op & 8) != 0;
        const Owner owner{owner_token, grouped ? std::string("m") + char('0' + session.slot) : std::string("a")};
        const ClaimResult result = claims.claim(owner, session, key, "s", nullptr, grouped ? "g" : "");
        if (port == 0 && result.ok()) __builtin_trap();
        break;
      }
      case 2:
        (void)claims.release_session(session);
        break;
      default: {
        auto table = claims.build();
        // Every route is served by someone: the members up, or all of them when none is.
        for (const Route& route : table->routes()) {
          if (route.sessions.empty() || route.members_up > route.members) __builtin_trap();
          const std::size_t expected = route.members_up > 0 ? route.members_up : route.members;
          if (route.sessions.size() != expected) __builtin_trap();
        }
        (void)table->find_host(Kind::kHttp, bytes);
        (void)table->find_host(Kind::kTls, bytes);
        if (take >= 2) (void)table->find_tcp(static_cast<std::uint16_t>(data[at - 2] << 8 | data[at - 1]));
        break;
      }
    }
  }
  return 0;
}
