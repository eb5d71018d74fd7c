"""Bad-input battery: what a new user gets wrong, run through the CLI as they run it.

Each case builds its input under tmp_path and runs `edgecnn ARGV` in-process. A refused input must end with one
line `edgecnn CMD: error: ...` naming the problem (indented detail lines may follow), a non-zero exit, and no
traceback: an exception escaping `main` fails the case, as it would show the user a traceback. Inputs that are odd
but usable (grey/RGBA/16-bit images of wildly different sizes) must train, with nothing skipped.

Data cases fail in data validation, before any training; the few cases that need a trained run or a bundle share
one tiny session run and conftest's bundles.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import COLOURS, colour_images

from edgecnn.cli import main

RUN_SIZE = 12  # the session run's input size; conftest's bundles take 16, so their model files differ in shape
MIXED_CLASSES = ("dark", "mid", "bright")  # brightness survives grey, RGBA and 16-bit encodings alike
MIXED_LEVELS = {"dark": 40, "mid": 128, "bright": 220}


# --- input builders -------------------------------------------------------------------------------------------------


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels), path
    return path


def colour_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 24)) -> Path:
    """root/<class>/NN.png: `count` noisy images of conftest's colour per class (cycled for extra classes)."""
    colours = list(COLOURS.values())
    for index, (name, count) in enumerate(classes.items()):
        for i, image in enumerate(colour_images(colours[index % 3], count, seed=index, size=size)):
            write_png(root / name / f"{i:02d}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


def mixed_folder(root: Path, per_class: int = 12) -> Path:
    """Brightness classes whose images cycle through grey, BGR, BGRA, 16-bit grey and 16-bit BGR PNGs and JPEGs of
    sizes from 5x3 to 300x40, so every class holds every kind."""
    sizes = [(5, 3), (300, 40), (40, 300), (16, 16), (64, 9), (120, 120)]
    rng = np.random.default_rng(0)
    for name in MIXED_CLASSES:
        for i in range(per_class):
            height, width = sizes[i % len(sizes)]
            level = MIXED_LEVELS[name] + rng.integers(-15, 16, (height, width))
            grey = np.clip(level, 0, 255).astype(np.uint8)
            kinds = [
                ("png", grey),
                ("png", np.dstack([grey] * 3)),
                ("png", np.dstack([grey] * 3 + [np.full_like(grey, 255)])),
                ("png", grey.astype(np.uint16) * 257),
                ("png", np.dstack([grey] * 3).astype(np.uint16) * 257),
                ("jpg", np.dstack([grey] * 3)),
            ]
            suffix, pixels = kinds[i % len(kinds)]
            write_png(root / name / f"{i:02d}.{suffix}", pixels)
    return root


def recipe(tmp: Path, data_path: Path | str, name: str = "bad", **sections) -> Path:
    """A tiny recipe file for `data`; keyword sections (data=..., train=...) update the defaults."""
    content = {
        "name": name,
        "data": {"source": "folder", "path": str(data_path), "image_size": 16,
                 "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "width": 1.0, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 8},
        "export": {"targets": [{"format": "tflite", "precision": "float32"}]},
    }
    for section, values in sections.items():
        content.setdefault(section, {}).update(values)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def train_argv(tmp: Path, data_path: Path | str, *extra: str, **sections) -> list[str]:
    return ["train", str(recipe(tmp, data_path, **sections)), "--out", str(tmp / "runs"), *extra]


def copy_bundle(source: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(source, tmp / source.name))


def copy_run(run: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run, tmp / "runs" / run.name))


def edit_manifest(bundle: Path, change: Callable[[dict], None]) -> Path:
    manifest = json.loads((bundle / "bundle.json").read_text())
    change(manifest)
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


# --- session fixtures: one tiny trained run and its float32 bundle ----------------------------------------------


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained through the CLI on the grey/RGBA/16-bit, many-sizes folder (itself a battery case)."""
    tmp = tmp_path_factory.mktemp("mixed")
    path = recipe(tmp, mixed_folder(tmp / "mixed_data"), name="mixed", data={"image_size": RUN_SIZE},
                  train={"epochs": 8, "batch_size": 4, "learning_rate": 0.01})
    assert main(["train", str(path), "--out", str(tmp / "runs")]) == 0
    return tmp / "runs" / "mixed"


@pytest.fixture(scope="session")
def run_bundle(mixed_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session run exported to float32 TFLite through the CLI."""
    out = tmp_path_factory.mktemp("run_bundles")
    assert main(["export", str(mixed_run), "--format", "tflite", "--precision", "float32", "--out", str(out)]) == 0
    return out / f"{mixed_run.name}-tflite-float32"


@dataclass(frozen=True)
class Fixtures:
    """What a case's setup may use: conftest's bundles, the session run and its bundle (built only when used)."""

    request: pytest.FixtureRequest

    @property
    def bundle(self) -> Path:
        return self.request.getfixturevalue("bundles")["float32"]

    @property
    def run(self) -> Path:
        return self.request.getfixturevalue("mixed_run")

    @property
    def run_bundle(self) -> Path:
        return self.request.getfixturevalue("run_bundle")


# --- the cases ------------------------------------------------------------------------------------------------------


def single_class(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"only": 12}))


