#!/usr/bin/env bash
# The main job: installs what ringtun needs from Debian, builds it, and runs the demo on loopback.
#   bash scripts/demo.sh            run the demonstration and exit
#   bash scripts/demo.sh --forever  keep the demo server running until Ctrl-C
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages "${RINGTUN_BUILD_PACKAGES[@]}"
configure_build build -Dbuildtype=debugoptimized
build build
say "running the demo (perf/echo: an echo service on the io_uring loop, and a client through real sockets)"
exec "$RINGTUN_ROOT/build/perf/echo/ringtun-echo" demo "$@"
