"""Embedding bundles, the Embedder, gallery index/search, retrieval metrics, t-SNE maps and the HOG baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLASSES, IMAGE_SIZE, IMAGES_PER_CLASS
from helpers import NO_TENSORFLOW, train_tiny_run

from edgecnn.cli import main
from edgecnn.errors import GalleryError
from edgecnn.retrieval import load_gallery, retrieval_report, save_gallery, search
from edgecnn.runtime import Embedder, load

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def embed_bundles(image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """precision → embedding bundle exported from a tiny run trained on the colour folder."""
    from edgecnn.export.pipeline import export_run

    recipe = {
        "name": "colours",
        "data": {"source": "folder", "path": str(image_folder), "image_size": IMAGE_SIZE, "val_fraction": 0.25,
                 "test_fraction": 0.25},
        "model": {"name": "tiny_cnn", "dropout": 0.0},
        "train": {"epochs": 3, "batch_size": 8, "learning_rate": 0.01},
        "export": {"calibration_images": 18},
    }
    run = train_tiny_run(recipe, tmp_path_factory.mktemp("runs"))
    out = tmp_path_factory.mktemp("bundles")
    return {p: export_run(run, "tflite", p, out, task="embed").bundle_dir for p in ("float32", "int8")}


def test_embedding_export_parity(embed_bundles: dict[str, Path]) -> None:
    float32 = json.loads((embed_bundles["float32"] / "bundle.json").read_text())
    assert embed_bundles["float32"].name == "colours-embed-tflite-float32"
    assert float32["task"] == "embed" and float32["labels"] == CLASSES
    parity = float32["checks"]["parity"]
    assert parity["passed"] and parity["min_cosine"] >= 0.99 and parity["nearest_neighbour_agreement"] == 1.0
    embedder = load(embed_bundles["float32"])
    assert isinstance(embedder, Embedder) and float32["embedding_size"] == embedder.embedding_size
    int8 = json.loads((embed_bundles["int8"] / "bundle.json").read_text())["checks"]["parity"]
    assert int8["images"] == parity["images"] and int8["passed"] and 0.9 <= int8["mean_cosine"] <= 1.0
    # A classifier command refuses an embedding bundle with one line.
    assert main(["eval", str(embed_bundles["float32"])]) == 2


# Runs in a fresh interpreter where importing TensorFlow or Keras fails, as on a device without them.
DEVICE_SCRIPT = NO_TENSORFLOW + textwrap.dedent("""
    import numpy as np
    import edgecnn.runtime, edgecnn.retrieval, edgecnn.commands.index, edgecnn.commands.search
    from edgecnn.cli import main
    embedder = edgecnn.runtime.load(sys.argv[1], threads=1)
    vectors = embedder.embed(np.zeros((2, *embedder.image_size, 3), np.uint8))
    code = main(["index", sys.argv[1], "--data", sys.argv[2], "--out", sys.argv[3]])
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print(json.dumps({"type": type(embedder).__name__, "shape": list(vectors.shape), "dtype": str(vectors.dtype),
                      "norms": np.linalg.norm(vectors, axis=1).round(4).tolist(), "index": code,
                      "imported": imported}))
