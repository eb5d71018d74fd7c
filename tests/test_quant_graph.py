"""edgecnn.quant.graph: the Keras private attributes it reads still exist and behave on the installed Keras."""

from __future__ import annotations

import numpy as np
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

keras = pytest.importorskip("keras")

from edgecnn.quant import graph  # noqa: E402

KERAS_VERSION = keras.__version__


def _broken(what: str) -> str:
    return (
        f"edgecnn.quant.graph relies on {what}, which does not hold on the installed Keras {KERAS_VERSION} "
        f"(tested: keras{graph.KERAS_TESTED}); update edgecnn/quant/graph.py for this Keras"
    )


def _nested_model() -> keras.Model:
    """image → [backbone: conv → bn → relu6 ↘ add ← conv] → pool → dense: nesting, a fan-out and a merge."""
    pixels = keras.Input((8, 8, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(pixels)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(6.0, name="relu6")(x)
    y = keras.layers.Conv2D(4, 1, name="side_conv")(x)
    x = keras.layers.Add(name="add")([x, y])
    backbone = keras.Model(pixels, x, name="backbone")
    image = keras.Input((8, 8, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(image))
    return keras.Model(image, keras.layers.Dense(2, name="predictions")(x), name="classifier")


def test_installed_keras_is_the_tested_range():
    assert Version(KERAS_VERSION) in SpecifierSet(graph.KERAS_TESTED), _broken(f"keras{graph.KERAS_TESTED}")


def test_private_attributes_exist_where_graph_reads_them():
    model = _nested_model()
    backbone = model.get_layer("backbone")
    conv = backbone.get_layer("conv")
    owners = {
        "Layer": conv, "KerasTensor": conv.output, "Functional": backbone,
        "Sequential": keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]),
    }
    assert set(owners) == set(graph.PRIVATE_ATTRIBUTES)
    for owner, attributes in graph.PRIVATE_ATTRIBUTES.items():
        for attribute in attributes:
            assert hasattr(owners[owner], attribute), _broken(f"{owner}.{attribute}")
    node = conv._inbound_nodes[0]
    assert hasattr(node, "input_tensors") and hasattr(node, "output_tensors"), _broken("Node.input/output_tensors")
    assert conv.output._keras_history.operation is conv, _broken("KerasTensor._keras_history.operation")
    depths = backbone._nodes_by_depth
    assert isinstance(depths, dict) and all(isinstance(d, int) for d in depths), _broken("Functional._nodes_by_depth")
    assert isinstance(owners["Sequential"]._functional, keras.Model), _broken("Sequential._functional")


def test_op_classes_are_what_a_graph_records_for_keras_ops_calls():
    x = keras.Input((4, 4, 3))
    recorded = {
        "Relu6": keras.ops.relu6(x), "HardSilu": keras.ops.hard_silu(x), "Sigmoid": keras.ops.sigmoid(x),
        "Add": x + 3.0, "Multiply": x * x,
    }
    for name, tensor in recorded.items():
        assert type(tensor._keras_history.operation) is graph.op_class(name), _broken(f"keras.src.ops {name}")
    with pytest.raises(ValueError, match="no operation class 'Nothing'"):
        graph.op_class("Nothing")


def test_leaf_layers_descend_into_nested_models_once_each():
    model = _nested_model()
    names = [layer.name for layer in graph.leaf_layers(model)]
    assert names == ["image", "pixels", "conv", "bn", "relu6", "side_conv", "add", "pool", "predictions"]


def test_producer_and_consumers_follow_the_edges():
    backbone = _nested_model().get_layer("backbone")
    assert graph.producer(backbone.get_layer("bn")).name == "conv"
    assert graph.producer(backbone.get_layer("conv")).name == "pixels"
    after = {name: [layer.name for layer in layers] for name, layers in graph.consumers(backbone).items()}
    assert after == {
        "pixels": ["conv"], "conv": ["bn"], "bn": ["relu6"], "relu6": ["side_conv", "add"], "side_conv": ["add"],
        "add": [],
    }


def test_operations_and_consumers_include_keras_ops_calls():
    """`x + 3.0` and `x * (1 / 6)` on symbolic tensors are graph operations that `model.layers` leaves out."""
    image = keras.Input((4, 4, 3), name="image")
    features = keras.layers.Conv2D(3, 1, name="conv")(image)
    gate = keras.layers.ReLU(6.0, name="relu6")(features + 3.0) * (1.0 / 6.0)
    model = keras.Model(image, keras.layers.Multiply(name="mul")([features, gate]))
    add, multiply = graph.producers(model.get_layer("relu6"))[0], graph.producers(model.get_layer("mul"))[1]
    assert (type(add), type(multiply)) == (graph.op_class("Add"), graph.op_class("Multiply")), _broken("ops nodes")
    assert not graph.is_layer(add) and graph.is_layer(model.get_layer("conv"))
    assert [operation.name for operation in graph.operations(model)] == [
        "image", "conv", add.name, "relu6", multiply.name, "mul"]
    after = {name: [operation.name for operation in found] for name, found in graph.consumers(model).items()}
    assert after == {
        "image": ["conv"], "conv": [add.name, "mul"], add.name: ["relu6"], "relu6": [multiply.name],
        multiply.name: ["mul"], "mul": [],
    }
    assert graph.producers(add) == [model.get_layer("conv")]  # the constant 3.0 is no tensor of the graph
    assert graph.get_operation(model, multiply.name) is multiply
    with pytest.raises(ValueError, match="has no operation 'nothing'"):
        graph.get_operation(model, "nothing")


def test_flatten_inlines_nested_models_with_the_same_names_and_weights():
    keras.utils.set_random_seed(0)
    model = _nested_model()
    flat = graph.flatten(model)
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    assert [layer.name for layer in flat.layers] == [
        "image", "conv", "bn", "relu6", "side_conv", "add", "pool", "predictions"]
    pixels = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(flat(pixels)), np.asarray(model(pixels)), atol=1e-6)


def test_call_graph_lists_every_call_in_topological_order_with_paths():
    calls = [(path, type(operation).__name__, len(node.input_tensors))
             for path, operation, node in graph.call_graph(_nested_model())]
    assert calls == [
        ("image", "InputLayer", 0), ("backbone/conv", "Conv2D", 1), ("backbone/bn", "BatchNormalization", 1),
        ("backbone/relu6", "ReLU", 1), ("backbone/side_conv", "Conv2D", 1), ("backbone/add", "Add", 2),
        ("pool", "GlobalAveragePooling2D", 1), ("predictions", "Dense", 1),
    ]
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="dense")])
    assert [path for path, _, _ in graph.call_graph(sequential)][-1] == "dense"
    with pytest.raises(ValueError, match="build it on a keras.Input first"):
        list(graph.call_graph(keras.layers.Dense(1)))
