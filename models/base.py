"""`Strict`: the base of every command, event, state and request model of the contexts.

Frozen (a fact or a request is never edited) and closed (an unknown field is an
error, not silently dropped); declared once so every context means the same by it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
