# Shared by the set-up scripts: package installation and meson configuration. Source it; do not run it.
# Everything here is idempotent: a second run installs nothing and reconfigures only what changed.

RINGTUN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing ringtun needs from Debian 12 (bookworm). Nothing is fetched from anywhere else.
# python3-cryptography makes the test certificates of the TLS end-to-end tests (tests/integration/certs.py);
# ca-certificates is the OS trust store behind the agent's `--ca system`. curl, openssl and python3-websockets are
# the clients (and services) of the shared-port end-to-end tests (tests/integration/test_http.py). prometheus (the
# server, run by the test on a port of its own; the package's systemd unit also starts one on :9090 where systemd
# runs), python3-prometheus-client (its text-format parser) and chromium (headless, for the dashboard) serve the
# operations end-to-end tests (tests/integration/test_ops.py).
RINGTUN_BUILD_PACKAGES=(g++ meson ninja-build pkg-config cmake python3 python3-cryptography ca-certificates
  curl openssl python3-websockets prometheus python3-prometheus-client chromium
  systemd groff-base man-db  # systemd-analyze verify (checks Documentation=man: pages with man), groff: test_dist.py
  liburing-dev libwolfssl-dev libmimalloc-dev libsimdjson-dev doctest-dev)
# The fuzz targets need clang with libFuzzer and the sanitizer runtimes.
RINGTUN_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (no sudo here)"; fi
}

# Installs whichever of the given Debian packages are missing.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
}

# configure_build DIR [meson options...]: sets up DIR, or re-applies the options to an existing one.
configure_build() {
  local dir=$1; shift
  if [ -f "$RINGTUN_ROOT/$dir/build.ninja" ]; then
    meson configure "$RINGTUN_ROOT/$dir" "$@" >/dev/null || die "meson configure $dir failed"
  else
    rm -rf "${RINGTUN_ROOT:?}/$dir"
    meson setup "$RINGTUN_ROOT/$dir" "$RINGTUN_ROOT" "$@" >"$RINGTUN_ROOT/.meson-setup-$dir.log" 2>&1 || {
      tail -20 "$RINGTUN_ROOT/.meson-setup-$dir.log" >&2; die "meson setup $dir failed (log: .meson-setup-$dir.log)"; }
    rm -f "$RINGTUN_ROOT/.meson-setup-$dir.log"
  fi
}

build() {
  local dir=$1; shift
  say "building $dir"
  ninja -C "$RINGTUN_ROOT/$dir" "$@" >"$RINGTUN_ROOT/$dir/ninja.log" 2>&1 || {
    grep -E "error|FAILED" -A3 "$RINGTUN_ROOT/$dir/ninja.log" | head -40 >&2; die "build of $dir failed (log: $dir/ninja.log)"; }
}

# suite_targets DIR SUITE: the ninja targets (paths relative to DIR) of the executables that SUITE's tests run.
suite_targets() {
  meson introspect "$RINGTUN_ROOT/$1" --tests | python3 -c '
import json, os, sys
build, suite = sys.argv[1], sys.argv[2]
for t in json.load(sys.stdin):
    if any(s.endswith(suite) for s in t["suite"]):
        print(os.path.relpath(t["cmd"][0], build))' "$RINGTUN_ROOT/$1" "$2" | sort -u
}

# Debian's wolfSSL has no AES-NI. Where the CPU has it, fetch Debian's own wolfSSL source so that -Dwolfssl=auto builds
# it with AES-NI (subprojects/wolfssl-src-meson). Any failure leaves the system library in use, with a note.
prefer_bundled_wolfssl() {
  if ! grep -qw aes /proc/cpuinfo; then
    say "this CPU has no AES-NI: using Debian's wolfSSL (ChaCha20-Poly1305 first)"
    return 0
  fi
  bash "$RINGTUN_ROOT/scripts/fetch-wolfssl-source.sh" ||
    say "could not fetch Debian's wolfSSL source: using the system wolfSSL (no AES-NI; TLS is slower)"
}
