"""The call graph of a Keras 3 functional model: the one module in edgecnn that reads Keras private attributes.

Keras 3 has no public API for "who feeds this layer" or "every call in topological order". It keeps both in
private attributes, read here and nowhere else:

* `Operation._inbound_nodes` — the nodes (calls) of a layer or of a `keras.ops` operation, each with its
  `input_tensors` and `output_tensors`;
* `KerasTensor._keras_history` — (operation, node index, tensor index) that produced a symbolic tensor;
* `Functional._nodes_by_depth` — depth → nodes, depth 0 at the outputs;
* `Sequential._functional` — the functional graph a built Sequential keeps;
* `keras.src.ops` — the operation classes a graph records for `keras.ops` calls, which have no public alias.

`KERAS_TESTED` is the Keras range these are known to hold for (the pyproject pin); tests/test_quant_graph.py
checks them on the installed Keras and names its version when one has changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
from keras.src.ops import nn as _nn_ops
from keras.src.ops import numpy as _numpy_ops

KERAS_TESTED = ">=3.8,<4"
PRIVATE_ATTRIBUTES = {  # owner → the private attributes this module reads from it
    "Layer": ("_inbound_nodes",),  # and every keras.ops Operation: Layer inherits it from Operation
    "KerasTensor": ("_keras_history",),
    "Functional": ("_nodes_by_depth",),
    "Sequential": ("_functional",),
}


def op_class(name: str) -> type:
    """The operation class a functional graph records for a `keras.ops` call: "Relu6" for `keras.ops.relu6(x)`,
    "Add" for `x + 3`."""
    for module in (_nn_ops, _numpy_ops):
        if isinstance(found := getattr(module, name, None), type):
            return found
    raise ValueError(f"Keras {keras.__version__} has no operation class {name!r} in keras.src.ops.nn or .numpy")


def leaf_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every non-model layer of `model`, once each, descending into nested models (classifiers nest the backbone)."""
    seen: set[int] = set()

    def walk(parent: keras.Model) -> Iterator[keras.layers.Layer]:
        for layer in parent.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):
                yield from walk(layer)
            else:
                yield layer

    yield from walk(model)


def producer(layer: Any) -> Any:
    """The operation whose output is the single input of `layer`'s first call."""
    (operation,) = producers(layer)
    return operation


def producers(operation: Any) -> list[Any]:
    """The operations whose outputs are the tensor inputs of `operation`'s first call, in argument order (the
    constant of `x + 3.0` is no tensor: that Add has one producer)."""
    tensors = keras.tree.flatten(operation._inbound_nodes[0].input_tensors)
    return [tensor._keras_history.operation for tensor in tensors]


def operations(model: keras.Model) -> list[Any]:
    """Every operation of the flat functional `model` in topological order: its layers, and the operations its graph
    records for `keras.ops` calls on symbolic tensors (`x + 3.0` is an Add), which `model.layers` leaves out."""
    return [operation for _, operation, _ in call_graph(model)]


def is_layer(operation: Any) -> bool:
    """True for a layer, False for an operation recorded for a `keras.ops` call."""
    return isinstance(operation, keras.layers.Layer)


def get_operation(model: keras.Model, name: str) -> Any:
    """The operation (layer or `keras.ops` call) of the flat functional `model` named `name`."""
    for operation in operations(model):
        if operation.name == name:
            return operation
    raise ValueError(f"{model.name!r} has no operation {name!r}")


def consumers(model: keras.Model) -> dict[str, list[Any]]:
    """Operation name → the operations of the flat functional `model` that take its output as an input (layers and
    `keras.ops` calls alike, see `operations`)."""
    found: dict[str, list[Any]] = {}
    for _, operation, node in call_graph(model):
        found.setdefault(operation.name, [])
        for tensor in keras.tree.flatten(node.input_tensors):
            found[tensor._keras_history.operation.name].append(operation)
    return found


def flatten(model: keras.Model) -> keras.Model:
    """A copy of a functional model with nested functional models inlined (same layer names and weights)."""

    def call_function(layer: keras.layers.Layer, *args, **kwargs):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, input_tensors=args[0], call_function=call_function).outputs[0]
        return layer(*args, **kwargs)

    flat = keras.models.clone_model(model, call_function=call_function)
    originals = {layer.name: layer for layer in leaf_layers(model)}
    for layer in flat.layers:
        if layer.weights:
            layer.set_weights(originals[layer.name].get_weights())
    return flat


def call_graph(model: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, operation, node) for every call in topological order, descending into nested models.

    `path` is the operation's name behind its nested models' names, e.g. "backbone/block_1_expand"; a nested
    model's own input layer is skipped, since it repeats its caller's tensor.
    """
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes_by_depth"):
        raise ValueError(f"{model.name!r} has no call graph: build it on a keras.Input first")
    for depth in sorted(graph._nodes_by_depth, reverse=True):  # the deepest nodes are nearest the inputs
        for node in graph._nodes_by_depth[depth]:
            operation = node.operation
            if isinstance(operation, keras.layers.InputLayer) and prefix:
                continue
            if isinstance(operation, keras.Model):
                yield from call_graph(operation, f"{prefix}{operation.name}/")
            else:
                yield f"{prefix}{operation.name}", operation, node
