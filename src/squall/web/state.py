"""Per-object state: ``request[key]`` and ``response[key]``, as aiohttp allows."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

from .keys import BaseKey, NotAppKeyWarning


class StateMapping(MutableMapping[Any, Any]):
    """A mapping kept in ``self._state``, created on first write (most objects never get one).

    A plain string key warns once per key (NotAppKeyWarning), as aiohttp 3.14 does; subclasses
    name their typed key class and the documentation anchor.
    """

    __slots__ = ()
    _state: dict[Any, Any] | None
    _key_class: ClassVar[type[BaseKey[Any]]] = BaseKey
    _key_anchor: ClassVar[str] = ""
    _seen_str_keys: ClassVar[set[str]]

    def __getitem__(self, key: Any) -> Any:
        if self._state is None:
            raise KeyError(key)
        return self._state[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(key, self._key_class) and key not in self._seen_str_keys:
            self._seen_str_keys.add(key)
            warnings.warn(
                f"It is recommended to use web.{self._key_class.__name__} instances for keys.\n"
                "https://docs.aiohttp.org/en/stable/web_advanced.html#" + self._key_anchor,
                category=NotAppKeyWarning,
                stacklevel=2,
            )
        if self._state is None:
            self._state = {}
        self._state[key] = value

    def __delitem__(self, key: Any) -> None:
        if self._state is None:
            raise KeyError(key)
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._state or ())

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)
