"""Params and MACs of the zoo against the published figures (1000-class heads, 224 px), and of the small-input
variants beside their parents at 32 px → RESULTS.md.

Counts come from edgecnn.models.profile (layer shapes, nothing looked up). Usage: python benchmarks/model_zoo.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from edgecnn.models import small_input  # noqa: E402
from edgecnn.models.profile import profile_registered  # noqa: E402

SMALL_SIZE, SMALL_CLASSES = 32, 10  # CIFAR-10-sized data: what the `_cifar` variants are for

# name → (paper MACs in millions, paper params in millions, source). Figures from shared/REFERENCE.md.
PAPER = {
    "mobilenet_v1": (569, 4.24, "MobileNetV1-1.0-224 paper"),
    "mobilenet_v2": (300, 3.47, "MobileNetV2-1.0-224 paper"),
    "mobilenet_v3_large": (217, 5.4, "MobileNetV3 paper, Large-224"),
    "mobilenet_v3_small": (56, 2.5, "MobileNetV3 paper, Small-224 (table 3 definition)"),
    "efficientnet_b0": (390, 5.3, "EfficientNet paper, B0"),
    "efficientnet_lite0": (407, 4.7, "EfficientNet-Lite README ('MAdds', counts element-wise ops too)"),
}


def main() -> str:
    lines = [
        "## Model zoo: params and MACs vs published figures",
        "",
        "MACs = weight × activation multiply-accumulates from layer shapes (BN, activations, pooling and "
        "element-wise merges count 0); params = trainable parameters. For EfficientNet-Lite the README's figure "
        "also counts element-wise work, so the compared column there is MACs + element-wise ops.",
        "",
        "| model | paper MACs M | ours MACs M | Δ | paper params M | ours params M | Δ | int8-friendly | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (paper_macs, paper_params, source) in PAPER.items():
        profile = profile_registered(name)
        macs = profile.macs + (profile.elementwise_ops if name.startswith("efficientnet_lite") else 0)
        ours_macs, ours_params = macs / 1e6, profile.trainable_params / 1e6
        friendly = "yes" if profile.int8_friendly else f"no ({profile.int8_reason()})"
        lines.append(
            f"| {name} | {paper_macs} | {ours_macs:.1f} | {100 * (ours_macs / paper_macs - 1):+.1f} % | "
            f"{paper_params} | {ours_params:.3f} | {100 * (ours_params / paper_params - 1):+.1f} % | {friendly} | "
            f"{source} |"
        )
    return "\n".join(lines + [""] + small_input_table())


def small_input_table() -> list[str]:
    """Each `<parent>_cifar` variant beside its parent at 32 px: map before pooling, params, MACs."""
    lines = [
        f"### Small-input variants at {SMALL_SIZE} px ({SMALL_CLASSES}-class heads)",
        "",
        "`<parent>_cifar` runs the stem and the first downsampling stage at stride 1 (total stride 8): same layers "
        "and weights, larger maps. map = spatial size entering global pooling; params = all weights, BN "
        "statistics included; MACs as above.",
        "",
        "| variant | map parent → variant | params M (both) | parent MACs M | variant MACs M | × | "
        "parent MACs M at 224 px |",
        "|---|---|---|---|---|---|---|",
    ]
    for parent in small_input.PARENTS:
        name = small_input.variant_name(parent)
        base = profile_registered(parent, num_classes=SMALL_CLASSES, image_size=SMALL_SIZE)
        variant = profile_registered(name, num_classes=SMALL_CLASSES, image_size=SMALL_SIZE)
        at_224 = profile_registered(parent, num_classes=SMALL_CLASSES, image_size=224)
        if variant.params != base.params:
            raise RuntimeError(f"{name} has {variant.params} params, {parent} {base.params}: weights should match")
        maps = " → ".join("×".join(map(str, small_input.final_feature_map(p))) for p in (base, variant))
        lines.append(
            f"| {name} | {maps} | {variant.params / 1e6:.3f} | {base.macs / 1e6:.1f} | {variant.macs / 1e6:.1f} | "
            f"{variant.macs / base.macs:.1f} | {at_224.macs / 1e6:.1f} |"
        )
    return lines


if __name__ == "__main__":
    body = main()
    print(body)
    print(f"\nwritten to {write_section('model_zoo', body)}")
