"""`edgecnn models`: the zoo with parameters, MACs, sizes and int8-friendliness; `show` one model; `scale` one.

  edgecnn models [--pattern GLOB] [--classes N] [--json]
  edgecnn models show NAME [--image-size N] [--width W] [--classes N] [--json]
  edgecnn models scale NAME --phi N [--classes N] [--json]

Models are built without weights and never run; counting conventions are in edgecnn/models/profile.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from edgecnn.commands.arguments import positive_int
from edgecnn.errors import UsageError

if TYPE_CHECKING:
    from edgecnn.models.profile import LayerProfile, ModelProfile

MILLION = 1_000_000
FRIENDLY = "✓"
HOSTILE = "✗"
MAX_NAME_WIDTH = 48  # keeps `show` rows on one line for deep nested paths

LIST_COLUMNS = [
    ("name", "model", "{}"),
    ("family", "family", "{}"),
    ("image_size", "res", "{}"),
    ("params_m", "params M", "{:.3f}"),
    ("macs_m", "MACs M", "{:.1f}"),
    ("elementwise_m", "elem-ops M", "{:.1f}"),
    ("float32_mb", "fp32 MB", "{:.1f}"),
    ("int8_mb", "int8 MB", "{:.1f}"),
    ("depth", "depth", "{}"),
    ("int8", "int8", "{}"),
]

LAYER_COLUMNS = [
    ("name", "layer", "{}"),
    ("type", "type", "{}"),
    ("output", "output shape", "{}"),
    ("params", "params", "{:,}"),
    ("macs", "MACs", "{:,}"),
]



def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_output_options(parser, suppress=False)
    parser.add_argument(
        "--pattern", action="append", metavar="GLOB",
        help="only models whose name matches (repeatable), e.g. 'mobilenet_v3*'",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", help="(none: list the zoo)")
    show = actions.add_parser("show", help="per-layer table (type, output shape, params, MACs) and totals")
    show.add_argument("name", help="registered model name (see `edgecnn models`)")
    show.add_argument("--image-size", type=positive_int, help="input resolution (default: the model's own)")
    show.add_argument("--width", type=float, default=1.0, help="width multiplier, where the model has one")
    _add_output_options(show, suppress=True)
    scale = actions.add_parser("scale", help="EfficientNet compound scaling of a model by φ")
    scale.add_argument("name", help="a compound-scalable model, e.g. efficientnet_lite0")
    scale.add_argument("--phi", type=float, required=True, help="compound coefficient φ (1 ≈ twice the MACs)")
    _add_output_options(scale, suppress=True)


def _add_output_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # Sub-actions repeat the options with SUPPRESS defaults so `models --json show X` and `models show X --json`
    # both work: argparse would otherwise overwrite the parent's value with the sub-parser's default.
    parser.add_argument(
        "--classes", type=positive_int, default=argparse.SUPPRESS if suppress else 1000,
        help="classifier outputs (default 1000, as the published figures)",
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of a table",
    )


def run(args: argparse.Namespace) -> int:
    return _ACTIONS[args.action](args)


def list_models(args: argparse.Namespace) -> int:
    """One row per registry entry, each built at its default resolution."""
    from tqdm import tqdm

    from edgecnn.models import get, names
    from edgecnn.models.profile import profile_registered

    selected = _select(names(), args.pattern)
    rows = []
    progress = tqdm(selected, desc="profiling", unit="model", file=sys.stderr, disable=None)
    for name in progress:
        progress.set_postfix_str(name)
        rows.append(_list_row(get(name), profile_registered(name, num_classes=args.classes)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from edgecnn.report import format_table

    print(format_table(rows, LIST_COLUMNS))
    print(
        f"\n{args.classes}-class heads at each model's default resolution. MACs: multiply-accumulates of conv and "
        "dense layers (BN, activations,\npooling and merges excluded, as in the papers); elem-ops: that "
        "per-element work; depth: conv + dense layers;\nint8 MB: one byte per parameter. "
        f"{FRIENDLY}/{HOSTILE}: int8-hostile activations or squeeze-excite found in the graph."
    )
    for row in rows:
        if row["registry_int8_friendly"] != row["int8_friendly"]:
            print(
                f"warning: the registry marks {row['name']} quantization_friendly={row['registry_int8_friendly']} "
                f"but its graph says {row['int8_friendly']} ({row['int8'] or 'nothing found'})"
            )
        if row["uncounted"]:
            print(f"warning: {row['name']}: no MAC rule for {', '.join(row['uncounted'])}; their MACs count as 0")
    return 0


def show_model(args: argparse.Namespace) -> int:
    """Per-layer table of one registry model and its totals."""
    from edgecnn.models import get
    from edgecnn.models.profile import profile_registered

    entry = get(args.name)
    profile = profile_registered(args.name, num_classes=args.classes, image_size=args.image_size, width=args.width)
    if args.json:
        print(json.dumps({"family": entry.family, **profile.to_dict()}, indent=2))
        return 0
    from edgecnn.report import format_table

    print(f'Model: "{profile.name}" ({entry.family}, input {_shape(profile.input_shape)})')
    print(format_table([_layer_row(layer) for layer in profile.layers], LAYER_COLUMNS))
    print(_totals(profile))
    return 0


def scale_model(args: argparse.Namespace) -> int:
    """Compound-scaling multipliers for φ and the params/MACs of the scaled model next to its base."""
    from edgecnn.models import scaling
    from edgecnn.models.profile import profile_built, profile_registered

    scaled = scaling.scale_model(args.name, args.phi)
    base = profile_registered(args.name, num_classes=args.classes)
    grown = profile_built(lambda: scaling.build_scaled(scaled, args.classes))
    if args.json:
        print(json.dumps({
            "base": args.name,
            "phi": args.phi,
            "multipliers": {"depth": scaled.scaling.depth, "width": scaled.scaling.width,
                            "resolution": scaled.scaling.resolution},
            "expected_macs_factor": scaled.scaling.macs_factor,
            "width": scaled.width,
            "depth": scaled.depth,
            "image_size": scaled.image_size,
            "base_profile": base.to_dict(include_layers=False),
            "scaled_profile": grown.to_dict(include_layers=False),
        }, indent=2))
        return 0
    from edgecnn.report import format_table

    s = scaled.scaling
    print(
        f"{args.name} scaled by φ={args.phi:g}: depth ×α^φ = ×{s.depth:.3f}, width ×β^φ = ×{s.width:.3f}, "
        f"resolution ×γ^φ = ×{s.resolution:.3f}\n(α={scaling.ALPHA_DEPTH}, β={scaling.BETA_WIDTH}, "
        f"γ={scaling.GAMMA_RESOLUTION}; α·β²·γ² = {scaling.compound_scaling(1).macs_factor:.3f})\n"
    )
    rows = [
        _scale_row(args.name, scaled.base.depth, scaled.base.width, scaled.base.image_size, base),
        _scale_row(scaled.name, scaled.depth, scaled.width, scaled.image_size, grown),
    ]
    print(format_table(rows, [
        ("name", "model", "{}"), ("depth", "depth coef", "{:.3f}"), ("width", "width coef", "{:.3f}"),
        ("image_size", "res", "{}"), ("params_m", "params M", "{:.3f}"), ("macs_m", "MACs M", "{:.1f}"),
    ]))
    print(
        f"\nMACs ×{grown.macs / base.macs:.2f} (the rule's (α·β²·γ²)^φ = ×{s.macs_factor:.2f}), "
        f"params ×{grown.params / base.params:.2f}. Stage depths round up and channels round to multiples of 8\n"
        "(both add MACs), while Lite keeps its stem, head and first/last stage fixed: the rule is a guide."
    )
    return 0


_ACTIONS = {None: list_models, "show": show_model, "scale": scale_model}


def _select(all_names: list[str], patterns: list[str] | None) -> list[str]:
    """Registry names matching any of the glob patterns (all names without patterns)."""
    import fnmatch

    if not patterns:
        return all_names
    selected = [n for n in all_names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not selected:
        raise UsageError(f"no model matches {', '.join(patterns)}; registered: {', '.join(all_names)}")
    return selected


def _list_row(entry: Any, profile: ModelProfile) -> dict[str, Any]:
    return {
        "name": entry.name,
        "family": entry.family,
        "image_size": profile.input_shape[0],
        "params_m": profile.params / MILLION,
        "macs_m": profile.macs / MILLION,
        "elementwise_m": profile.elementwise_ops / MILLION,
        "float32_mb": profile.float32_mb,
        "int8_mb": profile.int8_mb,
        "depth": profile.depth,
        "int8": FRIENDLY if profile.int8_friendly else f"{HOSTILE} {profile.int8_reason()}",
        "registry_int8_friendly": entry.quantization_friendly,
        **profile.to_dict(include_layers=False),
    }


def _layer_row(layer: LayerProfile) -> dict[str, Any]:
    name = layer.name if len(layer.name) <= MAX_NAME_WIDTH else "…" + layer.name[-MAX_NAME_WIDTH + 1:]
    output = layer.output_shape
    shapes = output if output and isinstance(output[0], tuple) else (output,)
    return {"name": name, "type": layer.type, "output": ", ".join(_shape(s) for s in shapes),
            "params": layer.params, "macs": layer.macs}


def _scale_row(name: str, depth: float, width: float, image_size: int, profile: ModelProfile) -> dict[str, Any]:
    return {"name": name, "depth": depth, "width": width, "image_size": image_size,
            "params_m": profile.params / MILLION, "macs_m": profile.macs / MILLION}


def _shape(shape: tuple) -> str:
    return "×".join(str(d) for d in shape) or "scalar"


def _totals(profile: ModelProfile) -> str:
    lines = [
        f"Total params: {profile.params:,} ({profile.float32_mb:.2f} MB float32, "
        f"≈{profile.int8_mb:.2f} MB int8 at one byte per parameter)",
        f"Trainable params: {profile.trainable_params:,}",
        f"Non-trainable params: {profile.non_trainable_params:,}",
        f"MACs: {profile.macs:,} ({profile.macs / MILLION:.1f} M per image; conv and dense only)",
        f"Element-wise ops: {profile.elementwise_ops:,} (BN, activations, pooling, merges; not in MACs)",
        f"Depth: {profile.depth} weight layers (conv, depthwise, separable, dense)",
    ]
    if profile.int8_friendly:
        lines.append(f"int8: {FRIENDLY} no swish, hard-swish, hard-sigmoid, gelu or squeeze-excite gating found")
    for finding in profile.int8_hostile:
        where = ", ".join(finding.layers[:3]) + (", …" if len(finding.layers) > 3 else "")
        lines.append(f"int8: {HOSTILE} {finding.summary()} ({where})")
    if profile.uncounted:
        lines.append(f"warning: no MAC rule for {', '.join(profile.uncounted)}; their MACs count as 0")
    return "\n".join(lines)
