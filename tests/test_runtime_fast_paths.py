"""The runtime's speed paths keep their behaviour: the OpenVINO backend's reused input tensor, the lazy OpenCV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def mean_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OpenVINO IR (1, 4, 4, 3) -> (1, 3): the per-channel pixel mean, so every input gives its own output."""
    ov = pytest.importorskip("openvino")
    import openvino.opset13 as ops

    image = ops.parameter([1, 4, 4, 3], np.float32, name="image")
    model = ov.Model([ops.reduce_mean(image, np.array([1, 2]), keep_dims=False)], [image], "mean")
    path = tmp_path_factory.mktemp("ir") / "model.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def test_openvino_run_reads_each_image_and_returns_its_own_array(mean_ir: Path) -> None:
    from edgecnn.runtime.backends.openvino import open_model

    backend = open_model(mean_ir, threads=1)
    images = np.random.default_rng(0).integers(0, 256, (3, 1, 4, 4, 3), dtype=np.uint8)
    outputs = [backend.run(image) for image in images]
    for image, output in zip(images, outputs):  # earlier results are not overwritten by later runs
        assert output.dtype == np.float32
        np.testing.assert_allclose(output, image.mean(axis=(0, 1, 2)), rtol=1e-6)
    assert not np.array_equal(outputs[0], outputs[1])
    for wrong in ((1, 5, 5, 3), (1, 1, 1, 3)):  # refused, not broadcast over the input tensor
        with pytest.raises(ValueError, match="shape"):
            backend.run(np.zeros(wrong, np.uint8))


def test_importing_the_runtime_leaves_opencv_unloaded() -> None:
    # predict() on images at the model size needs no OpenCV; importing it costs every cold start (benchmarks/RESULTS.md
    # "Footprint of the base install").
    code = "import sys, edgecnn.runtime; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_resizing_still_works_with_opencv_loaded_on_demand() -> None:
    from edgecnn.runtime.preprocess import fit_image, to_rgb

    image = np.random.default_rng(1).integers(0, 256, (10, 6), dtype=np.uint8)
    assert to_rgb(image).shape == (10, 6, 3)
    assert fit_image(image, (4, 4), "center_crop").shape == (4, 4, 3)
