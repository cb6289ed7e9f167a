#!/usr/bin/env bash
# Fetches Prometheus and promtool from Debian's `prometheus` package WITHOUT installing it: the .deb is
# downloaded with `apt-get download` into .cache/prometheus/ (git-ignored) and unpacked there with `dpkg -x`.
# A second run reuses the cache. Prints the directory holding `prometheus` and `promtool` on stdout.
#
#   PROMETHEUS_BIN_DIR=/some/dir   use binaries found there instead (e.g. an official release tarball)
#
# Exit 1 (with the reason on stderr) when neither the cache, PROMETHEUS_BIN_DIR, the PATH nor apt can provide
# them; callers decide whether that is a failure (.ci/run) or a skip (a developer's machine without apt).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=.cache/prometheus
bin="$cache/root/usr/bin"

has() { [ -x "$1/prometheus" ] && [ -x "$1/promtool" ]; }

if [ -n "${PROMETHEUS_BIN_DIR:-}" ] && has "$PROMETHEUS_BIN_DIR"; then echo "$PROMETHEUS_BIN_DIR"; exit 0; fi
if has "$bin"; then echo "$PWD/$bin"; exit 0; fi
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  dirname "$(command -v promtool)"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "prometheus: no apt-get/dpkg here; set PROMETHEUS_BIN_DIR to a folder with prometheus and promtool" >&2
  exit 1
fi

mkdir -p "$cache/debs"
download() { ( cd "$cache/debs" && apt-get download prometheus >&2 ); }
if ! download; then
  # apt's package lists may be missing on a fresh machine; refreshing them needs root.
  if [ "$(id -u)" = 0 ]; then
    echo "prometheus: apt-get download failed; refreshing the package lists (apt-get update) and retrying" >&2
    apt-get update -qq >&2
    download
  else
    echo "prometheus: apt-get download failed and refreshing apt lists needs root" >&2
    exit 1
  fi
fi
deb=$(ls -t "$cache"/debs/prometheus_*.deb | head -1)
rm -rf "$cache/root"
dpkg -x "$deb" "$cache/root"
if ! has "$bin"; then
  echo "prometheus: $deb did not contain usr/bin/prometheus and usr/bin/promtool" >&2
  exit 1
fi
echo "prometheus: unpacked $(basename "$deb") into $cache/root" >&2
echo "$PWD/$bin"
