"""Hints for the optional mypyc build (setup.py); without mypy_extensions, no-ops.

``allow_interpreted_subclasses`` marks a compiled class that Python code may subclass (aiohttp's
API lets users subclass requests, resources and routers).
"""

from __future__ import annotations

from typing import Any

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # mypy_extensions is only there when mypy is

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:  # type: ignore[misc]
        return lambda cls: cls


__all__ = ("mypyc_attr",)
