#!/usr/bin/env bash
# Installs the STAR trainer into train/.venv from PyPI only.
#
#   bash train/install.sh          CPU (default): ~0.6 GB download, no nvidia-* wheels
#   bash train/install.sh --cuda   GPU host: torch with its CUDA wheels (~2.8 GB download)
#
# Why two routes: PyPI serves only CUDA builds of torch for Linux x86_64, and their shared libraries name
# libcudart, libcublas, libcudnn, … as load-time dependencies. pip install torch therefore pulls ~2.3 GB of
# nvidia-* wheels even on a machine without a GPU. The CPU route installs the torch wheel with --no-deps,
# its pure-Python dependencies, and generates stand-ins for the CUDA libraries
# (scripts/cuda_stubs.py) so that `import torch` loads; torch.cuda.is_available() is then False and
# everything runs on the CPU (a CUDA function called anyway aborts the process, naming it). Wheels are downloaded once into a wheelhouse, $STAR_WHEELS (default:
# ~/.cache/starstream/wheels, outside the checkout), and installed from there, so CI runs on fresh clones
# and later runs reuse them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
mode="${1:-cpu}"
python="${PYTHON:-python3}"
wheels="${STAR_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/starstream/wheels}"
mkdir -p "$wheels"
export PIP_DISABLE_PIP_VERSION_CHECK=1
torch_spec="${TORCH_SPEC:-torch==2.15.0}"

start=$(date +%s)
venv="${STAR_VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/pip"
# torch's own pure-Python requirements (its METADATA), without cuda-toolkit, nvidia-*, triton, cuda-bindings.
torch_pure=(filelock "typing-extensions>=4.13" "setuptools>=77.0.3" "sympy>=1.13.3" "networkx>=2.5.1" jinja2 "fsspec>=0.8.5")
trainer=(numpy tokenizers onnx onnxruntime pytest)
fetch() { "$pip" download --quiet --dest "$wheels" --find-links "$wheels" "$@"; }
install() { "$pip" install --quiet --no-index --find-links "$wheels" "$@"; }
case "$mode" in
  cpu|--cpu)
    fetch --no-deps "$torch_spec"
    fetch "${torch_pure[@]}" "${trainer[@]}"
    install --no-deps "$torch_spec"
    install "${torch_pure[@]}" "${trainer[@]}"
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$venv/bin/python" "$here/scripts/cuda_stubs.py" "$site/torch"
    ;;
  gpu|--cuda|cuda)
    fetch "$torch_spec" "${trainer[@]}"
    install "$torch_spec" "${trainer[@]}"
    ;;
  *)
    echo "usage: $0 [--cuda]" >&2
    exit 2
    ;;
esac
# ruff and mypy, pinned in requirements-dev.txt (.ci/run runs them on train/ after the tests)
fetch -r "$here/requirements-dev.txt"
install -r "$here/requirements-dev.txt"
"$pip" install --quiet --no-deps --no-build-isolation -e "$here"
"$venv/bin/python" - <<'PY'
import torch, tokenizers, onnx, onnxruntime
x = torch.randn(8, 8, requires_grad=True)
(x @ x).sum().backward()
import importlib.metadata as md
print(f"train/.venv ready: torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), "
      f"tokenizers {tokenizers.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
      f"ruff {md.version('ruff')}, mypy {md.version('mypy')}")
PY
echo "install took $(( $(date +%s) - start ))s; wheelhouse $wheels: $(du -sh "$wheels" | cut -f1); venv: $(du -sh "$venv" | cut -f1)"
