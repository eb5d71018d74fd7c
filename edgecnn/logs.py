"""Quiet by default: native libraries' log lines (TensorFlow's C++ logs, LiteRT's delegate INFO lines) are hidden
unless the user asks for them with `edgecnn --verbose` (or EDGECNN_VERBOSE=1). A leaf module.

TensorFlow reads TF_CPP_MIN_LOG_LEVEL when it is imported, so `quiet_native_logs()` must run before that; LiteRT has
no switch for its minimal logger, so its INFO lines are kept out of the terminal by pointing file descriptor 2 at
/dev/null while an interpreter is created (`native_stderr_silenced`). Errors still reach the user as exceptions.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "EDGECNN_VERBOSE"
# TensorFlow: 3 hides INFO, WARNING and ERROR lines such as "failed call to cuInit" on a machine without a GPU.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "3"}
QUIET_LOGGERS = ("tensorflow", "absl", "tf2onnx", "nncf", "h5py", "jax._src.xla_bridge")


def verbose() -> bool:
    """Whether the user asked for the libraries' own log output."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false")


def set_verbose(on: bool) -> None:
    """Turn verbose logging on or off for this process and the processes it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def quiet_native_logs() -> None:
    """Unless verbose, silence TensorFlow's C++ logs (before it is imported) and the libraries' Python warnings."""
    if verbose():
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)  # a value the user set themselves wins
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Imports TensorFlow with native stderr silenced, once: it logs before absl's logging is initialised
    ("All log messages before absl::InitializeLog()", "Could not find cuda drivers"), which TF_CPP_MIN_LOG_LEVEL
    cannot reach. Python exceptions from the import still propagate."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilencedLoader(spec.loader)
        return spec


class _SilencedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with native_stderr_silenced():
            self._loader.exec_module(module)


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Unless verbose, send what native code writes to stderr inside the block to /dev/null."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
