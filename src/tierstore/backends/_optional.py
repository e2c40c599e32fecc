"""Lazy imports of the optional SDKs: :func:`tierstore.optional.require`, under the name the adapters import."""

from __future__ import annotations

from tierstore.optional import require

__all__ = ["require"]
