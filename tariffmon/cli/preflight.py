"""Checks a command makes before it starts work, so a bad setting fails in a second, clearly.

Each raises :class:`~tariffmon.errors.ConfigError` naming the setting (or option) to change;
:mod:`tariffmon.cli.failures` turns it into the command's one line and exit status 2.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from tariffmon.errors import ConfigError


def require_free_port(host: str, port: int, *, setting: str, option: str) -> None:
    """Fail unless ``host:port`` can be listened on now (port 0, any free one, always can).

    The port is bound and released at once, with SO_REUSEADDR as the metrics server binds
    it, so a port in TIME_WAIT passes and one another process listens on does not.  (A
    process may still take it in between; the server's own bind error is then reported the
    same way, by the command line's failure path.)
    """
    if port == 0:
        return
    variable = "TARIFFMON_" + "__".join(p.upper() for p in setting.split("."))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError("metrics.host", f"cannot resolve {host!r}: {exc}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                setting,
                f"{host}:{port} is already in use (another tariffmon, or another program, "
                f"listens there); choose another port with {option} or {variable} "
                "(0: any free port)",
            ) from None


def require_output_dir(path: Path, *, option: str) -> None:
    """Fail unless ``path`` is a folder or can be created as one (nothing in the way)."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "" if part == path else f" (in the way of {path})"
                raise ConfigError(option, f"{part} is an existing file, not a folder{where}")
            return
