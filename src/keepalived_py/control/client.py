"""The control-socket client behind ``kpd status``, ``kpd stop``, ``kpd reload`` and ``kpd events``."""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from keepalived_py import wire
from keepalived_py.runtime_files import is_reply_file_name, read_runtime_json
from keepalived_py.runtime_paths import CONTROL_SOCKET

#: Seconds to wait for the answer once connected.
TIMEOUT = 5.0
#: Default seconds to keep retrying while the daemon's listen backlog is full.
CONNECT_TIMEOUT = 5.0
#: Largest reply file read (the status of many thousands of instances).
REPLY_MAX = 256 * 1024 * 1024


class ControlError(RuntimeError):
    pass


def request(
    runtime_dir: str | Path,
    cmd: str,
    args: dict[str, Any] | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> dict[str, Any]:
    """Send one request to the kpd whose runtime dir is ``runtime_dir`` and return its answer's body.

    While the daemon's listen backlog is full (``EAGAIN`` from connect), connecting is retried, with a short
    growing pause, for up to ``connect_timeout`` seconds. An absent socket or nobody listening on it fails at
    once. A large answer comes as ``{"reply_file": path}``: the file is read only if it is in
    ``runtime_dir`` and its name matches :data:`~keepalived_py.runtime_files.REPLY_FILE_PATTERN` (never
    through a symlink, never a FIFO, at most :data:`REPLY_MAX` bytes), and is unlinked once read.

    :raises ControlError: with a message for the user: no daemon, daemon busy past the deadline, no or bad
        answer, or the daemon's refusal (its ``error`` and ``diagnostics``).
    """
    path = Path(runtime_dir) / CONTROL_SOCKET
    with _connect(path, runtime_dir, connect_timeout) as sock:
        try:
            sock.send(wire.encode(wire.Request(cmd, args or {})))
            data = sock.recv(wire.MAX_FRAME + 1)
        except OSError as err:
            raise ControlError(f"cannot talk to kpd at {path}: {err.strerror or err}") from None
    return _body(data, runtime_dir)


def _body(data: bytes, runtime_dir: str | Path) -> dict[str, Any]:
    """The body of an answer frame (read from its reply file if it names one); ControlError for a bad
    answer or a refusal."""
    if not data:
        raise ControlError("kpd closed the connection without an answer")
    try:
        msg = wire.decode(data)
    except wire.WireError as err:
        raise ControlError(f"bad answer from kpd: {err}") from None
    if not isinstance(msg, wire.Response):
        raise ControlError("bad answer from kpd: not a response")
    body = msg.body
    if set(body) == {"reply_file"}:
        body = _read_reply_file(body["reply_file"], Path(runtime_dir))
    if not msg.ok:
        lines = [str(body.get("error", "request refused"))]
        diagnostics = body.get("diagnostics")
        if isinstance(diagnostics, list):
            lines += [str(d) for d in diagnostics]
        raise ControlError("\n".join(lines))
    return body


def follow(
    runtime_dir: str | Path,
    args: Mapping[str, Any] | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    on_answer: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """``kpd events --follow``: the events the daemon has (``since``/``limit`` in ``args``), then every new
    one as it happens, until the daemon closes the connection (it stopped, or this reader fell more than its
    backlog behind: resume with ``since`` the last seq seen). ``on_answer`` gets the first answer (its
    ``last_seq``, ``oldest_seq``, ``ring_size``) before any event is yielded. Closing the generator (or
    Ctrl-C while it waits) closes the connection.
    """
    path = Path(runtime_dir) / CONTROL_SOCKET
    with _connect(path, runtime_dir, connect_timeout) as sock:
        try:
            sock.send(wire.encode(wire.Request("events", {**(args or {}), "follow": True})))
            data = sock.recv(wire.MAX_FRAME + 1)
        except OSError as err:
            raise ControlError(f"cannot talk to kpd at {path}: {err.strerror or err}") from None
        body = _body(data, runtime_dir)
        if on_answer is not None:
            on_answer(body)
        yield from _event_list(body)
        sock.settimeout(None)  # the next event may be hours away
        while True:
            try:
                data = sock.recv(wire.MAX_FRAME + 1)
            except ConnectionResetError:
                return
            except OSError as err:
                raise ControlError(f"cannot talk to kpd at {path}: {err.strerror or err}") from None
            if not data:
                return
            yield from _event_list(_body(data, runtime_dir))


def _event_list(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ControlError("bad answer from kpd: no list of events")
    return events


def format_event(event: Mapping[str, Any]) -> str:
    """One line of ``kpd events``: UTC time (ms), seq, source, kind, then the other fields as sorted
    ``key=value`` (a value with spaces, quotes or ``=`` in it, or empty, is JSON-quoted; null is ``-``)."""
    when = event.get("time")
    if isinstance(when, int | float) and not isinstance(when, bool):
        stamp = datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="milliseconds")
        stamp = stamp.replace("+00:00", "Z")
    else:
        stamp = "-"
    head = [stamp, str(event.get("seq", "-")), str(event.get("source", "-")), str(event.get("kind", "-"))]
    fields = [f"{k}={_field_text(v)}" for k, v in sorted(event.items())
              if k not in ("time", "seq", "source", "kind")]
    return " ".join(head + fields)


def _field_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    text = str(value)
    if not text or any(c.isspace() or c in "\"=" for c in text) or not text.isprintable():
        return json.dumps(text)
    return text


def event_json(event: Mapping[str, Any]) -> str:
    """One line of ``kpd events --json``: the event as it is, keys sorted."""
    return json.dumps(event, sort_keys=True, separators=(", ", ": "))


def _connect(path: Path, runtime_dir: str | Path, connect_timeout: float) -> socket.socket:
    """A socket connected to ``path``; EAGAIN (backlog full) is retried until ``connect_timeout`` passes."""
    deadline = time.monotonic() + connect_timeout
    pause = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(TIMEOUT)
            sock.connect(str(path))
            return sock
        except FileNotFoundError:
            sock.close()
            raise ControlError(
                f"no kpd is running with runtime dir {runtime_dir} ({path} is absent)"
            ) from None
        except OSError as err:
            sock.close()
            if err.errno == errno.ECONNREFUSED:
                raise ControlError(
                    f"nothing is listening on {path} (kpd is not running, or is just starting)"
                ) from None
            if err.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise ControlError(f"cannot talk to kpd at {path}: {err.strerror or err}") from None
        except BaseException:
            sock.close()
            raise
        left = deadline - time.monotonic()
        if left <= 0:
            raise ControlError(
                f"kpd at {path} is busy: its connection queue stayed full for {connect_timeout:g} s"
            )
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.1)


def _read_reply_file(named: Any, runtime_dir: Path) -> dict[str, Any]:
    """A large answer the daemon wrote to a private reply file in its runtime dir; unlinked once read.

    Only a name matching the reply-file pattern, directly in ``runtime_dir`` (a bare name counts as in it),
    is ever read or unlinked: an answer naming any other path is a bad answer and the path is left alone.
    """
    if not isinstance(named, str) or "\0" in named:
        raise ControlError("bad answer from kpd: reply file is not a path")
    given = Path(named)
    real_dir = os.path.realpath(runtime_dir)
    inside = "/" not in named or os.path.realpath(given.parent) == real_dir
    if not inside or not is_reply_file_name(given.name):
        raise ControlError(f"bad answer from kpd: {named[:200]!r} is not a reply file in {runtime_dir}")
    path = Path(real_dir) / given.name
    try:
        doc = read_runtime_json(path, REPLY_MAX)
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ControlError(f"cannot read kpd's answer {path}: {reason}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not isinstance(doc, dict):
        raise ControlError(f"bad answer from kpd in {path}: not a JSON object")
    return doc


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _check_text(check: dict[str, Any]) -> str:
    if check.get("last_ok") is None:
        return "not run yet"
    return "ok" if check["last_ok"] else str(check.get("last_reason") or "failed")


def format_status(doc: dict[str, Any]) -> str:
    """``kpd status`` as aligned tables: instances, virtual servers, children; then the last reload."""
    rows = []
    for inst in doc.get("instances", []):
        c = inst.get("counters", {})
        rows.append(
            [
                str(inst.get("name")),
                str(inst.get("state")),
                f"{inst.get('base_priority')}/{inst.get('effective_priority')}",
                str(inst.get("master_address") or "-"),
                " ".join(inst.get("vips", [])) or "-",
                str(inst.get("last_reason") or "-"),
                f"{c.get('adverts_sent', 0)}/{c.get('adverts_received', 0)}",
                str(sum(inst.get("drops", {}).values())),
            ]
        )
    out = [
        _table(["INSTANCE", "STATE", "PRIO", "MASTER", "VIPS", "LAST TRANSITION", "ADV TX/RX", "DROPS"], rows)
    ]
    vrows = []
    for vs in doc.get("virtual_servers", []):
        for rs in vs.get("real_servers", []) or [{}]:
            checks = rs.get("checks", [])
            last = "; ".join(_check_text(c) for c in checks) or "-"
            vrows.append([
                str(vs.get("name")),
                f"{vs.get('quorum')}{' SORRY' if vs.get('sorry_server_active') else ''}"
                f"{' SUSPENDED' if vs.get('suspended') else ''}",
                str(rs.get("name", "-")),
                str(rs.get("state", "-")),
                _num(rs.get("weight"), "{}"),
                last,
            ])
    if vrows:
        out.append("")
        headers = ["VIRTUAL SERVER", "QUORUM", "REAL SERVER", "STATE", "WEIGHT", "LAST CHECK"]
        out.append(_table(headers, vrows))
    crow = []
    for kind, ch in doc.get("children", {}).items():
        rss = ch.get("rss_bytes")
        crow.append(
            [
                kind,
                str(ch.get("pid") or "-"),
                _num(ch.get("uptime")),
                str(ch.get("restarts", 0)),
                _num(ch.get("heartbeat_age"), "{:.2f}"),
                "yes" if ch.get("healthy") else "NO",
                "-" if rss is None else f"{rss / 2**20:.1f} MiB",
                _num(ch.get("cpu_seconds"), "{:.2f}"),
                str(ch.get("open_fds", "-")),
            ]
        )
    out.append("")
    out.append(
        _table(
            ["CHILD", "PID", "UPTIME", "RESTARTS", "HEARTBEAT AGE", "HEALTHY", "RSS", "CPU S", "FDS"], crow
        )
    )
    reload = doc.get("reload")
    if isinstance(reload, dict):
        out.append("")
        if reload.get("ok"):
            out.append(f"last reload: generation {reload.get('generation')} accepted")
        else:
            out.append(f"last reload: REJECTED, still running generation {reload.get('generation')}:")
            out.extend(f"  {line}" for err in reload.get("errors", []) for line in str(err).splitlines())
    metrics = doc.get("metrics")
    if isinstance(metrics, dict):
        out.append("")
        if metrics.get("serving"):
            out.append(f"metrics: http://{metrics.get('listen')}/metrics")
        else:
            out.append(f"metrics: NOT SERVED ({metrics.get('error') or 'not listening'})")
    return "\n".join(out) + "\n"
