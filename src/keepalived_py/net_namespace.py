"""keepalived's ``net_namespace``: running in a named network namespace (``ip netns add NAME``).

A small shared base (pyroute2's netns helpers, imported only when a namespace is named). ``kpd start``
moves the parent into the namespace before it starts anything, so every child, socket and script it forks
lives there too, as keepalived does; configuration checks look at the namespace's interfaces.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NETNS_DIR", "NamespaceError", "enter", "entered", "home_fd", "runtime_subdir"]

#: Where ``ip netns`` keeps its named namespaces (keepalived opens the same files).
NETNS_DIR = Path("/run/netns")
#: The namespace this process started in, kept open by :func:`enter` (see :func:`home_fd`).
_home: int | None = None


class NamespaceError(OSError):
    """The named namespace does not exist or cannot be entered."""


def enter(name: str) -> None:
    """Move this thread, and every process it starts from now on, into namespace ``name`` (never created:
    it must exist, as keepalived requires)."""
    if not name or "/" in name or name in (".", ".."):
        raise NamespaceError(f"invalid network namespace name {name!r}")
    if not (NETNS_DIR / name).exists():
        raise NamespaceError(f"network namespace {name} does not exist (create it with: ip netns add {name})")
    from pyroute2 import netns

    global _home
    if _home is None:
        _home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        netns.setns(name, flags=0)  # flags=0: open only, never create
    except OSError as err:
        raise NamespaceError(f"cannot enter network namespace {name}: {err.strerror or err}") from None


def home_fd() -> int | None:
    """A descriptor of the network namespace the process started in, once :func:`enter` has left it (None
    before): what keepalived opens there before it moves (the process-event socket) a child opens through
    it."""
    return _home


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run a block inside namespace ``name`` (None: where we are), then come back."""
    if name is None:
        yield
        return
    home = open("/proc/thread-self/ns/net", "rb")  # noqa: SIM115 - closed below, after coming back
    try:
        enter(name)
        try:
            yield
        finally:
            from pyroute2 import netns

            netns.setns(home.fileno(), flags=0)
    finally:
        home.close()


def runtime_subdir(base: str | Path, namespace: str | None, instance: str | None) -> Path:
    """The default runtime directory of a kpd in ``namespace`` named ``instance``: ``base[/NS][/INSTANCE]``
    (keepalived likewise keeps the pid files of each namespace and instance apart)."""
    path = Path(base)
    for part in (namespace, instance):
        if part:
            if "/" in part or part in (".", ".."):
                raise NamespaceError(f"{part!r} cannot name a runtime directory")
            path = path / part
    return path
