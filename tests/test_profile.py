"""Profiler (params, MACs, int8-friendliness), compound scaling and `edgecnn models`, checked against the
published figures in /work/shared/REFERENCE.md and against hand-computed counts on tiny models."""

from __future__ import annotations

import functools
import json
import math

import pytest

keras = pytest.importorskip("keras")

from edgecnn.cli import main  # noqa: E402
from edgecnn.models import get, names, scaling  # noqa: E402
from edgecnn.models.efficientnet_lite import VARIANTS  # noqa: E402
from edgecnn.models.profile import ModelProfile, profile_model, profile_registered  # noqa: E402

TOLERANCE = 0.02

# name → (MACs, params) at 224 px with a 1000-class head, as published (REFERENCE.md). Params are compared with
# the trainable (learned) parameters: the papers do not count BN moving statistics.
PAPER_FIGURES = {
    "mobilenet_v1": (569e6, 4.24e6),
    "mobilenet_v2": (300e6, 3.47e6),
    "mobilenet_v3_large": (217e6, 5.4e6),
    "mobilenet_v3_small": (56e6, 2.5e6),  # the paper's definition (Howard et al. 2019, table 3)
    "efficientnet_b0": (390e6, 5.3e6),
}
LITE_REPORTED_MACS = 407e6  # EfficientNet-Lite README "MAdds", which include the element-wise work
LITE_PARAMS = 4.7e6


@functools.cache
def zoo_profile(name: str) -> ModelProfile:
    """Registry model at its default resolution with 1000 classes, built once per test session."""
    return profile_registered(name, num_classes=1000)


def profile_of(inputs, outputs) -> ModelProfile:
    return profile_model(keras.Model(inputs, outputs))


def assert_close(ours: float, published: float, what: str) -> None:
    assert abs(ours / published - 1) <= TOLERANCE, f"{what}: ours {ours:,.0f} vs published {published:,.0f}"


# --- published figures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAPER_FIGURES))
def test_macs_and_params_match_the_papers(name):
    macs, params = PAPER_FIGURES[name]
    profile = zoo_profile(name)
    assert profile.input_shape == (224, 224, 3)
    assert_close(profile.macs, macs, f"{name} MACs")
    assert_close(profile.trainable_params, params, f"{name} params")


def test_efficientnet_lite0_matches_the_reported_figure_with_elementwise_work():
    lite0 = zoo_profile("efficientnet_lite0")
    assert_close(lite0.macs + lite0.elementwise_ops, LITE_REPORTED_MACS, "Lite0 MACs + element-wise ops")
    assert_close(lite0.trainable_params, LITE_PARAMS, "Lite0 params")
    # Conv-only, Lite0 is B0 without squeeze-excite: its MACs are B0's minus exactly the SE convs'.
    b0 = zoo_profile("efficientnet_b0")
    se_macs = sum(row.macs for row in b0.layers if "_se_" in row.name)
    assert se_macs > 0
    assert lite0.macs == b0.macs - se_macs


def test_mobilenet_v3_head_includes_the_last_1x1_conv():
    rows = {row.name.rsplit("/", 1)[-1]: row for row in zoo_profile("mobilenet_v3_large").layers}
    head_conv = rows["conv_2"]  # Keras' 960 → 1280 conv on the pooled 1×1 map
    assert head_conv.output_shape == (1, 1, 1280)
    assert head_conv.macs == 960 * 1280


def test_lenet5_matches_the_course_summary():
    profile = profile_registered("lenet5", num_classes=10, image_size=32)
    weighted = [row.params for row in profile.layers if row.params]
    assert weighted == [156, 2_416, 48_120, 10_164, 850]
    assert profile.params == 61_706
    assert profile.depth == 5


def test_vgg16_conv_base_and_total_match_keras():
    profile = zoo_profile("vgg16")
    params = {row.name: row.params for row in profile.layers}
    assert params["backbone/block1_conv1"] == 1_792
    assert params["backbone/block1_conv2"] == 36_928
    assert params["backbone/block3_conv1"] == 295_168
    assert params["backbone/block4_conv1"] == 1_180_160
    assert [params[f"backbone/block5_conv{i}"] for i in (1, 2, 3)] == [2_359_808] * 3
    assert sum(p for name, p in params.items() if name.startswith("backbone/")) == 14_714_688
    assert round(profile.params / 1e6, 1) == 138.4
    assert profile.depth == 16


