"""Listening sockets: bound here, inherited as a descriptor, or handed over by systemd.

Every mode of ``squall`` serves on sockets made by :func:`listen_sockets` before the
application is imported: the single process and the supervisor bind them (so connections queue
from the start instead of being refused), workers inherit them.
"""

from __future__ import annotations

import logging
import os
import socket
import stat

from .config import EXIT_USAGE, Config
from .loading import ServerError

__all__ = (
    "ListenError",
    "address_text",
    "bind_tcp",
    "bind_unix",
    "check_reuse_port",
    "inherited_socket",
    "listen_sockets",
    "systemd_sockets",
    "where",
)

SD_LISTEN_FDS_START = 3
"""systemd passes the sockets of socket activation from this descriptor on."""

log = logging.getLogger("squall.server")


class ListenError(ServerError):
    """No socket could be made to listen on; ``str()`` is the one line."""


def where(config: Config) -> str:
    """What ``config`` asks to listen on, for messages."""
    if config.uds is not None:
        return config.uds
    if config.fd is not None:
        return f"fd {config.fd}"
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{host}:{config.port}"


def bind_tcp(
    host: str, port: int, *, backlog: int | None, reuse_port: bool = False
) -> list[socket.socket]:
    """Bind a TCP socket on every address ``host`` resolves to; listen unless ``backlog`` is None.

    With port 0 every address gets the port the first one was given.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: set[tuple[int, object]] = set()
    sockets: list[socket.socket] = []
    try:
        for family, type_, proto, _, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, type_, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                addr = (addr[0], sockets[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            if backlog is not None:
                sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_unix(path: str, backlog: int) -> socket.socket:
    """Bind and listen on a Unix domain socket, replacing a stale socket file at ``path``."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """The listening stream socket open on descriptor ``fd``; raises :class:`ListenError`."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenError(f"fd {fd}: not a usable socket ({exc})") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ListenError(f"fd {fd}: not a stream socket")
    return sock


def systemd_sockets() -> list[socket.socket]:
    """The sockets of systemd socket activation (``LISTEN_FDS``), if they are meant for us.

    They are used only when ``LISTEN_PID`` is this process; the variables are removed either
    way, so that no child takes them for its own (as ``sd_listen_fds(1)`` does).
    """
    pid = os.environ.pop("LISTEN_PID", None)
    count = os.environ.pop("LISTEN_FDS", None)
    os.environ.pop("LISTEN_FDNAMES", None)
    if pid is None or count is None:
        return []
    try:
        if int(pid) != os.getpid():
            return []
        n = int(count)
    except ValueError:
        raise ListenError(f"invalid LISTEN_PID/LISTEN_FDS: {pid!r}/{count!r}") from None
    sockets: list[socket.socket] = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n):
        os.set_inheritable(fd, False)
        sockets.append(inherited_socket(fd))
    return sockets


def listen_sockets(config: Config, *, backlog: int | None = None) -> list[socket.socket]:
    """The listening sockets for ``config``: systemd's, ``fd``, ``uds``, or ``host``/``port``.

    Raises :class:`ListenError` with the one-line message. ``backlog`` defaults to the
    configured one; with ``reuse_port`` TCP sockets are only bound (the workers listen).
    """
    sockets = systemd_sockets()
    if sockets:
        log.info("Listening on %d socket(s) from systemd (LISTEN_FDS)", len(sockets))
        if config.reuse_port:
            log.warning("--reuse-port does not apply to sockets from systemd: ignored")
            config.reuse_port = False
        return sockets
    if config.fd is not None:
        return [inherited_socket(config.fd)]
    if backlog is None:
        backlog = config.backlog
    try:
        if config.uds is not None:
            return [bind_unix(config.uds, backlog)]
        return bind_tcp(
            config.host,
            config.port,
            backlog=None if config.reuse_port else backlog,
            reuse_port=config.reuse_port,
        )
    except OSError as exc:
        raise ListenError(f"cannot listen on {where(config)}: {exc}") from None


def check_reuse_port(config: Config) -> None:
    """``reuse_port`` needs TCP sockets bound here; raise :class:`ListenError` otherwise."""
    if config.reuse_port and (config.uds is not None or config.fd is not None):
        raise ListenError("--reuse-port applies to --host/--port only", EXIT_USAGE)


def address_text(sockets: list[socket.socket], tls: bool) -> str:
    """The URL of the first socket, as the ready line shows it."""
    scheme = "https" if tls else "http"
    sock = sockets[0]
    if hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX:
        return f"{scheme}+unix://{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