""")


def test_embedder_and_index_run_without_tensorflow(embed_bundles: dict[str, Path], image_folder: Path,
                                                   tmp_path: Path) -> None:
    bundle = embed_bundles["int8"]
    size = json.loads((bundle / "bundle.json").read_text())["embedding_size"]
    result = subprocess.run(
        [sys.executable, "-c", DEVICE_SCRIPT, str(bundle), str(image_folder), str(tmp_path / "g.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "type": "Embedder", "shape": [2, size], "dtype": "float32", "norms": [1.0, 1.0], "index": 0, "imported": [],
    }
    assert len(load_gallery(tmp_path / "g.npz")) == len(CLASSES) * IMAGES_PER_CLASS


def test_index_search_round_trip(embed_bundles: dict[str, Path], image_folder: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    gallery_path = tmp_path / "gallery.npz"
    assert main(["index", str(embed_bundles["float32"]), "--data", str(image_folder), "--out", str(gallery_path)]) == 0
    out = capsys.readouterr().out
    assert f"indexed {len(CLASSES) * IMAGES_PER_CLASS} images (3 classes)" in out
    assert "skipped 2 files" in out and "broken.png: unreadable image" in out and "notes.txt: not an image" in out
    gallery = load_gallery(gallery_path)
    assert gallery.class_names == CLASSES and sorted(set(gallery.labels.tolist())) == [0, 1, 2]
    np.testing.assert_allclose(np.linalg.norm(gallery.embeddings, axis=1), 1.0, atol=1e-5)

    query = image_folder / "red" / "03.png"
    grid = tmp_path / "grid.png"
    assert main(["search", str(gallery_path), str(query), "--top-k", "5", "--grid", str(grid), "--json"]) == 0
    neighbours = json.loads(capsys.readouterr().out)["neighbours"]
    assert neighbours[0]["path"] == str(query) and neighbours[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert [n["label"] for n in neighbours] == ["red"] * 5
    assert [n["rank"] for n in neighbours] == [1, 2, 3, 4, 5]
    assert cv2.imread(str(grid)).shape == (128 + 22, 6 * 128 + 5 * 6, 3)


def test_faiss_search_finds_the_exact_nearest() -> None:
    pytest.importorskip("faiss", reason="the optional [ann] extra (faiss-cpu) is not installed")
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((300, 8)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    exact = search(gallery, gallery[:20], 5)[0]
    approximate = search(gallery, gallery[:20], 5, method="faiss")[0]
    assert np.array_equal(approximate[:, 0], np.arange(20)) and np.array_equal(exact[:, 0], np.arange(20))
    assert np.mean([len(set(a) & set(b)) for a, b in zip(exact, approximate)]) >= 4.5


def test_foreign_or_unsafe_gallery_is_refused(embed_bundles: dict[str, Path], image_folder: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    gallery_path = tmp_path / "float.npz"
    assert main(["index", str(embed_bundles["float32"]), "--data", str(image_folder / "red"),
                 "--out", str(gallery_path)]) == 0  # a flat folder of images: unlabelled
    assert load_gallery(gallery_path).class_names == []
    capsys.readouterr()
    query = str(image_folder / "red" / "00.png")
    assert main(["search", str(gallery_path), query, "--bundle", str(embed_bundles["int8"])]) == 2
    error = capsys.readouterr().err
    assert error.startswith("edgecnn search: error: ") and "built with bundle 'colours-embed-tflite-float32'" in error
    assert "index the images again with this bundle" in error and len(error.strip().splitlines()) == 1
    with pytest.raises(GalleryError, match="not with 'colours-embed-tflite-int8'"):
        load_gallery(gallery_path, load(embed_bundles["int8"]))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, embeddings=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(GalleryError, match="not a gallery file"):
        load_gallery(pickled)


def test_retrieval_metrics_on_a_hand_made_case() -> None:
    # Gallery on the unit circle at 10°..50°, labels 0,1,0,1,1; both queries at 0°, so both rank it in that order.
    angles = np.radians([10, 20, 30, 40, 50])
    gallery = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    queries = np.array([[1, 0], [1, 0]], np.float32)
    report = retrieval_report(gallery, np.array([0, 1, 0, 1, 1]), queries, np.array([0, 1]), knn_k=3)
    # Query 0 (R=2): hits at ranks 1 → AP 1/2; query 1 (R=3): hit at rank 2 of 3 → AP (1/2)/3 = 1/6.
    assert report.recall == {1: 0.5, 5: 1.0}
    assert report.map_at_r == pytest.approx((1 / 2 + 1 / 6) / 2)
    assert report.knn_top1 == 0.5  # 3-NN votes 0,1,0: right for query 0, wrong for query 1
    indices, scores = search(gallery, queries[:1], 2)
    assert indices.tolist() == [[0, 1]] and scores[0, 0] == pytest.approx(np.cos(np.radians(10)))


def test_eval_task_retrieval(embed_bundles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(embed_bundles["float32"]), "--task", "retrieval", "--knn", "3", "--json",
                 "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gallery"] == 18 and report["queries"] == 9  # train / test of 36 readable images
    assert report["recall_at_1"] == 1.0 and report["map_at_r"] > 0.9 and report["knn_top1"] == 1.0
    assert (tmp_path / "retrieval.json").is_file()


def test_embed_map_writes_pngs(embed_bundles: dict[str, Path], tmp_path: Path) -> None:
    assert main(["embed-map", str(embed_bundles["float32"]), "--split", "train", "--per-class", "6",
                 "--out", str(tmp_path)]) == 0
    for name in ("embed-map.png", "pixel-map.png"):
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape[0] > 300, name


def test_hog_svm_baseline_on_digits(capsys: pytest.CaptureFixture) -> None:
    assert main(["baseline", "--data", "digits", "--source", "builtin", "--image-size", "16", "--max-train", "600",
                 "--kernel", "linear", "rbf", "rbf_approx", "--json"]) == 0
    results = {r["kernel"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert set(results) == {"linear", "rbf", "rbf_approx"}
    for result in results.values():
        assert result["train_images"] == 600 and result["features"] == 3 * 3 * 4 * 9
        assert result["accuracy"] >= 0.85 and 0 < result["single_image_ms"] < 100


def test_gallery_file_round_trip(tmp_path: Path) -> None:
    from edgecnn.retrieval import Gallery

    gallery = Gallery(np.eye(3, dtype=np.float32), np.array([0, 1, -1]), ["a.png", "b.png", "c.png"], ["x", "y"],
                      {"name": "b", "sha256": "00", "embedding_size": 3})
    loaded = load_gallery(save_gallery(gallery, tmp_path / "g.npz"))
    assert loaded.paths == gallery.paths and loaded.bundle == gallery.bundle
    assert loaded.label_names(np.array([2, 1])) == ["", "y"]
    with pytest.raises(GalleryError, match="end in .npz"):
        save_gallery(gallery, tmp_path / "g.pkl")
    shutil.copy(tmp_path / "g.npz", tmp_path / "copy.npz")
    assert len(load_gallery(tmp_path / "copy.npz")) == 3
