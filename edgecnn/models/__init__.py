"""Model zoo: `create(name, num_classes, image_size, ...)`, `names()`, `get(name)`.

Importing this package registers every family but imports no Keras; builders import it when called.
"""

from edgecnn.models import (  # noqa: F401  (registration)
    classic,
    efficientnet,
    efficientnet_lite,
    mobilenet,
    small_input,
    tiny,
)
from edgecnn.models.registry import ModelEntry, create, get, names, register_model

__all__ = ["ModelEntry", "create", "get", "names", "register_model"]
