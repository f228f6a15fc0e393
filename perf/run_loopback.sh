#!/usr/bin/env bash
# One command for the loopback comparison: ringtun vs direct (no relay), haproxy2 (two HAProxy TCP relays) and,
# when installed, rathole and frp. Every scenario of ringtun-bench (throughput, latency, connect-rate, hold/memory)
# plus HTTP requests/s with wrk to a local nginx, interleaved over several rounds; medians with min-max.
#
#   perf/run_loopback.sh [--quick] [--rounds N] [--systems direct,ringtun,...] [--publish|--no-publish]
#
# --quick: 2 rounds, smaller transfers, under 3 minutes on 2 cores once built. The default run takes under 15.
# Peers are found on PATH or via RATHOLE_BIN, FRPS_BIN, FRPC_BIN (HAPROXY_BIN); a missing one is reported and
# skipped. RINGTUN_THREADS sets the gateway's and agent's --threads (default: CPUs).
# Installs nginx, wrk, haproxy and gnuplot from Debian if missing (as root or with sudo) and builds ringtun in
# build-release (release, LTO) if needed. Results: perf/results/<date>/; full runs (or --publish) also update
# docs/perf/loopback.md and docs/perf/results/<date>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${RINGTUN_RELEASE_BUILD:-build-release}

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v haproxy >/dev/null 2>&1 || [ -n "${HAPROXY_BIN:-}" ] || missing+=(haproxy)
command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
command -v meson >/dev/null 2>&1 || missing+=(meson ninja-build g++ pkg-config liburing-dev libwolfssl-dev \
  libmimalloc-dev libsimdjson-dev doctest-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# The release build takes the bundled wolfSSL (AES-NI) where scripts/fetch-wolfssl-source.sh has fetched it;
# $BUILD-syswolf is the same against Debian's wolfSSL, for the ringtun-tls-syswolf system.
source "$ROOT/scripts/lib.sh"
prefer_bundled_wolfssl
for dir in "$BUILD" "$BUILD-syswolf"; do
  if [ ! -f "$dir/build.ninja" ]; then
    wolf=auto
    [ "$dir" = "$BUILD-syswolf" ] && wolf=system
    meson setup "$dir" -Dbuildtype=release -Db_lto=true -Dtests=false -Dwolfssl=$wolf >/dev/null
  fi
  ninja -C "$dir" src/gateway/ringtun-gateway src/edge-agent/ringtun-agent perf/load/ringtun-bench >/dev/null
done

# Enough descriptors for 1,000 held connections through relays that use one socket per hop.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 "$ROOT/perf/lib/loopback.py" --bench "$BUILD/perf/load/ringtun-bench" --ringtun-build "$BUILD" "$@"
