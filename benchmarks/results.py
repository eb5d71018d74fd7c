"""Shared by benchmark scripts: describe the machine, and replace one named section of RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
PACKAGES = (
    "tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx", "openvino", "nncf", "numpy",
    "opencv-python-headless",
)


# Vector extensions that change CPU inference speed (int8 above all: VNNI), widest first; the first found is named.
ISA_LEVELS = (("avx512_vnni", "AVX-512 + VNNI"), ("avx512f", "AVX-512"), ("avx_vnni", "AVX2 + VNNI"), ("avx2", "AVX2"),
              ("asimddp", "NEON + dot product"), ("asimd", "NEON"))


def machine() -> str:
    """CPU model and vector extensions, cores, memory, OS, Python and key package versions, as one paragraph."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in (platform.processor(), platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")) and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = next((name for flag, name in ISA_LEVELS if flag in flags), "")
    cpu = f"{cpu} ({isa})" if isa else cpu
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    packages = []
    for name in PACKAGES:
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {', '.join(packages)}"
    )


def write_section(name: str, body: str) -> Path:
    """Replace (or append) the section `name` of RESULTS.md, stamped with the date and the machine."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    block = f"{start}\n{body.rstrip()}\n\n_Measured {stamp} on: {machine()}._\n{end}"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(RESULTS)
    return RESULTS