def three_images_per_class(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"a": 3, "b": 3}), data={"val_fraction": 0.1,
                                                                                "test_fraction": 0.1})


def split_takes_a_whole_class(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 20, "b": 2})
    return train_argv(tmp, data, data={"val_fraction": 0.45, "test_fraction": 0.44})


def case_duplicate_classes(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"Cat": 6, "cat": 6, "dog": 6}))


def symlink_loop(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 6, "b": 6})
    os.symlink(data / "a", data / "a" / "again")
    return train_argv(tmp, data)


def class_folder_links_to_root(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 6, "b": 6})
    os.symlink(data, data / "c")
    return train_argv(tmp, data)


def two_classes_one_folder(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 6, "b": 6})
    os.symlink(data / "a", data / "c")
    return train_argv(tmp, data)


def empty_data_folder(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "data").mkdir()
    return train_argv(tmp, tmp / "data")


def images_without_class_folders(tmp: Path, fx: Fixtures) -> list[str]:
    for i in range(4):
        write_png(tmp / "data" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    return train_argv(tmp, tmp / "data")


def only_non_image_files(tmp: Path, fx: Fixtures) -> list[str]:
    for name in ("a", "b"):
        (tmp / "data" / name).mkdir(parents=True)
        (tmp / "data" / name / "notes.txt").write_text("not an image")
        (tmp / "data" / name / "table.csv").write_text("1,2\n")
    return train_argv(tmp, tmp / "data")


def zero_byte_images(tmp: Path, fx: Fixtures) -> list[str]:
    for name in ("a", "b"):
        (tmp / "data" / name).mkdir(parents=True)
        for i in range(3):
            (tmp / "data" / name / f"{i}.png").write_bytes(b"")
    return train_argv(tmp, tmp / "data")


def class_with_only_broken_images(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 8})
    (data / "b").mkdir()
    (data / "b" / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (data / "b" / "1.png").write_bytes(b"")
    return train_argv(tmp, data)


def recipe_names_a_missing_class(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"a": 8, "b": 8})
    return train_argv(tmp, data, data={"class_names": ["a", "b", "zebra"]})


def presplit_empty_val(tmp: Path, fx: Fixtures) -> list[str]:
    colour_folder(tmp / "data" / "train", {"a": 8, "b": 8})
    (tmp / "data" / "val").mkdir()
    return train_argv(tmp, tmp / "data")


def nonexistent_data_path(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, tmp / "no_such_folder")


def data_path_is_a_file(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "images.zip").write_bytes(b"PK\x03\x04")
    return train_argv(tmp, tmp / "images.zip")


def unknown_data_source(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, tmp, data={"source": "csv"})


def bad_yaml(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "r.yaml").write_text("name: x\ndata: {path: [unclosed\n")
    return ["train", str(tmp / "r.yaml"), "--out", str(tmp / "runs")]


def recipe_not_a_mapping(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "r.yaml").write_text("- name: x\n- data: y\n")
    return ["train", str(tmp / "r.yaml"), "--out", str(tmp / "runs")]


def empty_recipe(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "r.yaml").write_text("")
    return ["train", str(tmp / "r.yaml"), "--out", str(tmp / "runs")]


def missing_recipe(tmp: Path, fx: Fixtures) -> list[str]:
    return ["train", str(tmp / "no_such_recipe.yaml")]


def unknown_recipe_key(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, tmp, train={"optimiser": "adam"})


def unknown_model(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, tmp, model={"name": "mobilenet_v9"})


def set_without_equals(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"a": 8, "b": 8}), "--set", "train.epochs")


def set_unknown_key(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"a": 8, "b": 8}), "--set", "train.epoch=3")