# --- hand-computed layers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_shape", "make_layer", "params", "macs"),
    [
        # REFERENCE: 4 × (3·3·3 + 1) = 112 params; (out_h·out_w·filters) × (k·k·in_channels) MACs.
        ((32, 32, 3), lambda: keras.layers.Conv2D(4, 3), 112, (30 * 30 * 4) * (3 * 3 * 3)),
        ((8, 8, 16), lambda: keras.layers.Conv2D(32, 3, padding="same", groups=4), 9 * 4 * 32 + 32,
         (8 * 8 * 32) * (3 * 3 * 16 // 4)),
        ((16, 16, 8), lambda: keras.layers.Conv2D(8, 1, strides=2, use_bias=False), 64, 8 * 8 * 8 * 8),
        ((8, 8, 16), lambda: keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), 9 * 32 + 32,
         8 * 8 * 32 * 9),
        ((8, 8, 16), lambda: keras.layers.SeparableConv2D(32, 3, padding="same"), 9 * 16 + 16 * 32 + 32,
         8 * 8 * 16 * 9 + 8 * 8 * 16 * 32),
        ((4, 4, 8), lambda: keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same"), 9 * 8 * 16 + 16,
         4 * 4 * 8 * 9 * 16),
        ((20,), lambda: keras.layers.Dense(10), 210, 200),
        ((5, 20), lambda: keras.layers.Dense(10), 210, 5 * 10 * 20),
        ((8, 8, 16), lambda: keras.layers.MaxPooling2D(2), 0, 0),
        ((8, 8, 16), lambda: keras.layers.GlobalAveragePooling2D(), 0, 0),
        ((8, 8, 16), lambda: keras.layers.BatchNormalization(), 64, 0),
    ],
)
def test_layer_counts(input_shape, make_layer, params, macs):
    inputs = keras.Input(input_shape)
    profile = profile_of(inputs, make_layer()(inputs))
    assert (profile.params, profile.macs) == (params, macs)


@pytest.mark.parametrize(
    ("make_layer", "elementwise_ops"),
    [
        (lambda: keras.layers.MaxPooling2D(2), 4 * 4 * 16 * 4),
        (lambda: keras.layers.AveragePooling2D(2), 4 * 4 * 16 * 4),
        (lambda: keras.layers.GlobalAveragePooling2D(), 8 * 8 * 16),
        (lambda: keras.layers.BatchNormalization(), 2 * 8 * 8 * 16),
        (lambda: keras.layers.ReLU(6.0), 8 * 8 * 16),
        (lambda: keras.layers.Conv2D(4, 1, activation="relu"), 8 * 8 * 4),
        (lambda: keras.layers.Conv2D(4, 1), 0),
    ],
)
def test_elementwise_counts(make_layer, elementwise_ops):
    inputs = keras.Input((8, 8, 16))
    assert profile_of(inputs, make_layer()(inputs)).elementwise_ops == elementwise_ops


def test_depthwise_separable_cost_ratio_is_one_over_n_plus_one_over_k_squared():
    inputs = keras.Input((56, 56, 64))
    standard = profile_of(inputs, keras.layers.Conv2D(128, 3, padding="same")(inputs)).macs
    separable = profile_of(inputs, keras.layers.SeparableConv2D(128, 3, padding="same")(inputs)).macs
    ratio = separable / standard
    assert math.isclose(ratio, 1 / 128 + 1 / 3**2)
    assert round(ratio, 2) == 0.12


def test_nested_models_shared_layers_and_totals():
    inner_in = keras.Input((8, 8, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same", name="conv")(inner_in), name="body")
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, name="fc")], name="head")
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((8, 8, 3))
    pooled = head(inner(inputs))
    outputs = shared(shared(keras.layers.Dense(4, name="widen")(pooled)))
    profile = profile_of(inputs, outputs)

    by_name = [(row.name, row.params, row.macs) for row in profile.layers]
    assert ("body/conv", 112, 8 * 8 * 4 * 27) in by_name
    assert ("head/fc", 10, 8) in by_name
    assert [(p, m) for n, p, m in by_name if n == "shared"] == [(20, 16), (0, 16)]  # weights once, MACs per call
    assert profile.params == sum(row.params for row in profile.layers) == keras.Model(inputs, outputs).count_params()
    assert profile.macs == sum(row.macs for row in profile.layers)
    assert profile.float32_mb == profile.params * 4 / 1e6
    assert profile.int8_mb == profile.params / 1e6


def test_undefined_input_size_is_rejected():
    inputs = keras.Input((None, None, 3))
    with pytest.raises(ValueError, match="must be fully defined"):
        profile_of(inputs, keras.layers.Conv2D(4, 3)(inputs))


# --- int8 friendliness -----------------------------------------------------------------------------------------


def test_int8_hostile_constructs_are_found():
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.Conv2D(16, 1, activation="swish", name="swish_conv")(inputs)
    x = keras.layers.Activation("hard_swish", name="hswish")(x)
    x = keras.layers.Activation("gelu", name="gelu")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    gate = keras.layers.Conv2D(16, 1, activation="hard_sigmoid", name="gate")(gate)
    outputs = keras.layers.Multiply(name="se_mul")([x, gate])
    findings = {f.kind: f.layers for f in profile_of(inputs, outputs).int8_hostile}
    assert findings == {
        "swish/silu": ("swish_conv",),
        "hard-swish": ("hswish",),
        "gelu": ("gelu",),
        "hard-sigmoid": ("gate",),
        "squeeze-excite gating": ("se_mul",),
    }


