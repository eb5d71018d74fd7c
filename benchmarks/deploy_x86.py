"""`edgecnn deploy` on this machine for the x86-laptop profile: the chosen bundle per trained Fashion model and its
speed-up over float32 TFLite (both measured by deploy, at the profile's threads, in fresh processes).

Trains recipes/fashion_subset.yaml (the Fashion-MNIST subset shipped in the package) with each model, then runs
`edgecnn deploy RUN --device x86-laptop --max-drop POINTS`. With --out, finished runs and bundles are reused.
With --keep, the rows of models not given to --models stay as they are in RESULTS.md (one model can be re-run alone).
Usage: python benchmarks/deploy_x86.py [--models mobilenet_v2 mobilenet_v3_small efficientnet_lite0] [--epochs 3]
       [--keep]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import RESULTS, write_section  # noqa: E402

from edgecnn.cli import main as edgecnn  # noqa: E402
from edgecnn.config import load_recipe  # noqa: E402
from edgecnn.run_dir import RunDir  # noqa: E402
from edgecnn.train.runner import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEVICE = "x86-laptop"
MODELS = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_lite0"]
SECTION = "deploy_x86"


def kept_rows(rerun: list[str]) -> tuple[list[str], list[str], str]:
    """From the current section of RESULTS.md: the table rows (a model's row and its candidates row) of the models
    not in `rerun`, the prose after the table, and when those rows were measured."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    match = re.search(rf"<!-- {SECTION}:start -->(.*?)<!-- {SECTION}:end -->", text, re.S)
    if match is None:
        return [], [], ""
    section = match.group(1)
    stamp = re.search(r"_Measured (.+?) on:", section)
    rows, prose, keep, after_table = [], [], False, False
    for line in section.strip().splitlines():
        model = re.match(r"\| `(\w+)` \|", line)
        if model:
            keep = model.group(1) not in rerun
        if line.startswith("|"):
            if keep and (model or line.startswith("|  |")):
                rows.append(line)
        elif rows or after_table:
            after_table = True
            if line.strip() and not line.startswith("_Measured"):
                prose.append(line)
    return rows, prose, stamp.group(1) if stamp else "an earlier run"


def trained_run(model: str, epochs: int, out: Path) -> tuple[Path, float]:
    """The fashion_subset recipe trained with `model` (reused when already finished under out/runs)."""
    recipe = load_recipe(REPO / "recipes" / "fashion_subset.yaml",
                         overrides={"name": f"fashion-{model}", "model.name": model, "train.epochs": epochs})
    run = RunDir(out / "runs" / recipe.name)
    if run.model.is_file():
        return run.root, 0.0
    started = time.perf_counter()
    train(recipe, out / "runs")
    return run.root, time.perf_counter() - started


def deploy(run: Path, out: Path, max_drop: float, runs: int) -> dict:
    code = edgecnn(["deploy", str(run), "--device", DEVICE, "--max-drop", str(max_drop), "--bundles",
                    str(out / "bundles"), "--out", str(out / "deploy"), "--runs", str(runs)])
    if code != 0:
        return {}
    return json.loads((out / "deploy" / f"{run.name}-{DEVICE}" / "deploy.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the RESULTS.md rows of the models not re-run")
    args = parser.parse_args()
    kept, prose, kept_stamp = kept_rows(args.models) if args.keep else ([], [], "")
    lines = [
        f"## Deploy on this machine: x86-laptop profile, Fashion-MNIST subset ({args.epochs} epochs, 32 px)",
        "",
        f"`edgecnn deploy RUN --device x86-laptop --max-drop {args.max_drop}`: candidates tflite × (float32, float16, "
        "int8), onnx × (float32, int8), openvino × (float32, float16, int8); p50 of "
        f"{args.runs} single-image runs at the profile's 4 threads on this 2-core machine (so threads "
        "oversubscribe the cores), each bundle in a fresh process. Short training: the models are far from "
        "converged, which is what the budget is judged on. `benchmarks/deploy_x86.py`.",
        "",
        "| model | Keras val top-1 | chosen | its top-1 | drop pt | p50 ms | float32 TFLite p50 ms | speed-up | "
        "eligible / candidates |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(kept)
    header = len(lines)
    with tempfile.TemporaryDirectory(prefix="deploy-x86-") as tmp:
        out = args.out or Path(tmp)
        for model in args.models:
            if len(lines) > header:  # the section so far, so an interrupted run still leaves the finished models
                write_section(SECTION, "\n".join(lines))
            run, seconds = trained_run(model, args.epochs, out)
            print(f"{model}: trained in {seconds:.0f} s", flush=True)
            record = deploy(run, out, args.max_drop, args.runs)
            if not record:
                lines.append(f"| `{model}` | | none within budget | | | | | | |")
                continue
            candidates = record["candidates"]
            chosen = next(c for c in candidates if c["verdict"] == "chosen")
            float32 = next(c for c in candidates if (c["format"], c["precision"]) == ("tflite", "float32"))
            eligible = sum(c["verdict"] in ("chosen", "eligible") for c in candidates)
            speed_up = float32["p50_ms"] / chosen["p50_ms"] if float32["p50_ms"] else float("nan")
            lines.append(
                f"| `{model}` | {100 * chosen['keras_top1']:.2f} % | {chosen['format']} {chosen['precision']} | "
                f"{100 * chosen['top1']:.2f} % | {chosen['drop_points']:+.2f} | {chosen['p50_ms']:.3f} | "
                f"{float32['p50_ms']:.3f} | {speed_up:.2f}x | {eligible} / {len(candidates)} |"
            )
            detail = ", ".join(
                f"{c['format']} {c['precision']} {c['p50_ms']:.3f} ms" if c["p50_ms"] else
                f"{c['format']} {c['precision']} ({c['reason']})" for c in candidates
            )
            lines.append(f"|  | all candidates: {detail} | | | | | | | |")
    if kept:
        names = ", ".join(f"`{m}`" for m in MODELS if any(row.startswith(f"| `{m}` |") for row in kept))
        lines += ["", f"Rows of {names} kept from the run of {kept_stamp}; `{'`, `'.join(args.models)}` re-run alone "
                  "(`--keep`).", *([""] + prose if prose else [])]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    main()
