#!/usr/bin/env bash
# Puts Debian's own wolfssl source package, Debian's patches applied, in subprojects/wolfssl-src, where
# -Dwolfssl=auto|bundled builds it with AES-NI (subprojects/wolfssl-src-meson/meson.build).
#
# It names no host: the source comes from the Debian archive this machine's apt already uses. If apt has no deb-src
# entry at all, a deb-src twin of every Debian entry (same URI, suite, component, Signed-By) is written to
# /etc/apt/sources.list.d/ringtun-deb-src.sources. apt's own parser (apt-get indextargets) reads the existing sources,
# so both the deb822 .sources files of Debian 12 and old one-line .list entries are understood, and entries of other
# vendors are left out (they often publish no sources, which would make apt-get update fail).
#
# Idempotent: does nothing once subprojects/wolfssl-src exists (delete it to fetch again). Needs root or sudo for apt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

DEST=$RINGTUN_ROOT/subprojects/wolfssl-src
DEB_SRC_FILE=/etc/apt/sources.list.d/ringtun-deb-src.sources

if [ -e "$DEST" ]; then
  say "subprojects/wolfssl-src already present; nothing to do"
  exit 0
fi

# dpkg-source (in dpkg-dev) unpacks the package and applies debian/patches.
ensure_packages dpkg-dev

# Signed-By of the sources entry apt names as FILE:N (N is the stanza of a .sources file, the line of a .list file).
# Prints nothing when the entry has none or an inline key; apt then falls back to /etc/apt/trusted.gpg.d.
signed_by_of() {
  local file=${1%:*} n=${1##*:}
  case $file in
    *.sources)
      awk -v n="$n" 'BEGIN { RS = ""; FS = "\n" } /(^|\n)Types:/ && ++i == n {
        for (f = 1; f <= NF; f++) if (sub(/^Signed-By:[ \t]*/, "", $f) && $f != "") print $f }' "$file" ;;
    *)
      sed -n "${n}p" "$file" | grep -o 'signed-by=[^] ]*' | cut -d= -f2 ;;
  esac
}

# "URI SUITE COMPONENT ENTRY" for every Debian archive entry apt reads. Origin comes from the downloaded Release
# files, so apt-get update must have run once.
debian_entries() {
  # shellcheck disable=SC2016  # $(FIELD) is apt's format syntax, not the shell's
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(SOURCESENTRY)' \
    'Created-By: Packages' 'Origin: Debian' | sort -u
}

write_deb_src_file() {
  local entries uri suite comps key
  entries=$(debian_entries)
  if [ -z "$entries" ]; then
    as_root apt-get update -qq || die "apt-get update failed"
    entries=$(debian_entries)
  fi
  [ -n "$entries" ] || die "apt has no Debian archive entry to derive a deb-src entry from"
  say "adding deb-src entries for the Debian archive to $DEB_SRC_FILE"
  # One stanza per (URI, suite) with that pair's components: deb822 crosses suites with components.
  while read -r uri suite; do
    comps=$(awk -v u="$uri" -v s="$suite" '$1 == u && $2 == s { print $3 }' <<<"$entries" | sort -u | xargs)
    key=$(awk -v u="$uri" -v s="$suite" '$1 == u && $2 == s { print $4; exit }' <<<"$entries")
    key=$(signed_by_of "$key" | head -1)
    printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n' "$uri" "$suite" "$comps"
    [ -n "$key" ] && printf 'Signed-By: %s\n' "$key"
    printf '\n'
  done < <(awk '{ print $1, $2 }' <<<"$entries" | sort -u) | as_root tee "$DEB_SRC_FILE" >/dev/null
}

# Tests read whole outputs: with pipefail, `apt-cache ... | grep -q` fails when grep's early exit SIGPIPEs apt.
if [ -n "$(apt-get indextargets 'Created-By: Sources')" ]; then
  say "apt already has deb-src entries; using them"
else
  write_deb_src_file
fi
as_root apt-get update -qq || die "apt-get update failed"
[ -n "$(apt-cache showsrc --only-source wolfssl 2>/dev/null)" ] ||
  die "apt knows no wolfssl source package; check the deb-src entries (e.g. $DEB_SRC_FILE)"

# Unpack next to the destination so the final move is a rename, and a failed run leaves no half tree behind.
work=$(mktemp -d "$RINGTUN_ROOT/subprojects/.wolfssl-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "fetching Debian's wolfssl source package"
(cd "$work" && apt-get source -qq wolfssl) >"$work/apt-get-source.log" 2>&1 || {
  tail -20 "$work/apt-get-source.log" >&2; die "apt-get source wolfssl failed"; }
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -1)
if [ -z "$tree" ] || [ ! -f "$tree/configure.ac" ]; then die "apt-get source left no wolfssl tree in $work"; fi

# Debian's orig tarball is upstream's git tag, without the generated configure script.
if [ ! -x "$tree/configure" ]; then
  ensure_packages autoconf automake libtool
  say "generating wolfssl's configure (autogen.sh)"
  (cd "$tree" && ./autogen.sh) >"$work/autogen.log" 2>&1 || {
    tail -20 "$work/autogen.log" >&2; die "wolfssl autogen.sh failed"; }
fi
mv "$tree" "$DEST"
say "wolfssl $(dpkg-parsechangelog -l "$DEST/debian/changelog" -S Version) is in subprojects/wolfssl-src"
