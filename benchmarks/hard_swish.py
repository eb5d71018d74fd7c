"""Int8 vs float32 under LiteRT for MobileNetV3-Small: fused HARD_SWISH, edgecnn's rewrite, the minimalistic variant.

Why int8 MobileNetV3 was slower than float32 (XNNPACK has no int8 HARD_SWISH) and what the rewrite in
edgecnn/export/lowering.py buys. Untrained weights with BatchNorm statistics set from a batch of images, so
activation ranges are realistic; timing only. int8/float32 is timed interleaved in one process.
Usage: python benchmarks/hard_swish.py [--size 224] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.bench.latency import measure_latency, paired_ratio  # noqa: E402
from edgecnn.export import lowering, tflite  # noqa: E402
from edgecnn.models import create  # noqa: E402
from edgecnn.quant.graph import leaf_layers  # noqa: E402
from edgecnn.runtime.backends.litert import open_model  # noqa: E402

VARIANTS = (  # (label, registry model, int8 with the hard-swish rewrite?)
    ("MobileNetV3-Small, HARD_SWISH fused (a hand conversion)", "mobilenet_v3_small", False),
    ("MobileNetV3-Small, edgecnn's rewrite", "mobilenet_v3_small", True),
    ("MobileNetV3-Small minimalistic (no hard-swish, no SE)", "mobilenet_v3_small_minimalistic", True),
)


class _Backend:
    """A LiteRT model behind the two methods paired_ratio and measure_latency use."""

    def __init__(self, path: Path, threads: int, size: int):
        self.backend, self.image_size, self.load_ms = open_model(path, threads=threads), (size, size), 0.0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.backend.run(batch)

    def info(self) -> dict:
        return self.backend.info()


def model_with_data_statistics(name: str, images: np.ndarray) -> keras.Model:
    model = create(name, num_classes=1000, image_size=images.shape[1])
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # moving statistics := this batch's, as training would leave them
    model(images.astype(np.float32), training=True)
    return model


def measure(size: int, threads: int, root: Path) -> list[dict]:
    images = np.random.default_rng(0).integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    rows = []
    for label, name, rewrite in VARIANTS:
        model = model_with_data_statistics(name, images)
        paths = {}
        for precision in ("float32", "int8"):
            paths[precision] = root / f"{name}-{rewrite}-{precision}.tflite"
            with nullcontext() if rewrite else _no_rewrites():
                paths[precision].write_bytes(tflite.convert(model, precision, images))
        int8, float32 = (_Backend(paths[p], threads, size) for p in ("int8", "float32"))
        report = int8.backend.delegation()
        rows.append({
            "variant": label,
            "undelegated": ", ".join(f"{op}×{n}" for op, n in report["undelegated"].items()),
            "partitions": report["partitions"],
            "float32_ms": measure_latency(float32, runs=200, warmup=20).p50_ms,
            "int8_ms": measure_latency(int8, runs=200, warmup=20).p50_ms,
            "ratio": paired_ratio(int8, float32),
        })
        print(rows[-1], flush=True)
    return rows


@contextmanager
def _no_rewrites() -> Iterator[None]:
    """Convert as a hand conversion would: the rewrite table emptied for the block."""
    saved, lowering.REWRITES = lowering.REWRITES, ()
    try:
        yield
    finally:
        lowering.REWRITES = saved


def report(size: int, threads: int, rows: list[dict]) -> str:
    lines = [
        f"## Int8 hard-swish under LiteRT: MobileNetV3-Small at {size} px, {threads} threads",
        "",
        "Untrained weights, BatchNorm statistics from 32 random images (realistic activation ranges); 1000 classes. "
        "p50 of single-image runs in this process; int8/float32 interleaved in alternating rounds.",
        "",
        "| variant | int8 ops XNNPACK leaves to LiteRT | int8 XNNPACK partitions | float32 p50 ms | int8 p50 ms | "
        "int8 / float32 time, interleaved |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['undelegated']} | {r['partitions']} | {r['float32_ms']:.3f} | "
            f"{r['int8_ms']:.3f} | {r['ratio']:.2f}× |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecnn-hardswish-") as tmp:
        body = report(args.size, args.threads, measure(args.size, args.threads, Path(tmp)))
    print(body)
    print(f"\nwritten to {write_section('hard_swish', body)}")
