"""``json.dumps(obj)`` with its defaults, at a third of the cost, for ``json_response``.

``json.dumps`` builds a new C encoder on every call (through two Python-level methods and a
closure); the encoder itself is a small part of the time. Here each thread keeps one, built with
exactly the arguments ``json.dumps`` passes, so the output and the errors are the same. The
circular-reference marks it shares are empty between calls; a call that finds them in use (an
encoding re-entered on this thread) builds a private encoder, and a failed call clears them.
If this Python's json module has no C encoder, or the check at import disagrees, ``dumps`` is
``json.dumps`` itself. Small dicts of plain values skip the encoder altogether (``_flat``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any, Final

__all__ = ("dumps",)

_make = getattr(_encoder, "c_make_encoder", None)
_default = json.JSONEncoder().default  # raises json.dumps's TypeError for what it cannot encode
_local = threading.local()

_Encoder = tuple[dict[int, Any], Callable[[Any, int], Any]]

_FLAT_MAX: Final = 3  # items: beyond, the C encoder is as fast (pure Python; compiled: ~6)


def _new() -> _Encoder:
    markers: dict[int, Any] = {}
    assert _make is not None
    # json.JSONEncoder.iterencode's arguments for json.dumps's defaults: check_circular,
    # ensure_ascii, no indent, separators (", ", ": "), no sort_keys, no skipkeys, allow_nan.
    encode = _make(
        markers, _default, _encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return markers, encode


_escape: Callable[[str], str] = _encoder.encode_basestring_ascii


def _flat(obj: dict[Any, Any]) -> str | None:
    """json.dumps of a dict whose keys are str and values str, int, bool or None (a JSON API's
    usual answer), by hand; None for any other dict. The C encoder's fixed cost per call (a list
    of the items, the circular-reference marks, its accumulator) is most of the time on those."""
    parts = []
    for key, value in obj.items():
        if type(key) is not str:
            return None
        kind = type(value)
        if kind is str:
            text = _escape(value)
        elif kind is int:
            text = int.__repr__(value)
        elif value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        else:
            return None
        parts.append(_escape(key) + ": " + text)
    return "{" + ", ".join(parts) + "}"


def _dumps(obj: Any) -> str:
    if type(obj) is dict and len(obj) <= _FLAT_MAX:
        text = _flat(obj)
        if text is not None:
            return text
    try:
        markers, encode = _local.encoder
    except AttributeError:
        markers, encode = _local.encoder = _new()
    if markers:  # re-entered on this thread: a private encoder
        markers, encode = _new()
    try:
        return "".join(encode(obj, 0))
    except BaseException:
        markers.clear()
        raise


def _agrees() -> bool:
    probe: dict[str, Any] = {"a": [1, 2.5, -0.0, 1e300, None, True, False]}
    probe['é\n"'] = {"x": "\u2603" + chr(0xD83D)}  # (a lone surrogate: chr() for mypyc)
    probe["n"] = [float("nan"), float("inf"), -float("inf"), 10**30]
    samples: tuple[Any, ...] = (probe, "s", 1, 1.5, None, [], {})
    try:
        return all(_dumps(o) == json.dumps(o) for o in samples)
    except Exception:
        return False


dumps: Callable[[Any], str] = _dumps if _make is not None and _agrees() else json.dumps
