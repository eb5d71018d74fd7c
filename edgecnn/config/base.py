"""The base of every recipe section: unknown keys are errors (named, with a close match, by the loader)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