def test_relu6_and_same_shape_products_are_int8_friendly():
    inputs = keras.Input((8, 8, 16))
    x = keras.layers.ReLU(6.0)(keras.layers.Conv2D(16, 1)(inputs))
    outputs = keras.layers.Multiply()([x, inputs])  # not a per-channel gate
    profile = profile_of(inputs, outputs)
    assert profile.int8_friendly and profile.int8_reason() == ""


def test_zoo_int8_findings():
    assert zoo_profile("mobilenet_v2").int8_friendly
    assert zoo_profile("efficientnet_lite0").int8_friendly
    assert {f.kind for f in zoo_profile("mobilenet_v3_small").int8_hostile} == {"hard-swish", "squeeze-excite gating"}
    assert {f.kind for f in zoo_profile("efficientnet_b0").int8_hostile} == {"swish/silu", "squeeze-excite gating"}


@pytest.mark.parametrize("name", names())
def test_registry_flags_agree_with_the_graph(name):
    profile = zoo_profile(name)
    assert profile.int8_friendly == get(name).quantization_friendly, profile.int8_reason()
    assert profile.uncounted == ()
    assert profile.macs > 0 and profile.depth > 0


# --- compound scaling ------------------------------------------------------------------------------------------


def test_compound_scaling_multipliers():
    one = scaling.compound_scaling(1)
    assert (one.depth, one.width, one.resolution) == (1.2, 1.1, 1.15)
    assert math.isclose(one.macs_factor, 1.2 * 1.1**2 * 1.15**2) and abs(one.macs_factor - 2) < 0.1
    two = scaling.compound_scaling(2)
    assert math.isclose(two.depth, 1.44) and math.isclose(two.width, 1.21)
    assert scaling.compound_scaling(0).macs_factor == 1
    assert [scaling.scaled_image_size(224, phi) for phi in (0, 1, 2)] == [224, 258, 296]


def test_lite0_scaled_by_one_has_lite2_coefficients():
    scaled = scaling.scale_model("efficientnet_lite0", 1)
    lite2 = VARIANTS["efficientnet_lite2"]
    assert math.isclose(scaled.width, lite2.width) and math.isclose(scaled.depth, lite2.depth)
    assert scaled.image_size == 258
    assert scaled.name == "efficientnet_lite0_phi1"


def test_only_scalable_families_scale():
    with pytest.raises(ValueError, match="efficientnet_lite"):
        scaling.scale_model("mobilenet_v2", 1)


def test_scale_command(capsys):
    assert main(["models", "scale", "efficientnet_lite0", "--phi", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["image_size"] == 258
    assert report["multipliers"] == {"depth": 1.2, "width": 1.1, "resolution": 1.15}
    lite2 = zoo_profile("efficientnet_lite2")
    # Lite2's width and depth coefficients, so the same weights; at 258 px instead of 260 only the 129/130 px
    # first stage differs (stride-2 "same" convs round both up to 65 px next), so MACs are within 1 %.
    assert report["scaled_profile"]["params"] == lite2.params
    assert report["scaled_profile"]["macs"] == pytest.approx(lite2.macs, rel=0.01)
    assert report["base_profile"]["macs"] == zoo_profile("efficientnet_lite0").macs


# --- CLI -------------------------------------------------------------------------------------------------------


def test_show_prints_layers_and_totals(capsys):
    assert main(["models", "show", "tiny_cnn", "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "backbone/conv1" in out and "Conv2D" in out and "16×16×32" in out
    assert "Total params: 38,232" in out
    assert "Trainable params: 38,136" in out
    # conv0 32·32·16·27 + conv1 16·16·32·144 + dense 32·1000
    assert "MACs: 1,654,016" in out
    assert "int8: ✓" in out


def test_show_json_before_or_after_the_action(capsys):
    assert main(["models", "--json", "show", "tiny_cnn", "--image-size", "16", "--classes", "3"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["models", "show", "tiny_cnn", "--image-size", "16", "--classes", "3", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert before == after
    assert before["input_shape"] == [16, 16, 3] and before["layers"][-1]["output_shape"] == [3]


def test_listing(capsys):
    assert main(["models", "--pattern", "lenet*", "--pattern", "tiny_cnn", "--classes", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "family", "res", "params"]
    assert [line.split()[0] for line in lines[2:4]] == ["lenet5", "tiny_cnn"]
    assert lines[2].split()[-1] == "✓"

    assert main(["models", "--pattern", "lenet5", "--classes", "10", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["params"], row["depth"], row["int8_friendly"]) == ("lenet5", 61_706, 5, True)


def test_user_errors_are_reported(capsys):
    assert main(["models", "show", "mobilenet_v9"]) == 2
    assert "unknown model 'mobilenet_v9'" in capsys.readouterr().err
    assert main(["models", "--pattern", "nothing*"]) == 2
    assert "no model matches" in capsys.readouterr().err