def set_wrong_type(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"a": 8, "b": 8}), "--set", "train.epochs=many")


def set_out_of_range(tmp: Path, fx: Fixtures) -> list[str]:
    return train_argv(tmp, colour_folder(tmp / "data", {"a": 8, "b": 8}), "--set", "data.image_size=2")


def recipe_name_with_slash(tmp: Path, fx: Fixtures) -> list[str]:
    path = recipe(tmp, colour_folder(tmp / "data", {"a": 8, "b": 8}))
    path.write_text(path.read_text().replace("name: bad", "name: ../elsewhere"))
    return ["train", str(path), "--out", str(tmp / "runs")]


def train_over_finished_run(tmp: Path, fx: Fixtures) -> list[str]:
    run = copy_run(fx.run, tmp)
    return ["train", str(run / "recipe.yaml"), "--out", str(tmp / "runs")]


def export_missing_run(tmp: Path, fx: Fixtures) -> list[str]:
    return ["export", str(tmp / "runs" / "never_trained"), "--out", str(tmp / "bundles")]


def export_unfinished_run(tmp: Path, fx: Fixtures) -> list[str]:
    run = copy_run(fx.run, tmp)
    (run / "model.keras").unlink()
    (run / "metrics.json").unlink()
    return ["export", str(run), "--out", str(tmp / "bundles")]


def export_corrupt_run_recipe(tmp: Path, fx: Fixtures) -> list[str]:
    run = copy_run(fx.run, tmp)
    (run / "recipe.yaml").write_text("name: [unclosed\n")
    return ["export", str(run), "--out", str(tmp / "bundles")]


def export_truncated_model(tmp: Path, fx: Fixtures) -> list[str]:
    run = copy_run(fx.run, tmp)
    model = run / "model.keras"
    model.write_bytes(model.read_bytes()[:200])
    return ["export", str(run), "--format", "tflite", "--precision", "float32", "--out", str(tmp / "bundles")]


def export_unsupported_precision(tmp: Path, fx: Fixtures) -> list[str]:
    return ["export", str(fx.run), "--format", "tflite", "--precision", "int4", "--out", str(tmp / "bundles")]


def eval_missing_bundle(tmp: Path, fx: Fixtures) -> list[str]:
    return ["eval", str(tmp / "bundles" / "nope")]


def eval_run_dir_as_bundle(tmp: Path, fx: Fixtures) -> list[str]:
    return ["eval", str(copy_run(fx.run, tmp))]


