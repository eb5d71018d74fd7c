"""Small-input variants (`<parent>_cifar`): at 32 px the stem and first stage run at stride 1, so the map entering
global pooling is 4×4 instead of 1×1, with the parent's weights; they train and convert to full-int8 TFLite."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the model zoo needs the [train] extra (Keras + TensorFlow)")

from edgecnn import models  # noqa: E402
from edgecnn.cli import main  # noqa: E402
from edgecnn.models import scaling, small_input  # noqa: E402
from edgecnn.models.heads import BACKBONE_NAME  # noqa: E402
from edgecnn.models.profile import ModelProfile, profile_registered  # noqa: E402
from edgecnn.models.small_input import final_feature_map  # noqa: E402

SIZE = 32
CLASSES = 10


@functools.cache
def profile_at_32(name: str) -> ModelProfile:
    return profile_registered(name, num_classes=CLASSES, image_size=SIZE)


def test_every_parent_has_a_registered_variant_with_its_facts():
    for parent in small_input.PARENTS:
        entry, parent_entry = models.get(small_input.variant_name(parent)), models.get(parent)
        assert entry.default_image_size == SIZE
        assert entry.normalisation == parent_entry.normalisation
        assert entry.quantization_friendly == parent_entry.quantization_friendly
    assert set(models.names("*_cifar")) == {f"{parent}_cifar" for parent in small_input.PARENTS}


@pytest.mark.parametrize("parent", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_lite0"])
def test_variant_keeps_a_4x4_map_with_the_parents_weights_and_more_macs(parent):
    base, variant = profile_at_32(parent), profile_at_32(small_input.variant_name(parent))
    assert final_feature_map(base) == (1, 1)
    assert final_feature_map(variant) == (4, 4)
    assert variant.params == base.params and variant.depth == base.depth
    # Layers before the second unstrided conv see 4× the positions, those after it 16×; the head (and in V3 the
    # convs on pooled maps) stay 1×, exactly, since 32 px halves evenly down to 1×1.
    parent_macs = {row.name: row.macs for row in base.layers}
    per_layer = {row.macs / parent_macs[row.name] for row in variant.layers if row.macs}
    assert per_layer == {1.0, 4.0, 16.0}
    assert 4 < variant.macs / base.macs < 16


def test_only_the_first_two_downsamplings_change():
    parent = models.create("mobilenet_v2", CLASSES, SIZE).get_layer(BACKBONE_NAME)
    variant = models.create("mobilenet_v2_cifar", CLASSES, SIZE).get_layer(BACKBONE_NAME)
    strided = {layer.name for layer in parent.layers if getattr(layer, "strides", None) == (2, 2)}
    assert {n for n in strided if variant.get_layer(n).strides == (1, 1)} == {"Conv1", "block_1_depthwise"}
    assert variant.get_layer("block_1_pad").padding == ((1, 1), (1, 1))  # was Keras' asymmetric ((0, 1), (0, 1))
    assert [layer.name for layer in variant.layers] == [layer.name for layer in parent.layers]
    assert parent.output_shape == (None, 1, 1, 1280) and variant.output_shape == (None, 4, 4, 1280)
    keras.backend.clear_session()


def test_parents_weights_file_loads_into_the_variant(tmp_path):
    parent = models.create("mobilenet_v3_small_minimalistic", CLASSES, SIZE)
    path = tmp_path / "parent.weights.h5"
    parent.save_weights(path)
    variant = models.create("mobilenet_v3_small_minimalistic_cifar", CLASSES, SIZE, weights=str(path))
    for ours, theirs in zip(variant.weights, parent.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    keras.backend.clear_session()


def test_variant_trains_and_converts_to_full_int8_tflite(tmp_path):
    from edgecnn.export.tflite import convert
    from edgecnn.runtime.backends.litert import _interpreter_class

    model = models.create("mobilenet_v3_small_minimalistic_cifar", CLASSES, SIZE, width=0.35)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, SIZE, SIZE, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, 8)
    # Eager: one step does not repay tracing the training graph.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, np.asarray(a)) for b, a in zip(before, model.trainable_weights, strict=True))

    path = tmp_path / "model.tflite"
    path.write_bytes(convert(model, "int8", images[:8].astype(np.uint8)))
    interpreter_class, _ = _interpreter_class()
    interpreter = interpreter_class(model_path=str(path))
    interpreter.allocate_tensors()
    (image,), (probabilities,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert image["dtype"] == np.uint8 and tuple(image["shape"]) == (1, SIZE, SIZE, 3)
    interpreter.set_tensor(image["index"], images[:1].astype(np.uint8))
    interpreter.invoke()
    assert interpreter.get_tensor(probabilities["index"]).shape == (1, CLASSES)
    keras.backend.clear_session()


def test_variants_are_not_compound_scaled():
    with pytest.raises(ValueError, match="cannot be compound-scaled"):
        scaling.scale_model("efficientnet_lite0_cifar", 1)


def test_models_command_lists_a_variant_at_32_px(capsys):
    assert main(["models", "--pattern", "mobilenet_v3_small_cifar", "--classes", str(CLASSES), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "mobilenet_v3_small_cifar" and row["image_size"] == SIZE
    assert row["params"] == profile_at_32("mobilenet_v3_small").params
    assert row["macs"] == profile_at_32("mobilenet_v3_small_cifar").macs
