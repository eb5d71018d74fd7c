"""TFLite export: SavedModel → tf.lite.TFLiteConverter, one configuration per precision, built-in ops only."""

from __future__ import annotations

import tempfile
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgecnn.errors import ExportError
from edgecnn.export.backend import require_tensorflow_backend
from edgecnn.export.calibration import require_calibration
from edgecnn.export.lowering import lowered
from edgecnn.export.savedmodel import SIGNATURE, write_saved_model
from edgecnn.formats import FORMATS, TFLiteOptions, check_target

MODEL_FILE = FORMATS["tflite"].model_file


def _float32(converter, calibration_images: np.ndarray | None) -> None:
    """No optimisation: the reference export."""


def _float16(converter, calibration_images: np.ndarray | None) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, calibration_images: np.ndarray | None) -> None:
    """Dynamic-range: int8 weights, float activations; needs no calibration data."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, calibration_images: np.ndarray | None) -> None:
    """Full integer: int8 weights and activations, uint8 pixels in and uint8 probabilities out."""
    import tensorflow as tf

    require_calibration(calibration_images)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration_images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


def _int16x8(converter, calibration_images: np.ndarray | None) -> None:
    """16-bit activations, int8 weights: keeps wide activation ranges that int8 crushes; float in and out."""
    import tensorflow as tf

    require_calibration(calibration_images)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration_images)
    # The only ops set: an op without a 16x8 kernel fails the conversion instead of silently staying float.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


CONVERSIONS: dict[str, Callable[[object, np.ndarray | None], None]] = {
    "float32": _float32,
    "float16": _float16,
    "dynamic": _dynamic,
    "int8": _int8,
    "int16x8": _int16x8,
}


def representative(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative_dataset over uint8 images: one float32 (1, H, W, 3) batch each."""

    def generate() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate


INT8_IO_TYPES = typing.get_args(TFLiteOptions.model_fields["int8_io"].annotation)


@contextmanager
def converter(
    model, precision: str, calibration_images: np.ndarray | None = None, int8_io: str = "uint8"
) -> Iterator[object]:
    """A TFLiteConverter set up for `precision`, usable inside the block (it reads a temporary SavedModel).

    `int8_io` is the input/output type of a full-integer (int8) model. uint8 takes camera pixels unchanged (scale 1,
    zero point 0); int8 (zero point −128) suits toolchains that only accept signed tensors. The graph between is the
    same; uint8 adds a QUANTIZE op at each end, which XNNPACK leaves to LiteRT (a copy with an offset).
    """
    check_target("tflite", precision)
    if int8_io not in INT8_IO_TYPES:
        raise ExportError(f"TFLite int8_io must be one of {', '.join(INT8_IO_TYPES)}, got {int8_io!r}")
    require_tensorflow_backend()
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="edgecnn-savedmodel-") as tmp:
        # The SavedModel is traced with activations rewritten for the precision's kernels (see lowering.py).
        with lowered(model, precision) as rewrites:
            saved = write_saved_model(model, Path(tmp) / "saved_model")
        if rewrites:
            print(f"lowered for LiteRT {precision}: " + ", ".join(f"{n} × {k}" for k, n in rewrites.items()))
        configured = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SIGNATURE])
        # Built-in ops only: Flex (select TF) ops would need the full TF runtime on the device.
        configured.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        CONVERSIONS[precision](configured, calibration_images)
        if precision == "int8":
            configured.inference_input_type = configured.inference_output_type = getattr(tf, int8_io)
        yield configured


def convert(model, precision: str, calibration_images: np.ndarray | None = None, int8_io: str = "uint8") -> bytes:
    """Convert a Keras classifier to a TFLite flatbuffer at `precision` (float32, float16, dynamic, int8, int16x8)."""
    with converter(model, precision, calibration_images, int8_io) as configured:
        return configured.convert()


def export(
    model, precision: str, calibration_images: np.ndarray | None, bundle_dir: Path, int8_io: str = "uint8"
) -> Path:
    """Write `bundle_dir/model.tflite` and return its path."""
    path = Path(bundle_dir) / MODEL_FILE
    path.write_bytes(convert(model, precision, calibration_images, int8_io))
    return path


def qat_to_tflite(qat_model, calibration_images: np.ndarray) -> bytes:
    """Full-integer TFLite (uint8 in/out, built-in ops) from a fine-tuned QAT model, through the PTQ converter."""
    from edgecnn.quant import strip_qat

    return convert(strip_qat(qat_model), "int8", calibration_images)


def op_names(model_path: str | Path) -> list[str]:
    """Operator names in a TFLite model, in graph order (read through the LiteRT interpreter, no TF)."""
    from edgecnn.runtime.backends.litert import _interpreter_class

    interpreter_class, _ = _interpreter_class()
    interpreter = interpreter_class(model_path=str(model_path))
    return [op["op_name"] for op in interpreter._get_ops_details()]


def describe(model_path: str | Path) -> dict:
    """Op facts recorded in bundle.json: the op list, and which ops XNNPACK (LiteRT's CPU engine) does not delegate.

    A custom (non-built-in) op is an error, since LiteRT cannot run it. An undelegated op is not an error, but each
    one splits the delegated graph and runs on a slower reference kernel, so it is recorded and printed.
    """
    from edgecnn.runtime.backends.litert import open_model

    ops = op_names(model_path)
    custom = sorted({op for op in ops if op.startswith("Flex") or op == "CUSTOM"})
    if custom:
        raise ExportError(f"{model_path}: contains non-built-in ops {custom}; edge runtimes cannot run them")
    return {"ops": sorted(set(ops)), "op_count": len(ops), "xnnpack": open_model(Path(model_path)).delegation()}
