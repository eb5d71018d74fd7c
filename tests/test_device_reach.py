"""Device reach: the base install's Python range, and a clear message where the training extras are missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from edgecnn.cli import main

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_base_install_supports_python_3_10_to_3_13():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    supported = SpecifierSet(project["requires-python"])
    assert [version for version in ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14") if version in supported] == [
        "3.10", "3.11", "3.12", "3.13",
    ]
    # The base install is the runtime only: TensorFlow and Keras come with the extras.
    assert not any(dep.startswith(("tensorflow", "keras")) for dep in project["dependencies"])


def test_train_without_the_training_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ndata: {source: builtin, path: digits, image_size: 16}\nmodel: {name: tiny_cnn}\n")
    for module in [name for name in sys.modules if name.split(".")[0] in ("keras", "tensorflow")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "keras", None)  # as on a device: importing keras fails
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    assert main(["train", str(recipe), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgecnn train: error: ")
    assert "pip install 'edgecnn[train]'" in err[0] and "Python 3.10-3.13" in err[0]


def test_other_missing_modules_are_still_bugs(monkeypatch):
    import edgecnn.commands.devices as devices

    def broken(args):
        import not_a_real_module  # noqa: F401

    monkeypatch.setattr(devices, "run", broken)
    with pytest.raises(ModuleNotFoundError):
        main(["devices"])
