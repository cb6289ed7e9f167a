"""The CPU install's CUDA stand-ins (scripts/cuda_stubs.py): torch loads and reports no device, and any CUDA
call that would do work stops the process with a message naming it, instead of "succeeding" with unwritten
outputs. Skipped on a GPU install (no stand-ins there)."""
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

LIB = Path(torch.__file__).parent / "lib"
STUBS = set((LIB / "CUDA_STUBS.txt").read_text().split()) if (LIB / "CUDA_STUBS.txt").exists() else set()
pytestmark = pytest.mark.skipif(not STUBS, reason="torch has its real CUDA libraries (install.sh --cuda)")


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_torch_loads_and_reports_no_device() -> None:
    r = python(
        "import torch\n"
        "assert not torch.cuda.is_available() and torch.cuda.device_count() == 0\n"
        "try:\n"
        "    torch.zeros(1, device='cuda')\n"
        "except RuntimeError as e:\n"
        "    print('refused:', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "refused:" in r.stdout


@pytest.mark.parametrize(("lib", "symbol"), [("libcudart.so.13", "cudaMalloc"), ("libcublas.so.13", "cublasSgemm_v2"),
                                             ("libnccl.so.2", "ncclAllReduce")])
def test_a_call_past_the_device_queries_aborts_loudly(lib: str, symbol: str) -> None:
    if lib not in STUBS:
        pytest.skip(f"{lib} is not a stand-in in this torch build ({sorted(STUBS)})")
    r = python(f"import ctypes; ctypes.CDLL({str(LIB / lib)!r}).{symbol}(); print('returned')")
    assert r.returncode == -signal.SIGABRT, (r.returncode, r.stdout, r.stderr)
    assert "returned" not in r.stdout
    assert f"{symbol}() from {lib} was called" in r.stderr
    assert "install.sh --cuda" in r.stderr
