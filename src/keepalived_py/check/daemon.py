"""The check engine on the child runtime: what ``kpd-checker`` serves.

SIGTERM/SIGINT stop it (IPVS rules released per ``lvs_flush_on_stop`` unless ``release`` is False); SIGHUP
switches to the configuration snapshot the parent wrote, applying only the differences. Every virtual
server's state is written to ``<runtime dir>/check-status.json`` (at most one write per :data:`STATUS_EVERY`).
"""

from __future__ import annotations

from keepalived_py.check.engine import CheckEngine, Driver
from keepalived_py.child_process import ChildRuntime, ChildStart, EngineHooks, run_child
from keepalived_py.runtime_paths import CHECK_FIFO_SCRIPTS, CHECK_STATUS

#: status file writes are coalesced to at most one per this many seconds
STATUS_EVERY = 0.5


def serve(start: ChildStart, driver: Driver, *, release: bool = True) -> int:
    runtime = ChildRuntime(start, CHECK_STATUS, status_every=STATUS_EVERY)

    def hooks() -> EngineHooks:
        if start.heartbeat is not None:
            start.heartbeat.progress("reading the kernel's IPVS table")
        engine = CheckEngine(start.config, driver, release_on_stop=release)
        engine.fifo_scripts.state_file = str(start.runtime_dir / CHECK_FIFO_SCRIPTS)
        engine.on_change = runtime.changed
        engine.open()
        return EngineHooks(
            run=engine.run,
            stop=engine.stop,
            shutdown=engine.shutdown,
            reload=engine.reload,
            status=lambda: {"virtual_servers": engine.status(), "stats": engine.stats,
                            "ipvs_ops": [{"service": service, "kind": kind, "result": result, "count": n}
                                         for (service, kind, result), n in sorted(engine.ipvs_ops.items())]},
            summary=engine.summary,
            events=engine.events,
        )

    return run_child(start, runtime, hooks)
