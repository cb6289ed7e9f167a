"""Generate no-op stand-ins for the CUDA libraries that PyPI's Linux torch wheel links against.

Why: PyPI serves only CUDA builds of torch for Linux x86_64; their shared libraries name libcudart, libcublas,
libcudnn, ... as load-time dependencies, so `import torch` fails unless ~2.3 GB of nvidia-* wheels are
installed, even for CPU-only work. This script reads the torch wheel's own ELF files (readelf, from binutils),
and for every CUDA library they need that is not installed, compiles a tiny shared library with the same
SONAME, the same symbol-version nodes and every symbol torch imports from it. Each stub function returns 0,
except the device queries, which report "no CUDA device" (so `torch.cuda.is_available()` is False). The
stubs go beside torch's libraries (its RPATH has `$ORIGIN`).

Only for CPU training. On a GPU host install the real nvidia-* wheels instead (`install.sh --cuda`).
Usage: python cuda_stubs.py <site-packages>/torch
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

CUDA_PREFIXES = ("libcu", "libnv", "libnccl", "libcudnn")
STUB_LIST = "CUDA_STUBS.txt"  # written beside the stubs: which files are stand-ins (regenerated on rerun)

SPECIAL = {
    # cudaError_t cudaGetDeviceCount(int*): no device, so torch reports CUDA as unavailable.
    "cudaGetDeviceCount": "int cudaGetDeviceCount(int *n) { if (n) *n = 0; return 100; }",
    "cudaGetErrorString": 'const char *cudaGetErrorString(int e) { (void)e; return "no CUDA (CPU-only install, stub library)"; }',
    "cudaGetErrorName": 'const char *cudaGetErrorName(int e) { (void)e; return "cudaErrorNoDevice"; }',
    "cudaDriverGetVersion": "int cudaDriverGetVersion(int *v) { if (v) *v = 0; return 0; }",
    "cudaRuntimeGetVersion": "int cudaRuntimeGetVersion(int *v) { if (v) *v = 0; return 0; }",
}


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def system_has(soname: str) -> bool:
    out = subprocess.run(["ldconfig", "-p"], check=True, capture_output=True, text=True).stdout
    return f"{soname} " in out


def system_libraries(sonames: set[str]) -> list[str]:
    """Paths of the installed (non-CUDA) libraries among `sonames`, from the linker cache."""
    out = subprocess.run(["ldconfig", "-p"], check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \(libc6,x86-64.*\) => (\S+)", line)
        if m and m.group(1) in sonames and not m.group(1).startswith(CUDA_PREFIXES):
            paths.setdefault(m.group(1), m.group(2))
    return sorted(paths.values())


def main(torch_dir: Path) -> None:
    lib_dir = torch_dir / "lib"
    elves = sorted(lib_dir.glob("*.so*")) + sorted(torch_dir.glob("_C*.so"))
    marker = lib_dir / STUB_LIST
    previous = set(marker.read_text().split()) if marker.exists() else set()
    present = {p.name for p in lib_dir.iterdir()} - previous
    needed: set[str] = set()
    tag_to_file: dict[str, str] = {}
    for elf in elves:
        dyn = readelf("-d", str(elf))
        needed.update(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn))
        current = None
        for line in readelf("-V", str(elf)).splitlines():
            m = re.search(r"File: (\S+)", line)
            if m:
                current = m.group(1)
                continue
            m = re.search(r"Name: (\S+)", line)
            if m and current:
                tag_to_file[m.group(1)] = current
    missing = sorted(
        n for n in needed if n.startswith(CUDA_PREFIXES) and n not in present and not system_has(n)
    )
    if not missing:
        print("cuda_stubs: nothing to do (no CUDA library missing)")
        return
    by_file: dict[str, dict[str, str]] = defaultdict(dict)  # file -> symbol -> version tag
    unversioned: set[str] = set()
    defined: set[str] = set()
    for lib in [*elves, *system_libraries(needed)]:
        for line in readelf("--dyn-syms", str(lib)).splitlines():
            cols = line.split()
            if len(cols) >= 8 and cols[6] not in ("UND", "Ndx"):
                defined.add(cols[7].split("@", 1)[0])
    for elf in elves:
        for line in readelf("--dyn-syms", str(elf)).splitlines():
            cols = line.split()
            if len(cols) < 8 or cols[6] != "UND":
                continue
            name = cols[7]
            if "@" not in name:
                if cols[4] != "WEAK":
                    unversioned.add(name)
                continue
            sym, tag = name.split("@", 1)
            tag = tag.lstrip("@").split(" ")[0]
            file = tag_to_file.get(tag)
            if file in missing:
                by_file[file][sym] = tag
    # Symbols imported without a version (cuSPARSELt, NCCL, cuFile do not version theirs) are defined in every
    # stub without version nodes: the dynamic linker takes the first definition in the lookup scope.
    loose = sorted(unversioned - defined)
    with tempfile.TemporaryDirectory() as tmp:
        for soname in missing:
            symbols = by_file.get(soname, {}) or {sym: "" for sym in loose}
            tags = sorted(set(symbols.values()) - {""})
            src = Path(tmp) / "stub.c"
            body = [f"/* stub of {soname} generated by train/scripts/cuda_stubs.py */"]
            for sym in sorted(symbols):
                body.append(SPECIAL.get(sym, f"long {sym}(void) {{ return 0; }}"))
            src.write_text("\n".join(body) + "\n")
            script = Path(tmp) / "versions.map"
            if tags:
                nodes = []
                for tag in tags:
                    syms = "".join(f" {s};" for s, t in sorted(symbols.items()) if t == tag)
                    nodes.append(f"{tag} {{ global:{syms} }};")
                nodes.append("STUB_LOCAL { local: *; };")
                script.write_text("\n".join(nodes) + "\n")
            cmd = ["cc", "-shared", "-fPIC", "-O0", "-w", "-o", str(lib_dir / soname), f"-Wl,-soname,{soname}", str(src)]
            if tags:
                cmd.append(f"-Wl,--version-script={script}")
            subprocess.run(cmd, check=True)
            print(f"cuda_stubs: {soname}: {len(symbols)} symbols")
    marker.write_text("\n".join(missing) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
