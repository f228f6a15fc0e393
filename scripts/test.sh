#!/usr/bin/env bash
# The full test suite: installs what it needs from Debian, builds, and runs
#   1. every unit and integration test in the normal build (warnings are errors),
#   2. every unit and integration test again under AddressSanitizer + UndefinedBehaviorSanitizer (suite 'asan': each
#      integration scenario fails on a sanitizer report in any of its processes' logs),
#   3. the libFuzzer targets (clang) for a bounded time each.
# Ends with one line "N passed, N failed, N skipped" and exits non-zero if anything failed.
#   bash scripts/test.sh [--fast]   --fast: only step 1
set -uo pipefail
source "$(dirname "$0")/lib.sh"
fast=0
[ "${1:-}" = "--fast" ] && fast=1

ensure_packages "${RINGTUN_BUILD_PACKAGES[@]}"
[ $fast = 1 ] || ensure_packages "${RINGTUN_FUZZ_PACKAGES[@]}"
set -e
configure_build build -Dbuildtype=debugoptimized -Dwerror=true
build build
if [ $fast = 0 ]; then
  # The sanitizer and fuzz builds compile only what their suites run, not the programs and benchmarks again.
  # Debian's wolfSSL in the sanitizer and fuzz builds: the bundled one (if fetched) is built once, for `build`.
  configure_build build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dmimalloc=disabled -Dwerror=true -Dwolfssl=system
  build build-asan $(suite_targets build-asan unit) src/gateway/ringtun-gateway src/edge-agent/ringtun-agent \
    src/app/ringtun-gateway.1 src/app/ringtun-agent.1  # test_dist.py installs the programs and their man pages
  if [ ! -f "$RINGTUN_ROOT/build-fuzz/build.ninja" ]; then
    CXX=clang++ CC=clang configure_build build-fuzz -Dbuildtype=debugoptimized -Dfuzz=true -Dtests=false \
      -Db_sanitize=address,undefined -Db_lundef=false -Dmimalloc=disabled -Dwolfssl=system
  fi
  build build-fuzz $(suite_targets build-fuzz fuzz)
fi
set +e

# meson test writes one JSON object per test to testlog.json; each run below adds its own.
run_suite() {
  local dir=$1; shift
  say "testing $dir $*"
  rm -f "$RINGTUN_ROOT/$dir/meson-logs/testlog.json"
  meson test -C "$RINGTUN_ROOT/$dir" --print-errorlogs --num-processes 2 "$@"
}
run_suite build
if [ $fast = 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan --suite unit --suite asan --no-rebuild
  run_suite build-fuzz --suite fuzz --no-rebuild
fi

dirs=(build)
[ $fast = 1 ] || dirs+=(build-asan build-fuzz)
python3 - "${dirs[@]/#/$RINGTUN_ROOT/}" <<'PY'
import json, sys, os
passed = failed = skipped = 0
failures = []
for d in sys.argv[1:]:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        print(f"{os.path.basename(d)}: no test results (the run did not start)")
        failed += 1
        continue
    for line in open(path):
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
            print(f"skipped: {os.path.basename(d)}/{t['name']}")
        else:
            failed += 1
            failures.append((os.path.basename(d), t))
# CI shows only the end of the output: each failure's last lines go just above the summary.
for build_dir, t in failures:
    tail = (t.get("stdout") or "").rstrip().splitlines()[-40:]
    print(f"---- last lines of {build_dir}/{t['name']} ----")
    print("\n".join(tail))
for build_dir, t in failures:
    print(f"FAILED: {build_dir}/{t['name']} ({t.get('result')})")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
