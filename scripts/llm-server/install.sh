#!/usr/bin/env bash
# Installs a real OpenAI-compatible server for the teacher's HTTP backend tests: llama-cpp-python's server
# (`python -m llama_cpp.server`, FastAPI + uvicorn over llama.cpp) from PyPI, into its own virtualenv.
#
#   bash scripts/llm-server/install.sh        (npm run teacher:server)
#
# PyPI serves llama-cpp-python for Linux as a source distribution only, so the first run compiles llama.cpp
# (cmake + the system C/C++ compiler; ~8 min on 2 cores). The wheel it builds is kept in the wheelhouse
# shared with train/install.sh, $STAR_WHEELS (default ~/.cache/starstream/wheels, outside the checkout), with
# the server's pure-Python dependencies, so later runs and fresh clones on the same machine install in seconds
# without the network. The build targets x86-64-v3 (AVX2, FMA, F16C) rather than this exact CPU, so a
# wheelhouse copied to another x86-64 host from the last decade still loads; it leaves out the multimodal
# library (LLAVA_BUILD=OFF: a quarter of the build, unused by text chat, imported only by the vision handlers).
#
# The venv: $STAR_LLM_SERVER_VENV (default .cache/llm-server/venv in the checkout; ignored by git).
# test/teacher/llm/openai-server.test.ts starts the server from it on the GGUF of `npm run teacher:model`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3}"
wheels="${STAR_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/starstream/wheels}"
venv="${STAR_LLM_SERVER_VENV:-$root/.cache/llm-server/venv}"
version="0.3.36"
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$wheels"
start=$(date +%s)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/pip"

if ! ls "$wheels"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "llm server: building llama-cpp-python $version from source (once per machine; ~8 min on 2 cores)"
  build_start=$(date +%s)
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$pip" wheel --quiet --no-deps --no-binary llama-cpp-python --wheel-dir "$wheels" "llama-cpp-python==$version"
  echo "llm server: built in $(( $(date +%s) - build_start ))s"
fi
"$pip" download --quiet --dest "$wheels" --find-links "$wheels" "llama-cpp-python[server]==$version"
"$pip" install --quiet --no-index --find-links "$wheels" "llama-cpp-python[server]==$version"
"$venv/bin/python" -c "import llama_cpp, llama_cpp.server.app; print(f'llm server: llama-cpp-python {llama_cpp.__version__} ready in $venv')"
echo "llm server: install took $(( $(date +%s) - start ))s"
