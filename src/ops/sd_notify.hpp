// systemd's readiness protocol without libsystemd: a datagram to $NOTIFY_SOCKET (a path, or "@name" for the abstract
// namespace), as sd_notify(3) documents. Units with Type=notify wait for READY=1; STOPPING=1 says a drain began;
// WATCHDOG=1 proves the loops still turn when the unit sets WatchdogSec.
// Thread rules: any thread (one sendto per call, the socket opened and closed per call: these are rare).
#pragma once

#include <cstdint>
#include <string_view>

namespace ringtun::ops {

// Sends `state` (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. False when the variable is unset (not run by
// systemd: nothing to do) or the send failed (errno is kept).
bool notify_systemd(std::string_view state) noexcept;

// $WATCHDOG_USEC when the watchdog is meant for this process ($WATCHDOG_PID unset or ours), else 0. Ping at half of
// it.
std::uint64_t watchdog_interval_us() noexcept;

}  // namespace ringtun::ops
