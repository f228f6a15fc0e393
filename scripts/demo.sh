#!/usr/bin/env bash
# The main job: installs what ringtun needs from Debian, builds it, and runs a gateway, an agent and a demo service
# on loopback, showing traffic going through the tunnel (scripts/demo.py).
#   bash scripts/demo.sh            run the demonstration and exit
#   bash scripts/demo.sh --forever  keep everything running until Ctrl-C
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages "${RINGTUN_BUILD_PACKAGES[@]}"
prefer_bundled_wolfssl
configure_build build -Dbuildtype=debugoptimized
build build
say "running the demo: gateway + agent + demo service on 127.0.0.1"
exec python3 "$RINGTUN_ROOT/scripts/demo.py" "$@"
