"""The VRRP engine on the child runtime: what ``kpd-vrrp`` serves.

SIGTERM and SIGINT stop it gracefully (priority 0 from every MASTER, addresses released unless
``release`` is False); every instance's status is written to ``<runtime dir>/vrrp-status.json`` (one write
per loop turn, however many instances changed state in it, and every :data:`STATUS_REFRESH` seconds for
the counters).
"""

from __future__ import annotations

from typing import Any

from keepalived_py.child_process import ChildRuntime, ChildStart, EngineHooks, run_child
from keepalived_py.runtime_paths import VRRP_FIFO_SCRIPTS, VRRP_STATUS
from keepalived_py.vrrp.engine import VrrpEngine
from keepalived_py.vrrp.fsm import State

#: the status file is rewritten this often for its counters (and at once on every transition)
STATUS_REFRESH = 1.0


def serve(
    start: ChildStart,
    *,
    release: bool = True,
    resume_master: tuple[str, ...] = (),
    home_netns: int | None = None,
) -> int:
    runtime = ChildRuntime(start, VRRP_STATUS, refresh_every=STATUS_REFRESH)

    def hooks() -> EngineHooks:
        if start.heartbeat is not None:
            start.heartbeat.progress("opening sockets and reading the kernel's addresses")
        engine = VrrpEngine(start.config, release_on_stop=release, home_netns=home_netns)
        engine.fifo_scripts.state_file = str(start.runtime_dir / VRRP_FIFO_SCRIPTS)
        engine.open()

        def on_transition(_name: str, _state: State) -> None:
            runtime.changed()

        def summary() -> dict[str, Any]:
            return {"instances": {s.name: {"state": s.state, "priority": s.effective_priority}
                                  for s in engine.status()}}

        engine.on_transition = on_transition
        return EngineHooks(
            run=lambda: engine.run(resume_master=resume_master),
            stop=engine.stop,
            shutdown=engine.shutdown,
            reload=engine.reload,
            status=lambda: [s.to_json() for s in engine.status(trackers=True)],
            summary=summary,
            events=engine.events,
        )

    return run_child(start, runtime, hooks)
