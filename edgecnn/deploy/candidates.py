"""A deploy candidate: one (format, precision) bundle with its validation accuracy, size and latency."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.runtime.bundle import read_manifest

# Parity rules whose stored verdict deploy trusts as is; quantised bundles are re-judged on the requested budget.
PARITY_RULE = "probability parity"


@dataclass
class Candidate:
    """What deploy knows about one candidate; latency and verdict are filled in as it goes."""

    format: str
    precision: str
    bundle: str | None  # bundle directory, None when the export failed
    size_bytes: int = 0
    top1: float | None = None  # export top-1 on the run's validation split
    keras_top1: float | None = None
    drop_points: float | None = None
    parity_rule: str | None = None
    parity_passed: bool | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    threads: int | None = None
    measured: str = ""  # where the latency comes from, for people
    proxy: bool = False  # latency measured off the device (another machine or architecture)
    verdict: str = "pending"  # chosen / eligible / rejected
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.format} {self.precision}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for deploy.json."""
        return asdict(self)


def candidate_from_bundle(bundle_dir: str | Path) -> Candidate:
    """A candidate from an exported bundle's bundle.json (its checks hold the validation figures)."""
    manifest = read_manifest(bundle_dir)
    parity = manifest.checks.get("parity", {})
    return Candidate(
        format=manifest.format,
        precision=manifest.precision,
        bundle=str(bundle_dir),
        size_bytes=manifest.size_bytes,
        top1=parity.get("export_top1"),
        keras_top1=parity.get("keras_top1"),
        drop_points=parity.get("top1_drop_points"),
        parity_rule=parity.get("rule", PARITY_RULE if manifest.precision.startswith("float") else None),
        parity_passed=parity.get("passed"),
        notes=list(parity.get("warnings", [])),
    )


def missing_candidate(format_name: str, precision: str, reason: str) -> Candidate:
    """A candidate that has no bundle (its export failed or its runtime is missing), rejected with the reason."""
    return Candidate(format=format_name, precision=precision, bundle=None, verdict="rejected", reason=reason)
