"""The layering rule, read from the source: every import points down a layer (or stays inside its own unit), the
device side imports only the runtime, data and leaves, and no modules import each other in a circle.

Function-level imports count: a lazy import is still a dependency. Layers, bottom to top (README "Architecture").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "edgecnn"

# (rank, unit, module prefixes). A module may import modules of a lower rank, or of its own unit.
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "leaves", ("edgecnn", "edgecnn.atomic", "edgecnn.errors", "edgecnn.formats", "edgecnn.devices",
                   "edgecnn.report", "edgecnn.metrics", "edgecnn.logs")),
    (1, "runtime", ("edgecnn.runtime",)),
    (2, "data", ("edgecnn.data",)),
    (2, "quant", ("edgecnn.quant",)),
    (3, "models", ("edgecnn.models",)),
    (4, "config", ("edgecnn.config", "edgecnn.run_dir")),
    (5, "train", ("edgecnn.train",)),
    (6, "export", ("edgecnn.export",)),
    (7, "bench", ("edgecnn.bench",)),
    (7, "live", ("edgecnn.live",)),
    (7, "retrieval", ("edgecnn.retrieval",)),
    (7, "baseline", ("edgecnn.baseline",)),
    (7, "deploy", ("edgecnn.deploy",)),
    (8, "commands", ("edgecnn.commands", "edgecnn.cli")),
]
# The device side runs without TensorFlow: it may use only these units (and its own).
DEVICE_SIDE = {"bench", "live", "retrieval", "baseline", "deploy"}
DEVICE_SIDE_MAY_USE = {"leaves", "runtime", "data"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> tuple[int, str]:
    """(rank, unit) of an edgecnn module: the longest matching prefix wins."""
    best: tuple[int, tuple[int, str]] | None = None
    for rank, unit, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), (rank, unit))
    if best is None or (best[0] == len("edgecnn") and module != "edgecnn"):
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best[1]


def imports_of(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The edgecnn modules `path` imports anywhere in its body (a name of a package resolves to its submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
    return {name for name in found if name.split(".")[0] == "edgecnn"}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in root.rglob("*.py")}
    return {module: imports_of(path, root, set(files)) - {module} for module, path in files.items()}


def violations(root: Path) -> list[str]:
    """Every upward or sideways import and every import cycle in the package at `root`."""
    graph = import_graph(root)
    problems = []
    for module, imported in sorted(graph.items()):
        rank, unit = unit_of(module)
        for target in sorted(imported):
            target_rank, target_unit = unit_of(target)
            if unit in DEVICE_SIDE and target_unit not in DEVICE_SIDE_MAY_USE | {unit}:
                problems.append(f"{module} → {target}: the device side uses only runtime, data and leaves")
            elif target_unit != unit and target_rank >= rank:
                problems.append(f"{module} ({unit}) → {target} ({target_unit}): imports upward or sideways")
    problems += [f"import cycle: {' → '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_point_down_the_layers() -> None:
    assert violations(PACKAGE_ROOT) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "edgecnn" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "edgecnn"


@pytest.mark.parametrize(("files", "expected"), [
    ({"config.py": "from edgecnn.export.formats import check_target\n", "export/__init__.py": "",
      "export/formats.py": ""}, "edgecnn.config (config) → edgecnn.export.formats (export): imports upward"),
    ({"train/runner.py": "def f():\n    from edgecnn.bench.evaluate import x\n", "bench/evaluate.py": ""},
     "edgecnn.train.runner (train) → edgecnn.bench.evaluate (bench): imports upward"),
    ({"live/source.py": "import edgecnn.models\n", "models/__init__.py": ""},
     "edgecnn.live.source → edgecnn.models: the device side uses only runtime, data and leaves"),
    ({"data/a.py": "from edgecnn.quant import graph\n", "quant/graph.py": ""},
     "edgecnn.data.a (data) → edgecnn.quant.graph (quant): imports upward or sideways"),
    ({"models/a.py": "from edgecnn.models.b import x\n", "models/b.py": "def f():\n    from edgecnn.models import a\n"},
     "import cycle: edgecnn.models.a → edgecnn.models.b"),
])
def test_the_rule_catches_what_it_forbids(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    (tmp_path / "edgecnn").mkdir()
    (tmp_path / "edgecnn" / "__init__.py").write_text("")
    found = violations(_write(tmp_path, files))
    assert any(problem.startswith(expected) for problem in found), found
