"""The control-socket client behind ``kpd status``, ``kpd stop`` and ``kpd reload``."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from keepalived_py import wire
from keepalived_py.runtime_paths import CONTROL_SOCKET

TIMEOUT = 5.0


class ControlError(RuntimeError):
    pass


def request(runtime_dir: str | Path, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    path = Path(runtime_dir) / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(str(path))
            sock.send(wire.encode(wire.Request(cmd, args or {})))
            data = sock.recv(wire.MAX_FRAME + 1)
        except FileNotFoundError:
            raise ControlError(
                f"no kpd is running with runtime dir {runtime_dir} ({path} is absent)"
            ) from None
        except OSError as err:
            raise ControlError(f"cannot talk to kpd at {path}: {err.strerror or err}") from None
    try:
        msg = wire.decode(data)
    except wire.WireError as err:
        raise ControlError(f"bad answer from kpd: {err}") from None
    if not isinstance(msg, wire.Response):
        raise ControlError("bad answer from kpd: not a response")
    if msg.ok and set(msg.body) == {"reply_file"}:
        return _read_reply_file(Path(str(msg.body["reply_file"])), Path(runtime_dir))
    if not msg.ok:
        lines = [str(msg.body.get("error", "request refused"))]
        diagnostics = msg.body.get("diagnostics")
        if isinstance(diagnostics, list):
            lines += [str(d) for d in diagnostics]
        raise ControlError("\n".join(lines))
    return msg.body


def _read_reply_file(path: Path, runtime_dir: Path) -> dict[str, Any]:
    """A large answer the daemon wrote to a file in its runtime dir (never followed through a symlink)."""
    if path.parent.resolve() != runtime_dir.resolve():
        raise ControlError(f"bad answer from kpd: reply file {path} outside {runtime_dir}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            doc = json.loads(f.read(64 * 1024 * 1024))
    except (OSError, ValueError) as err:
        raise ControlError(f"cannot read kpd's answer {path}: {err}") from None
    if not isinstance(doc, dict):
        raise ControlError(f"bad answer from kpd in {path}")
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
    return "\n".join(out) + "\n"
