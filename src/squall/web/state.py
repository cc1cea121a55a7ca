"""Per-object state: ``request[key]`` and ``response[key]``, as aiohttp allows."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from types import GenericAlias
from typing import TYPE_CHECKING, Any, ClassVar

from .keys import BaseKey, NotAppKeyWarning

if TYPE_CHECKING:
    _Base = MutableMapping[Any, Any]
else:
    # Not derived from MutableMapping but registered as one (below): a class derived from it
    # has ABCMeta as its metaclass, and then every isinstance() against a request or response
    # class that is not the object's own (isinstance(resp, web.StreamResponse), as middlewares
    # ask) is a Python call into ABCMeta.__instancecheck__, where for a plain class it is a C
    # walk of the MRO.
    _Base = object


class StateMapping(_Base):
    """A mapping kept in ``self._state``, created on first write (most objects never get one).

    A plain string key warns once per key (NotAppKeyWarning), as aiohttp 3.14 does; subclasses
    name their typed key class and the documentation anchor. A ``MutableMapping`` (registered),
    with its methods.
    """

    __slots__ = ()
    if not TYPE_CHECKING:  # (to type checkers _Base is MutableMapping, which has it)
        # Subscriptable as MutableMapping's subclasses are (``web.WebSocketResponse[bool]``,
        # as aiohttp's generic WebSocketResponse is written in annotations and tests).
        __class_getitem__ = classmethod(GenericAlias)
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

    # Mapping's get() and ``in`` ask self[key] and catch the KeyError of a missing key: an
    # exception raised and caught per call (aiohttp-session asks for its session on every
    # request that never loaded one).
    def get(self, key: Any, default: Any = None) -> Any:
        state = self._state
        return default if state is None else state.get(key, default)

    def __contains__(self, key: object) -> bool:
        state = self._state
        return state is not None and key in state

    def __delitem__(self, key: Any) -> None:
        if self._state is None:
            raise KeyError(key)
        del self._state[key]

    def __len__(self) -> int:
        return len(self._state) if self._state else 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._state or ())

    if not TYPE_CHECKING:  # MutableMapping's own methods, as a subclass would inherit them
        keys = Mapping.keys
        items = Mapping.items
        values = Mapping.values
        __reversed__ = None
        pop = MutableMapping.pop
        popitem = MutableMapping.popitem
        clear = MutableMapping.clear
        update = MutableMapping.update
        setdefault = MutableMapping.setdefault

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


MutableMapping.register(StateMapping)