def eval_corrupt_bundle_json(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = copy_bundle(fx.bundle, tmp)
    (bundle / "bundle.json").write_text('{"name": "x", "labels": [')
    return ["eval", str(bundle), "--out", str(tmp)]


def eval_bundle_json_missing_field(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = edit_manifest(copy_bundle(fx.bundle, tmp), lambda m: m.pop("labels"))
    return ["eval", str(bundle), "--out", str(tmp)]


def eval_truncated_tflite(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = copy_bundle(fx.bundle, tmp)
    model = bundle / "model.tflite"
    model.write_bytes(model.read_bytes()[:1000])
    return ["eval", str(bundle), "--out", str(tmp), "--no-verify"]  # past the SHA-256 check, to the parser


def eval_changed_tflite(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = copy_bundle(fx.bundle, tmp)
    model = bundle / "model.tflite"
    model.write_bytes(model.read_bytes()[:1000])
    return ["eval", str(bundle), "--out", str(tmp)]


def eval_labels_disagree_with_outputs(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = edit_manifest(copy_bundle(fx.bundle, tmp), lambda m: m.update(labels=["blue", "green"]))
    return ["eval", str(bundle), "--out", str(tmp)]


def eval_swapped_model_file(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = copy_bundle(fx.bundle, tmp)
    shutil.copyfile(fx.run_bundle / "model.tflite", bundle / "model.tflite")  # 12x12 input; bundle.json says 16x16
    return ["eval", str(bundle), "--out", str(tmp)]


def eval_swapped_model_file_unverified(tmp: Path, fx: Fixtures) -> list[str]:
    """Without the hash check, the model's own input size still gives the swap away."""
    return [*eval_swapped_model_file(tmp, fx), "--no-verify"]


def eval_data_with_other_classes(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"cyan": 8, "magenta": 8, "yellow": 8})
    return ["eval", str(fx.bundle), "--data", str(data), "--out", str(tmp)]


def eval_nonexistent_data(tmp: Path, fx: Fixtures) -> list[str]:
    return ["eval", str(fx.bundle), "--data", str(tmp / "no_such_folder"), "--out", str(tmp)]


def eval_data_single_class(tmp: Path, fx: Fixtures) -> list[str]:
    return ["eval", str(fx.bundle), "--data", str(colour_folder(tmp / "data", {"red": 8})), "--out", str(tmp)]


def eval_wrong_source(tmp: Path, fx: Fixtures) -> list[str]:
    data = colour_folder(tmp / "data", {"blue": 8, "green": 8, "red": 8})
    return ["eval", str(fx.bundle), "--data", str(data), "--source", "idx", "--out", str(tmp)]


def eval_truncated_idx(tmp: Path, fx: Fixtures) -> list[str]:
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 16, 16))
    (tmp / "idx").mkdir()
    (tmp / "idx" / "train-images-idx3-ubyte").write_bytes(header + bytes(100))  # 10 images need 2,560 bytes
    (tmp / "idx" / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + bytes(10))
    return ["eval", str(fx.bundle), "--data", str(tmp / "idx"), "--out", str(tmp)]


def eval_source_without_data(tmp: Path, fx: Fixtures) -> list[str]:
    return ["eval", str(fx.bundle), "--source", "folder", "--out", str(tmp)]


def eval_bundle_without_data_record(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = edit_manifest(copy_bundle(fx.bundle, tmp), lambda m: m["source"].pop("data"))
    return ["eval", str(bundle), "--out", str(tmp)]


def bench_missing_bundle(tmp: Path, fx: Fixtures) -> list[str]:
    return ["bench", str(tmp / "nope"), "--runs", "2", "--warmup", "0"]


def bench_truncated_tflite(tmp: Path, fx: Fixtures) -> list[str]:
    bundle = copy_bundle(fx.bundle, tmp)
    (bundle / "model.tflite").write_bytes(b"TFL3" + b"\0" * 60)
    return ["bench", str(bundle), "--runs", "2", "--warmup", "0"]


def bench_data_folder_as_bundle(tmp: Path, fx: Fixtures) -> list[str]:
    return ["bench", str(colour_folder(tmp / "data", {"a": 2, "b": 2})), "--runs", "2", "--warmup", "0"]


def bench_zero_runs(tmp: Path, fx: Fixtures) -> list[str]:
    return ["bench", str(fx.bundle), "--runs", "0"]


def bench_text_file_as_model(tmp: Path, fx: Fixtures) -> list[str]:
    (tmp / "model.txt").write_text("hello")
    return ["bench", str(tmp / "model.txt"), "--runs", "2", "--warmup", "0"]


@dataclass(frozen=True)
class Case:
    """A bad input: how to build it, and the one error line it must end with (re.search on that line)."""

    id: str
    setup: Callable[[Path, Fixtures], list[str]]
    error: str
    exit_code: int = 2


CASES = [
    # train: data problems, refused before any training
    Case("single-class", single_class, r"found 1 class \('only'\); a classifier needs at least 2 classes"),
    Case("three-images-per-class", three_images_per_class,
         r"the val split is empty: val_fraction 0\.1 .* has 3\); each class needs at least 6 images"),
    Case("split-takes-a-whole-class", split_takes_a_whole_class,
         r"val_fraction 0\.45 and test_fraction 0\.44 take every image of class 'b' \(2\)"),
    Case("case-duplicate-classes", case_duplicate_classes, r"class folders 'Cat' and 'cat' differ only in case"),
    Case("symlink-loop", symlink_loop, r"symlink loop in the data folder: .*a/again points back to .*a; remove"),
    Case("class-folder-links-to-root", class_folder_links_to_root, r"symlink loop in the data folder: .*/c points"),
    Case("two-classes-one-folder", two_classes_one_folder, r"/c and .*/a are the same folder \(through a symlink\)"),
    Case("empty-data-folder", empty_data_folder, r"no class sub-directories found \(0 files and no folders\)"),
    Case("images-without-class-folders", images_without_class_folders,
         r"no class sub-directories found \(4 image files directly in it\); expected .*/<class>/<image files>"),
    Case("only-non-image-files", only_non_image_files,
         r"no readable images found in train \(4 files skipped: 4× not an image file; first: .*notes\.txt"),
    Case("zero-byte-images", zero_byte_images,
         r"no readable images found in train \(6 files skipped: 6× unreadable image; "
         r"first: .*a/0\.png \(unreadable image: empty file\)"),
    Case("class-with-only-broken-images", class_with_only_broken_images,
         r"class 'b' has no readable images in train; add images or remove the class \(2 files skipped"),
    Case("recipe-names-a-missing-class", recipe_names_a_missing_class, r"class 'zebra' has no readable images"),
    Case("presplit-empty-val", presplit_empty_val, r"the val split the data provides .* holds no readable images"),
    Case("nonexistent-data-path", nonexistent_data_path, r"data path .*no_such_folder does not exist"),
    Case("data-path-is-a-file", data_path_is_a_file, r"data path .*images\.zip is a file, not a directory"),
    Case("unknown-data-source", unknown_data_source, r"data\.source: unknown data source"),
    # train: recipe and command-line problems
    Case("bad-yaml", bad_yaml, r"r\.yaml: not valid YAML"),
    Case("recipe-not-a-mapping", recipe_not_a_mapping, r"expected a mapping at the top level, got list"),
    Case("empty-recipe", empty_recipe, r"r\.yaml: (expected a mapping|.*empty)"),
    Case("missing-recipe", missing_recipe, r"recipe .*no_such_recipe\.yaml not found"),
    Case("unknown-recipe-key", unknown_recipe_key, r"train\.optimiser: unknown key — did you mean 'optimizer'\?"),
    Case("unknown-model", unknown_model, r"unknown model 'mobilenet_v9'"),
    Case("set-without-equals", set_without_equals, r"--set expects KEY=VALUE .*got 'train\.epochs'"),
    Case("set-unknown-key", set_unknown_key, r"train\.epoch: unknown key — did you mean 'epochs'\?"),
    Case("set-wrong-type", set_wrong_type, r"train\.epochs: .*integer.*'many'"),
    Case("set-out-of-range", set_out_of_range, r"data\.image_size: .*greater than or equal to 8 \(got 2\)"),
    Case("recipe-name-with-slash", recipe_name_with_slash, r"name: .*pattern.*\(got '\.\./elsewhere'\)"),
    Case("train-over-finished-run", train_over_finished_run, r"already holds a finished run; pass --overwrite"),
    # export
    Case("export-missing-run", export_missing_run, r"run directory .*never_trained not found"),
    Case("export-unfinished-run", export_unfinished_run, r"is not a finished run \(missing model\.keras"),
    Case("export-corrupt-run-recipe", export_corrupt_run_recipe, r"recipe\.yaml: not valid YAML"),
    Case("export-truncated-model", export_truncated_model, r"model\.keras.*(cannot be loaded|not a valid|corrupt)"),
    Case("export-unsupported-precision", export_unsupported_precision,
         r"format 'tflite' supports precisions .*; got 'int4'"),
    # eval
    Case("eval-missing-bundle", eval_missing_bundle, r"nope: no such bundle or model file"),
    Case("eval-run-dir-as-bundle", eval_run_dir_as_bundle, r"no bundle\.json found.*edgecnn export"),
    Case("eval-corrupt-bundle-json", eval_corrupt_bundle_json, r"bundle\.json: not valid JSON"),
    Case("eval-bundle-json-missing-field", eval_bundle_json_missing_field,
         r"bundle\.json: .*labels.*(missing|required)"),
    Case("eval-truncated-tflite", eval_truncated_tflite, r"model\.tflite: not a valid TFLite model"),
    Case("eval-changed-tflite", eval_changed_tflite, r"model\.tflite: SHA-256 \w+… does not match bundle\.json"),
    Case("eval-labels-disagree-with-outputs", eval_labels_disagree_with_outputs,
         r"model\.tflite: the model has 3 outputs but bundle\.json lists 2 labels"),
    Case("eval-swapped-model-file", eval_swapped_model_file,
         r"model\.tflite: SHA-256 \w+… does not match bundle\.json"),
    Case("eval-swapped-model-file-unverified", eval_swapped_model_file_unverified,
         r"model\.tflite: the model takes 12x12 images but bundle\.json says 16x16"),
    Case("eval-data-with-other-classes", eval_data_with_other_classes,
         r"class names do not match the bundle labels \(classes only in the bundle: \['blue', 'green', 'red'\]"),
    Case("eval-nonexistent-data", eval_nonexistent_data, r"data path .*no_such_folder does not exist"),
    Case("eval-data-single-class", eval_data_single_class, r"found 1 class \('red'\)"),
    Case("eval-wrong-source", eval_wrong_source, r"no train-images-idx3-ubyte"),
    Case("eval-truncated-idx", eval_truncated_idx, r"train-images-idx3-ubyte: header says \[10, 16, 16\]"),
    Case("eval-source-without-data", eval_source_without_data, r"--source describes --data PATH; give --data too"),
    Case("eval-bundle-without-data-record", eval_bundle_without_data_record,
         r"records no data set to evaluate on; pass --data PATH"),
    # bench
    Case("bench-missing-bundle", bench_missing_bundle, r"nope: no such bundle or model file"),
    Case("bench-truncated-tflite", bench_truncated_tflite, r"model\.tflite: SHA-256 \w+… does not match bundle\.json"),
    Case("bench-data-folder-as-bundle", bench_data_folder_as_bundle, r"data: no bundle\.json found"),
    Case("bench-zero-runs", bench_zero_runs, r"argument --runs: expected an integer >= 1, got 0"),
    Case("bench-text-file-as-model", bench_text_file_as_model, r"model\.txt: not a model file"),
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of `edgecnn ARGV`; argparse's own errors exit through SystemExit."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def error_line(command: str, stderr: str) -> str:
    """The one `edgecnn CMD: error: ...` line, checking that nothing but indented detail lines follows it."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.rstrip("\n").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"edgecnn {command}: error: ")]
    assert len(starts) == 1, f"expected one 'edgecnn {command}: error:' line in stderr:\n{stderr}"
    following = lines[starts[0] + 1:]
    assert all(line.startswith("  ") for line in following), f"unindented lines after the error line:\n{stderr}"
    return "\n".join(lines[starts[0]:])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_ends_with_one_clear_error(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    argv = case.setup(tmp_path, Fixtures(request))
    code, stderr = run_cli(argv, capsys)
    message = error_line(argv[0], stderr)
    assert code == case.exit_code, f"exit {code}, expected {case.exit_code}:\n{stderr}"
    assert re.search(case.error, message), f"{case.error!r} not found in:\n{message}"


def test_grey_rgba_16bit_and_odd_sizes_train_with_nothing_skipped(mixed_run: Path) -> None:
    metrics = json.loads((mixed_run / "metrics.json").read_text())
    assert metrics["skipped_files"] == 0 and (mixed_run / "skipped.txt").read_text() == ""
    assert sum(metrics["data"].values()) == 12 * len(MIXED_CLASSES)
    assert (mixed_run / "labels.txt").read_text().split() == sorted(MIXED_CLASSES)


def test_mixed_run_exports_and_evaluates(run_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", str(run_bundle), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 12 * len(MIXED_CLASSES) and report["top1"] >= 0.9


# --- the device API: Predictor.classify on images a camera or a failed read can give -----------------------------

IMAGE_CASES = [
    ("empty-image", np.zeros((0, 0, 3), np.uint8), r"empty image: shape \(0, 0, 3\) has no pixels"),
    ("zero-height", np.zeros((0, 40), np.uint8), r"empty image: shape \(0, 40\) has no pixels"),
    ("none-from-imread", None, r"got None \(cv2\.imread returns None"),
    ("float-pixels", np.zeros((8, 8, 3), np.float32), r"expected uint8 pixels, got dtype float32; scale \[0, 1\]"),
    ("batch-not-image", np.zeros((2, 8, 8, 3), np.uint8), r"expected one image of shape \(H, W\) or \(H, W, C\)"),
    ("five-channels", np.zeros((8, 8, 5), np.uint8), r"expected 1-4 channels, got shape \(8, 8, 5\)"),
]


@pytest.mark.parametrize(("image", "message"), [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_classify_refuses_unusable_images(bundles: dict[str, Path], image, message: str) -> None:
    from edgecnn.errors import ImageDecodeError
    from edgecnn.runtime import load

    with pytest.raises(ImageDecodeError, match=message):
        load(bundles["float32"]).classify(image)


def test_classify_takes_grey_rgba_16bit_and_extreme_sizes(bundles: dict[str, Path]) -> None:
    from edgecnn.runtime import load

    predictor = load(bundles["float32"])
    red = np.zeros((3, 500, 4), np.uint8)
    red[..., 0], red[..., 3] = 230, 255  # RGBA
    assert predictor.classify(red, top_k=1)[0][0] == "red"
    assert predictor.classify((red[..., :3].astype(np.uint16) * 257), top_k=1)[0][0] == "red"
    assert len(predictor.classify(np.full((1, 1), 128, np.uint8))) == 3  # a grey pixel still gets three scores
