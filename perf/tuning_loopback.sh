#!/usr/bin/env bash
# What one host-tuning setting changes where loopback can show it: net.core.somaxconn (the accept backlog cap) under a
# burst of new public connections through the tunnel. Runs in a network namespace of its own (loopback only; the
# host's settings are not touched), once per value, each with a fresh gateway + agent + echo service.
#   perf/tuning_loopback.sh [--build DIR] [--values "128 4096"] [--concurrency N] [--seconds S]
# Prints conn/s and errors per value (ringtun-bench connect-rate: connect, 16 B echo, close).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-release values="128 4096" concurrency=1024 seconds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --values) values=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -n, sysctl in the new namespace)" >&2; exit 2; }
for bin in src/gateway/ringtun-gateway src/edge-agent/ringtun-agent perf/load/ringtun-bench; do
  [ -x "$build/$bin" ] || { echo "$build/$bin missing: build it first" >&2; exit 2; }
done
export B=$PWD/$build CONC=$concurrency SECS=$seconds
for v in $values; do
  V=$v unshare -n bash -c '
    set -euo pipefail
    ip link set lo up
    sysctl -qw net.core.somaxconn="$V"
    work=$(mktemp -d)
    trap "kill \$(jobs -p) 2>/dev/null; rm -rf $work" EXIT
    "$B/perf/load/ringtun-bench" serve --echo 127.0.0.1:17001 > "$work/serve.log" 2>&1 &
    "$B/src/gateway/ringtun-gateway" --listen 127.0.0.1:17000 --token t --insecure-plaintext --threads 2 \
      > "$work/gw.log" 2>&1 &
    sleep 0.3
    "$B/src/edge-agent/ringtun-agent" --gateway 127.0.0.1:17000 --token t --insecure-plaintext --threads 2 \
      --expose tcp:e@17080=127.0.0.1:17001 > "$work/agent.log" 2>&1 &
    for _ in $(seq 50); do grep -q "served by the gateway" "$work/agent.log" && break; sleep 0.1; done
    out=$("$B/perf/load/ringtun-bench" connect-rate --target 127.0.0.1:17080 --seconds "$SECS" --concurrency "$CONC")
    echo "somaxconn $V: $out"
  '
done
