"""Per-object state: ``request[key]`` and ``response[key]``, as aiohttp allows."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any


class StateMapping(MutableMapping[str, Any]):
    """A mapping kept in ``self._state``, created on first write (most objects never get one)."""

    __slots__ = ()
    _state: dict[str, Any] | None

    def __getitem__(self, key: str) -> Any:
        if self._state is None:
            raise KeyError(key)
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if self._state is None:
            self._state = {}
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        if self._state is None:
            raise KeyError(key)
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._state or ())

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)
