"""The check engine: one asyncio loop running every checker and keeping the kernel's IPVS table in line.

Each distinct probe (:class:`~keepalived_py.check.specs.CheckerKey`) has one :class:`Checker`; the checkers
wait for their next run in one queue ordered by due time, a probe runs as a task (at most ``max_in_flight``
at once), its result moves the checker, verdicts move the :class:`Pool`, and changed virtual servers are
synced to the kernel through the pure reconciler (one batch for everything that changed meanwhile).

No loop turn does much of the engine's work, whatever the size of the configuration (the heartbeat task
runs on the same loop):

* a checker's first probe runs, as keepalived's, ``1 s + random(0, warmup)`` after the checker is created
  (``warmup`` defaults to the delay_loop), so a round's probes are spread over the delay_loop;
* the checkers are created ``BUILD_BATCH`` per loop turn (on start and for those a reload adds);
* probes due and probe results waiting are handled at most ``TURN_BATCH`` (or ``TURN_SLICE`` seconds) per
  loop turn, the rest on the next turns: an engine that cannot keep up runs its checks late (and counts
  them in ``late_probes`` and ``max_lateness``, with a warning), it does not stall the loop. A probe's
  timeout starts when the probe starts, never when it was due, and counts only the time the network had,
  not the time the loop kept the probe waiting (:mod:`keepalived_py.check.probe_deadline`), so a late or
  starved engine does not fail a healthy server;
* on start, and again once the checkers are built and the table programmed, the long-lived objects
  (configuration, pool, checkers) are moved out of the garbage collector's reach (``gc.freeze()``): with
  10,000 real servers a full collection walking them took 100-300 ms on the host. (Frozen objects are
  still freed when nothing refers to them any more; only reference cycles among them would stay.)

All work on the kernel's table (a sync, a full resync: reading the table, planning, applying) runs as steps
of a generator, one piece of work after another: a slice of at most ``APPLY_BATCH`` steps or
``APPLY_SLICE`` seconds runs at once, the rest in a writer task, a slice per loop turn, so that programming
thousands of real servers never stops the loop (and the heartbeat task on it) for long. The engine keeps
a mirror of the kernel's table, changed in place in O(1) per operation.

The kernel's table is adopted at start (never flushed, unless ``lvs_flush``), fully re-read every
``resync_interval`` seconds (less often for a table so large that reading it is costly) to repair
changes made behind kpd's back, and on reload only the differences
are applied. On stop the services kpd manages are removed (``lvs_flush_on_stop ALL``: everything), unless
``release`` is False (``--dont-release-ipvs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gc
import heapq
import itertools
import logging
import math
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from keepalived_py.check.checker import Checker, UrlChecker, Verdict
from keepalived_py.check.connect_poller import ConnectPoller
from keepalived_py.check.dns_probe import probe_dns
from keepalived_py.check.file_check import FileChecks
from keepalived_py.check.http_probe import probe_http
from keepalived_py.check.misc_probe import probe_misc
from keepalived_py.check.ping_probe import probe_ping
from keepalived_py.check.pool import Notification, Pool, VirtualServerState
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.smtp_probe import probe_smtp
from keepalived_py.check.specs import (
    FILE_POLL,
    CheckerKey,
    DnsSpec,
    FailedSpec,
    FileSpec,
    HttpSpec,
    MiscSpec,
    PingSpec,
    ProbeSpec,
    SmtpSpec,
    TcpSpec,
    UdpSpec,
    build,
)
from keepalived_py.check.tcp_probe import TcpConnect, probe_tcp
from keepalived_py.check.udp_probe import probe_udp
from keepalived_py.config.model import Config, NotifyScript
from keepalived_py.events import EventBuffer
from keepalived_py.ipvs.reconcile import Op, apply_in_place, copy_table, iter_plan
from keepalived_py.ipvs.state import Entry, ServiceKey
from keepalived_py.notify import CheckedScripts, FifoScripts, NotifyFifo, NotifyQueue, open_fifos
from keepalived_py.smtp_alert import Mailer, MailSettings

log = logging.getLogger("kpd.check")

#: how often the whole kernel table is re-read and repaired
RESYNC_INTERVAL = 5.0
#: how often ha_suspend looks at whether the virtual addresses are local
SUSPEND_POLL = 0.5
NOTIFY_TIMEOUT = 30.0
#: at stop, queued SMTP alerts (the shutdown ones) get this long to go out
MAIL_GRACE = 3.0
#: at most this many steps (IPVS operations, services read) of kernel work before the loop turns ...
APPLY_BATCH = 256
#: ... or this many seconds of it
APPLY_SLICE = 0.02
#: IPVS operations sent to the kernel at once (one netlink message) by a driver with ``apply_all``
APPLY_CHUNK = 32
#: at most this many probe launches and probe results handled in one loop turn ...
TURN_BATCH = 256
#: ... or this many seconds of that work
TURN_SLICE = 0.01
#: the engine wakes for its checks on multiples of this many seconds (loop time): the checks due in one
#: slot start together, each at most this much after it was due, so that thousands of checks spread over
#: their delay_loop cost tens of wake-ups a second rather than one each
CHECK_SLOT = 0.02
#: a check started this many seconds after it was due is reported (a warning at most once a minute)
LATE_WARNING = 1.0
LATE_WARNING_EVERY = 60.0
#: checkers created per loop turn (on start, on reload)
BUILD_BATCH = 512
#: virtual servers whose desired IPVS entries are computed (or planned) per step of kernel work
PLAN_STEP = 16


class Driver(Protocol):
    def dump(self) -> dict[ServiceKey, Entry]: ...
    def iter_dump(self) -> Iterator[tuple[ServiceKey, Entry]]: ...
    def apply(self, op: Op) -> None: ...
    def flush(self) -> None: ...


async def run_probe(spec: ProbeSpec) -> ProbeResult:
    if isinstance(spec, TcpSpec):
        return await probe_tcp(spec.host, spec.port, timeout=spec.timeout, source=spec.source)
    if isinstance(spec, HttpSpec):
        if not spec.urls:
            return ProbeResult.down("no url configured")
        for target in spec.urls:  # the engine asks for one url at a time; genhash-like callers for all
            result = await probe_http(target)
            if not result.ok:
                return ProbeResult.down(f"{target.path}: {result.reason}") if len(spec.urls) > 1 else result
        return ProbeResult.up()
    if isinstance(spec, MiscSpec):
        return await probe_misc(spec.argv, timeout=spec.timeout, dynamic=spec.dynamic, user=spec.user,
                                group=spec.group)
    if isinstance(spec, SmtpSpec):
        return await probe_smtp(spec.host, spec.port, helo_name=spec.helo_name, timeout=spec.timeout,
                                source=spec.source)
    if isinstance(spec, UdpSpec):
        return await probe_udp(spec.host, spec.port, timeout=spec.timeout, payload=spec.payload,
                               require_reply=spec.require_reply, min_reply_length=spec.min_reply_length,
                               max_reply_length=spec.max_reply_length, source=spec.source)
    if isinstance(spec, PingSpec):
        return await probe_ping(spec.host, timeout=spec.timeout)
    if isinstance(spec, DnsSpec):
        return await probe_dns(spec.host, spec.port, name=spec.name, rdtype=spec.type, timeout=spec.timeout,
                               source=spec.source)
    if isinstance(spec, FailedSpec):
        return ProbeResult.down(spec.reason)
    return ProbeResult.down(f"unknown probe {spec!r}")


def address_is_local(address: str) -> bool:
    """True when ``address`` is configured on this host (a bind to it succeeds)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


class CheckEngine:
    def __init__(
        self,
        config: Config,
        driver: Driver,
        *,
        release_on_stop: bool = True,
        resync_interval: float = RESYNC_INTERVAL,
        max_in_flight: int = 4096,
        probe: Callable[[ProbeSpec], Any] = run_probe,
        is_local: Callable[[str], bool] = address_is_local,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.release_on_stop = release_on_stop
        self.resync_interval = resync_interval
        self.probe = probe
        self.is_local = is_local
        #: draws each checker's warmup (keepalived's random first run)
        self.rng = rng if rng is not None else random.Random()
        self.pool = Pool(build(config))
        self.checkers: dict[CheckerKey, Checker] = {}
        #: the FILE_CHECKs: watched files, not probes on a schedule
        self.files = FileChecks()
        #: the kernel's table as kpd last left it (re-read on every full resync; changed in place)
        self.kernel: dict[ServiceKey, Entry] = {}
        #: every service kpd has programmed (a reload that drops one removes it)
        self.managed: set[ServiceKey] = set()
        self.on_change: Callable[[], None] | None = None
        #: structured events (``kpd events``): check verdicts and IPVS operations
        self.events = EventBuffer()
        self.stats: dict[str, float] = {
            "probes": 0, "late_probes": 0, "max_lateness": 0.0, "ipvs_ops": 0, "ipvs_errors": 0,
            "resyncs": 0, "repairs": 0, "verdicts": 0,
            # seconds from a checker's verdict to its IPVS operations having been applied
            "verdict_to_kernel_last": 0.0, "verdict_to_kernel_max": 0.0,
        }
        #: IPVS operations by (service, kind, result "ok"/"error"), for the metrics
        self.ipvs_ops: Counter[tuple[str, str, str]] = Counter()
        self._first_verdict: float | None = None
        self._late_warned = -LATE_WARNING_EVERY
        self._dirty: set[int] = set()
        self._sync_pending = False
        self._full_resync_needed = False
        #: checkers waiting for their next run: a heap of (due, sequence number, key); an entry whose
        #: number is not ``_queued[key]`` any more is stale (the checker was rescheduled or removed)
        self._due: list[tuple[float, int, CheckerKey]] = []
        self._queued: dict[CheckerKey, int] = {}
        self._seq = itertools.count()
        #: checkers whose probe runs, or whose result waits in ``_results``
        self._running: set[CheckerKey] = set()
        #: probe results not applied yet: (key, checker, result, when the probe ended)
        self._results: deque[tuple[CheckerKey, Checker, ProbeResult, float]] = deque()
        #: the timer that wakes the pump for the earliest due checker, and when
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = 0.0
        self._pump_soon = False
        #: checker keys still to be created (a slice per loop turn), and the task creating them
        self._to_build: deque[CheckerKey] = deque()
        self._build_starting = True
        self._builder: asyncio.Task[None] | None = None
        #: the pool whose objects were last frozen (gc.freeze)
        self._frozen: Pool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: probes running at most at once (each holds a socket or a process); the checkers due past it wait
        #: in ``_waiting`` (still in ``_running``) for a probe to end
        self.max_in_flight = max_in_flight
        self._in_flight = 0
        self._waiting: deque[CheckerKey] = deque()
        #: the TCP_CHECKs running without a task (:class:`TcpConnect`), and their deadlines: a heap of
        #: (deadline, sequence number, key), an entry stale once its probe's deadline moved or it ended
        self._connects: dict[CheckerKey, TcpConnect] = {}
        #: their sockets, waiting for the connect (made with the first one, closed with the checks)
        self._poller: ConnectPoller | None = None
        self._connect_deadlines: list[tuple[float, int, CheckerKey]] = []
        self._notify = NotifyQueue(name="checker-notify")
        self._fifos: list[NotifyFifo] = []
        self.fifo_scripts = FifoScripts()
        self._mailer: Mailer | None = None
        self._notify_scripts = CheckedScripts(self._notify)
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: kernel work waiting (the first one running), and the task running it a slice per loop turn
        self._work: deque[Iterator[None]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._in_slice = False
        self._sync_queued = False
        self._resync_queued = False
        #: True once the first resync has programmed the table
        self.ready = False

    # --- life cycle ---------------------------------------------------------------------------------------

    def open(self) -> None:
        """Adopt the kernel's table and program the initial state. Call with the loop running."""
        self._loop = asyncio.get_running_loop()
        gd = self.config.global_defs
        self._fifos.extend(open_fifos((gd.notify_fifo, gd.lvs_notify_fifo)))
        settings = MailSettings.of(gd)
        self._mailer = Mailer(settings) if settings is not None else None
        self.fifo_scripts.start(
            gd,
            self._fifos,
            (
                ("", gd.notify_fifo, gd.notify_fifo_script),
                ("lvs", gd.lvs_notify_fifo, gd.lvs_notify_fifo_script),
            ),
        )
        if gd.lvs_flush:
            log.info("lvs_flush: flushing every IPVS rule")
            self.driver.flush()
        self._set_timeouts()
        gc.freeze()  # the configuration and the pool, built already (again once the checkers are)
        self._update_suspended()
        self._preset_files()
        self._notify_all(self.pool.start())
        self.resync()
        self._build(self.pool.checker_keys, starting=True)

    async def run(self) -> None:
        """Run until :meth:`stop`; then cancel probes (the caller calls :meth:`shutdown`)."""
        assert self._loop is not None
        resync = self._loop.create_task(self._resync_loop(), name="ipvs resync")
        suspend = self._loop.create_task(self._suspend_loop(), name="ha_suspend")
        files = self._loop.create_task(self._file_loop(), name="FILE_CHECK")
        try:
            await self._stop.wait()
        finally:
            for task in (resync, suspend, files):
                task.cancel()
            writer = self._writer
            if writer is not None:
                writer.cancel()
                await asyncio.wait({writer})
            self._work.clear()
            self._sync_queued = self._resync_queued = False
            self._stop_checks()
            for t in list(self._tasks):
                t.cancel()
            for t in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self) -> None:
        """Release the IPVS rules (unless told not to), send omega notifications, close the FIFOs."""
        self._notify_all(self.pool.stop_notifications())
        if self.release_on_stop:
            if self.config.global_defs.lvs_flush_on_stop == "ALL":
                self.driver.flush()
                log.info("flushed every IPVS rule on stop")
            else:
                self._submit(self._release_steps())
                await self.settled()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._notify.close(), 5.0)
        if self._mailer is not None:
            await self._mailer.close(timeout=MAIL_GRACE)
        for fifo in self._fifos:
            fifo.close()  # unlinked first: a reader script looping on reopen cannot reopen it
        await self.fifo_scripts.stop()

    # --- reload -------------------------------------------------------------------------------------------

    async def reload(self, config: Config) -> None:
        """Switch to a new configuration, keeping the state of every checker and server that stays.

        The new pool (the configuration resolved into probes and policy: pure, and 0.7-1 s for 10,000 real
        servers) is built on a worker thread, so the loop keeps turning (heartbeats, probes) meanwhile."""
        assert self._loop is not None
        pool = await self._loop.run_in_executor(None, lambda: Pool(build(config)))
        old_checkers = self.checkers
        old_vs = {vs.spec.name: vs for vs in self.pool.virtual_servers}
        self.config = config
        self.pool = pool
        self.checkers = {}
        new: list[CheckerKey] = []
        for key in self.pool.checker_keys:
            kept = old_checkers.get(key)
            if kept is not None:
                self.checkers[key] = kept
            else:
                new.append(key)
        for key in [k for k in self._queued if k not in self.checkers]:
            del self._queued[key]  # its heap entry is stale now
        # FILE_CHECKs first: what their files say is part of each server's state the quorum below weighs
        self._preset_files()
        # Carry over what the kept checkers know, without notifications: nothing changed for them.
        for vs in self.pool.virtual_servers:
            for rs in vs.real_servers:
                for i, key in enumerate(rs.spec.checkers):
                    c = self.checkers.get(key)
                    if c is None or (not c.has_run and key.alpha):
                        continue
                    if c.up:
                        rs.failed.pop(i, None)
                        if c.weight is not None:
                            rs.dynamic[i] = c.weight
                    else:
                        rs.failed[i] = c.last_reason or "check failed"
                        rs.last_reason = rs.failed[i]
                rs.alive = not rs.failed
            before = old_vs.get(vs.spec.name)
            if before is not None:
                vs.quorum_up = before.quorum_up
                vs.suspended = before.suspended
                self._notify_all(self.pool.update_quorum(vs))
            else:
                self._notify_all(self.pool.start_one(vs))
        self._update_suspended()
        self._set_timeouts()
        self.resync()
        for key in self.checkers:
            if key not in self._queued and key not in self._running:
                self._schedule(key)
        self._build(new, starting=False)
        log.info("reloaded: %d virtual servers, %d checkers",
                 len(self.pool.virtual_servers), len(self.checkers))

    def _set_timeouts(self) -> None:
        """lvs_timeouts, as keepalived sets them at start and on every reload."""
        timeouts = self.config.global_defs.lvs_timeouts
        setter = getattr(self.driver, "set_timeouts", None)
        if timeouts is None or not any(timeouts) or setter is None:
            return
        try:
            setter(*timeouts)
        except OSError as err:
            log.error("Failed to set ipvs timeouts: %s", err)

    # --- FILE_CHECK ---------------------------------------------------------------------------------------

    def _preset_files(self) -> None:
        """Every FILE_CHECK's state from its file as it is, into the pool before the table is programmed
        (a start or a reload: a server its file holds down is never added), silently."""
        for key, verdict in self.files.load(self.pool.checker_keys):
            self.pool.verdict(key, verdict)
        self.pool.mails.clear()

    async def _file_loop(self) -> None:
        while True:
            await asyncio.sleep(FILE_POLL)
            try:
                changes = self.files.poll()
            except Exception:
                log.exception("FILE_CHECK polling failed")
                continue
            for key, verdict in changes:
                self._verdict(key, verdict)

    # --- checks -------------------------------------------------------------------------------------------

    def _build(self, keys: list[CheckerKey], *, starting: bool) -> None:
        """Create (and schedule) the checkers of ``keys``, ``BUILD_BATCH`` per loop turn: the first slice
        now, the rest from a task. Each first run is drawn from when its checker is created. ``starting``:
        the daemon's start (a first failure marks a checker down at once), not a reload."""
        self._to_build = deque(keys)
        self._build_starting = starting  # a reload replaces what a start (or reload) left to create
        self._build_slice()
        if self._to_build and self._builder is None and self._loop is not None:
            self._builder = self._loop.create_task(self._build_rest(), name="checkers")

    def _build_slice(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for _ in range(min(BUILD_BATCH, len(self._to_build))):
            key = self._to_build.popleft()
            if key in self.checkers or key not in self.pool.references or isinstance(key.probe, FileSpec):
                continue
            probe = key.probe
            if isinstance(probe, HttpSpec) and probe.urls:
                self.checkers[key] = UrlChecker(key.timing, now, urls=len(probe.urls),
                                                fast_recovery=probe.fast_recovery, alpha=key.alpha,
                                                starting=self._build_starting, rng=self.rng)
            else:
                self.checkers[key] = Checker(key.timing, now, alpha=key.alpha, starting=self._build_starting,
                                             rng=self.rng)
            self._schedule(key)

    async def _build_rest(self) -> None:
        try:
            while self._to_build and not self._stop.is_set():
                await asyncio.sleep(0)
                self._build_slice()
            self._freeze_heap()
        finally:
            self._builder = None

    def _schedule(self, key: CheckerKey) -> None:
        """Queue ``key`` for its checker's ``next_due`` (replacing any earlier place in the queue)."""
        seq = next(self._seq)
        self._queued[key] = seq
        due = self.checkers[key].next_due
        heapq.heappush(self._due, (due, seq, key))
        if not self._pump_soon:
            self._arm(due)

    def _arm(self, when: float) -> None:
        """Have the pump run at ``when``, rounded up to the next :data:`CHECK_SLOT` (unless it is to run
        earlier already)."""
        when = math.ceil(when / CHECK_SLOT) * CHECK_SLOT
        if self._wake is not None:
            if self._wake_at <= when:
                return
            self._wake.cancel()
        assert self._loop is not None
        self._wake_at = when
        self._wake = self._loop.call_at(when, self._on_wake)

    def _on_wake(self) -> None:
        self._wake = None
        if not self._pump_soon:
            self._pump()

    def _pump_next_turn(self) -> None:
        if not self._pump_soon and self._loop is not None:
            self._pump_soon = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        """One loop turn's share of the checks: probe results waiting, then checkers due, at most
        ``TURN_BATCH`` of them or ``TURN_SLICE`` seconds; the rest on the next turn."""
        self._pump_soon = False
        if self._stop.is_set():
            return
        assert self._loop is not None
        budget = TURN_BATCH
        deadline = time.perf_counter() + TURN_SLICE
        results = self._results
        while results and budget > 0:
            budget -= 1
            self._apply(*results.popleft())
            if time.perf_counter() >= deadline:
                budget = 0
        now = self._loop.time()
        self._expire_connects(now)
        waiting = self._waiting
        while waiting and budget > 0 and self._in_flight < self.max_in_flight:
            budget -= 1
            key = waiting.popleft()
            c = self.checkers.get(key)
            if c is None:
                self._running.discard(key)  # removed by a reload while it waited
            else:
                self._start_probe(key, c)
        due = self._due
        while due and budget > 0 and due[0][0] <= now:
            _, seq, key = heapq.heappop(due)
            if self._queued.get(key) != seq:
                continue  # stale
            del self._queued[key]
            budget -= 1
            self._launch(key, now)
            if time.perf_counter() >= deadline:
                break
        if results or (due and due[0][0] <= now) or (waiting and self._in_flight < self.max_in_flight):
            self._pump_next_turn()
        else:
            wake = min(due[0][0] if due else math.inf,
                       self._connect_deadlines[0][0] if self._connect_deadlines else math.inf)
            if wake < math.inf:
                self._arm(wake)

    def _expire_connects(self, now: float) -> None:
        """Every TCP_CHECK whose deadline has come: it fails, or its deadline moves (see TcpConnect)."""
        heap = self._connect_deadlines
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            probe = self._connects.get(key)
            if probe is None or probe.deadline != when:
                continue  # it ended, or its deadline moved (a later entry is in the heap)
            try:
                probe.expire()
            except Exception as err:  # a probe bug fails that check, never the engine's pump
                log.exception("probe %s crashed", key.describe())
                probe.abort(ProbeResult.down(f"internal error: {err!r}"))
                continue
            if probe.deadline is not None:
                heapq.heappush(heap, (probe.deadline, next(self._seq), key))

    def _launch(self, key: CheckerKey, now: float) -> None:
        if key not in self.checkers:
            return
        assert self._loop is not None
        c = self.checkers[key]
        if self.pool.suspended(key):
            c.postpone(now)
            self._schedule(key)
            return
        late = now - c.next_due
        if late > 0.1:
            self.stats["late_probes"] += 1
            if late > LATE_WARNING and now >= self._late_warned + LATE_WARNING_EVERY:
                self._late_warned = now
                log.warning("checks are running late (%s started %.1f s after it was due): the engine "
                            "cannot keep up with its %d checkers; the schedule stretches, and a check's "
                            "timeout counts only the time the network had", key.describe(), late,
                            len(self.checkers))
        if late > self.stats["max_lateness"]:
            self.stats["max_lateness"] = late
        self._running.add(key)
        if self._in_flight >= self.max_in_flight:
            self._waiting.append(key)
        else:
            self._start_probe(key, c)

    def _start_probe(self, key: CheckerKey, c: Checker) -> None:
        """Start the probe (its timeout starts now, not when it was due); its result waits for the pump.
        A TCP_CHECK runs without a task of its own (:class:`TcpConnect`), every other probe in a task."""
        assert self._loop is not None
        self._in_flight += 1
        spec = key.probe
        if type(spec) is TcpSpec and self.probe is run_probe:
            began = self._loop.time()

            def done(result: ProbeResult) -> None:
                self._connects.pop(key, None)
                self._probe_ended(key, c, result, began)

            if self._poller is None:
                self._poller = ConnectPoller(self._loop)
            try:
                probe = TcpConnect(self._loop, spec.host, spec.port, spec.timeout, spec.source, done,
                                   self._poller)
            except Exception as err:  # a probe bug must not take the child down
                log.exception("probe %s crashed", key.describe())
                done(ProbeResult.down(f"internal error: {err!r}"))
                return
            if probe.deadline is not None:  # still running
                self._connects[key] = probe
                heapq.heappush(self._connect_deadlines, (probe.deadline, next(self._seq), key))
                if not self._pump_soon:
                    self._arm(probe.deadline)
            return
        task = self._loop.create_task(self._run(key, c))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: CheckerKey, c: Checker) -> None:
        assert self._loop is not None
        spec = key.probe
        if isinstance(c, UrlChecker) and isinstance(spec, HttpSpec):
            spec = dataclasses.replace(spec, urls=(spec.urls[c.url_it],))  # one url per run, as keepalived
        began = self._loop.time()
        try:
            result = await self.probe(spec)
            if not result.ok and isinstance(c, UrlChecker) and c.urls > 1:
                assert isinstance(spec, HttpSpec)
                result = ProbeResult.down(f"{spec.urls[0].path}: {result.reason}")
        except asyncio.CancelledError:
            self._running.discard(key)
            self._in_flight -= 1
            raise
        except Exception as err:  # a probe bug must not take the child down
            log.exception("probe %s crashed", key.describe())
            result = ProbeResult.down(f"internal error: {err!r}")
        self._probe_ended(key, c, result, began)

    def _probe_ended(self, key: CheckerKey, c: Checker, result: ProbeResult, began: float) -> None:
        assert self._loop is not None
        self._in_flight -= 1
        ended = self._loop.time()
        c.durations.observe(ended - began)
        self.stats["probes"] += 1
        self._results.append((key, c, result, ended))
        self._pump_next_turn()

    def _apply(self, key: CheckerKey, c: Checker, result: ProbeResult, ended: float) -> None:
        """A probe's result: move its checker (the next run counted from when the probe ended), and the
        pool on a verdict."""
        self._running.discard(key)
        if self.checkers.get(key) is not c:
            return  # removed by a reload while running
        verdict = c.result(result.ok, ended, reason=result.reason, weight=result.weight)
        if verdict is not None:
            self._verdict(key, verdict)
        elif not result.ok and key.log_all_failures:
            log.info("%s: attempt failed: %s", key.describe(), result.reason)
        if not self._stop.is_set():
            self._schedule(key)

    def _verdict(self, key: CheckerKey, verdict: Verdict) -> None:
        """A checker's new state: into the pool, its notifications out, its virtual servers to sync."""
        self.stats["verdicts"] += 1
        if self._first_verdict is None:
            self._first_verdict = time.perf_counter()
        if not verdict.up:
            log.info("%s failed: %s", key.describe(), verdict.reason)
        self.events.emit("check_verdict", check=key.describe(), up=verdict.up, reason=verdict.reason,
                         weight=verdict.weight)
        notes, changed = self.pool.verdict_changes(key, verdict)
        self._notify_all(notes)
        for vs in changed:
            self._mark_dirty(vs)

    def _stop_checks(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if self._builder is not None:
            self._builder.cancel()
        self._to_build.clear()
        self._due.clear()
        self._queued.clear()
        self._results.clear()
        self._running.clear()
        self._waiting.clear()
        for probe in self._connects.values():
            probe.cancel()
            self._in_flight -= 1
        self._connects.clear()
        self._connect_deadlines.clear()
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    # --- the kernel ---------------------------------------------------------------------------------------

    def _mark_dirty(self, vs: VirtualServerState) -> None:
        self._dirty.add(id(vs))
        if not self._sync_pending and self._loop is not None:
            self._sync_pending = True
            self._loop.call_soon(self._sync_dirty)

    def _sync_dirty(self) -> None:
        self._sync_pending = False
        if not self._sync_queued:
            self._sync_queued = True
            self._submit(self._sync_steps())

    def _sync_steps(self) -> Iterator[None]:
        """Apply what the virtual servers changed since the last sync need (planned when it starts)."""
        self._sync_queued = False
        dirty = self._dirty
        self._dirty = set()
        desired: dict[ServiceKey, Entry] = {}
        yield from self._desired_steps([vs for vs in self.pool.virtual_servers if id(vs) in dirty], desired)
        current = {k: self.kernel[k] for k in desired if k in self.kernel}
        ops: list[Op] = []
        yield from self._plan_steps(desired, current, ops)
        yield from self._apply_steps(ops)
        if self._first_verdict is not None:
            took = time.perf_counter() - self._first_verdict
            self._first_verdict = None
            self.stats["verdict_to_kernel_last"] = took
            self.stats["verdict_to_kernel_max"] = max(self.stats["verdict_to_kernel_max"], took)
        if self._full_resync_needed:
            self.resync()
        if self.on_change is not None:
            self.on_change()

    def resync(self) -> None:
        """Re-read the kernel's table and repair every difference from what kpd wants (after the kernel
        work already queued; the first slice at once when there is none)."""
        if not self._resync_queued:
            self._resync_queued = True
            self._submit(self._resync_steps())

    def _resync_steps(self) -> Iterator[None]:
        self._resync_queued = False
        self.stats["resyncs"] += 1
        self._full_resync_needed = False
        current: dict[ServiceKey, Entry] = {}
        try:
            for key, entry in self.driver.iter_dump():
                current[key] = entry
                yield
        except OSError as err:
            log.error("cannot read the IPVS table: %s", err)
            self._full_resync_needed = True
            return
        desired: dict[ServiceKey, Entry] = {}
        pending: set[ServiceKey] = set()
        yield from self._desired_steps(self.pool.virtual_servers, desired, pending)
        ops: list[Op] = []
        yield from self._plan_steps(desired, current, ops, managed=self.managed)
        # what verdicts changed since the last sync is not a repair: the sync queued for it comes after
        repairs = sum(op.service not in pending for op in ops)
        if repairs and self.ready:
            self.stats["repairs"] += 1
            log.warning("IPVS table differs from kpd's (changed behind kpd's back?): %d operations to repair",
                        repairs)
        self.kernel = copy_table(current)
        yield
        yield from self._apply_steps(ops)
        self.managed = set(desired)
        self.ready = True
        self._freeze_heap()
        if self.on_change is not None:
            self.on_change()

    def _freeze_heap(self) -> None:
        """Once the checkers are built and the table programmed: ``gc.freeze()`` (see the module's doc)."""
        if self.ready and not self._to_build and self._frozen is not self.pool:
            self._frozen = self.pool
            gc.freeze()

    def _release_steps(self) -> Iterator[None]:
        """Remove the services kpd manages (on stop)."""
        current: dict[ServiceKey, Entry] = {}
        try:
            for key, entry in self.driver.iter_dump():
                current[key] = entry
                yield
        except OSError as err:
            log.error("cannot read the IPVS table on stop: %s", err)
            current = self.kernel
        ops: list[Op] = []
        yield from self._plan_steps({}, current, ops, managed=self.managed)
        yield from self._apply_steps(ops)
        log.info("removed %d virtual services on stop", len(self.managed & set(current)))

    def _desired_steps(self, virtual_servers: list[VirtualServerState], out: dict[ServiceKey, Entry],
                       pending: set[ServiceKey] | None = None) -> Iterator[None]:
        """Add the desired entries of ``virtual_servers`` to ``out``, one virtual server per step (and to
        ``pending`` the services of those with changes waiting for a sync)."""
        for vs in virtual_servers:
            entries = self.pool.entries(vs)
            out.update(entries)
            if pending is not None and id(vs) in self._dirty:
                pending.update(entries)
            yield

    def _plan_steps(self, desired: dict[ServiceKey, Entry], current: dict[ServiceKey, Entry], out: list[Op],
                    *, managed: set[ServiceKey] | frozenset[ServiceKey] = frozenset()) -> Iterator[None]:
        """Append the reconciler's plan to ``out``, one service per step."""
        for ops in iter_plan(desired, current, managed=managed):
            out.extend(ops)
            yield

    def _apply_steps(self, ops: list[Op]) -> Iterator[None]:
        """Apply ``ops`` one per step, keeping the mirror of the kernel's table in line (O(1) each). A
        driver with ``apply_all`` gets them ``APPLY_CHUNK`` at a time (one netlink message), at the
        first step of each chunk; each op's outcome is still handled in its own step."""
        ApplyAll = Callable[[list[Op]], list[tuple[Op, OSError]]]
        apply_all: ApplyAll | None = getattr(self.driver, "apply_all", None)
        if apply_all is None:
            for op in ops:
                try:
                    self.driver.apply(op)
                except Exception as err:
                    self._applied(op, err)
                else:
                    self._applied(op, None)
                yield
            return
        for start in range(0, len(ops), APPLY_CHUNK):
            chunk = ops[start:start + APPLY_CHUNK]
            failed: dict[int, Exception] = {}
            try:
                failed = {id(op): err for op, err in apply_all(chunk)}
            except Exception as err:  # the batch as a whole (e.g. no answer): none of it is known applied
                failed = dict.fromkeys(map(id, chunk), err)
            for op in chunk:
                self._applied(op, failed.get(id(op)))
                yield

    def _applied(self, op: Op, err: Exception | None) -> None:
        """Account for one operation the kernel did (``err`` None) or refused."""
        self.ipvs_ops[str(op.service), op.kind.name.lower(), "ok" if err is None else "error"] += 1
        self.events.emit("ipvs_operation", op=op.kind.name.lower(), service=str(op.service), detail=str(op),
                         ok=err is None, error=None if err is None else str(err))
        if err is not None:
            self.stats["ipvs_errors"] += 1
            log.error("IPVS %s failed: %s", op, err)
            self._full_resync_needed = True
            return
        self.stats["ipvs_ops"] += 1
        log.debug("IPVS %s", op)
        try:
            apply_in_place(self.kernel, op)
        except OSError:
            self._full_resync_needed = True
        if op.item is not None:
            self.managed.add(op.service)

    # --- running kernel work in slices --------------------------------------------------------------------

    def _submit(self, work: Iterator[None]) -> None:
        """Queue ``work``; with nothing queued before it, run its first slice now."""
        self._work.append(work)
        if self._writer is None and not self._in_slice:
            self._run_slice()
            if self._work and self._loop is not None:
                self._writer = self._loop.create_task(self._write(), name="ipvs writer")

    def _run_slice(self) -> None:
        self._in_slice = True
        try:
            self._run_steps()
        finally:
            self._in_slice = False

    def _run_steps(self) -> None:
        deadline = time.perf_counter() + APPLY_SLICE
        steps = 0
        while self._work:
            try:
                for _ in self._work[0]:
                    steps += 1
                    if steps >= APPLY_BATCH or time.perf_counter() >= deadline:
                        return
            except Exception:  # a bug in one piece of work must not stop the others
                log.exception("IPVS work failed")
                self._full_resync_needed = True
            self._work.popleft()

    async def _write(self) -> None:
        try:
            while self._work:
                await asyncio.sleep(0)
                self._run_slice()
        finally:
            self._writer = None

    async def settled(self) -> None:
        """Wait until the kernel work queued so far (and any queued meanwhile) is done."""
        while self._writer is not None:
            writer = self._writer
            await asyncio.wait({writer})
            if self._writer is writer:  # pragma: no cover  (its finally clears it)
                break

    async def _resync_loop(self) -> None:
        """Re-read the table every ``resync_interval`` seconds; a large table (whose dump is costly) less
        often, so that resyncs never take more than about 5 % of the loop."""
        pause = self.resync_interval
        while True:
            await asyncio.sleep(pause)
            started = time.perf_counter()
            self.resync()
            await self.settled()
            pause = max(self.resync_interval, 20 * (time.perf_counter() - started))

    # --- ha_suspend ---------------------------------------------------------------------------------------

    def _update_suspended(self) -> None:
        for vs in self.pool.virtual_servers:
            if not vs.spec.ha_suspend:
                continue
            try:
                suspended = not any(self.is_local(a) for a in vs.spec.suspend_addresses)
            except OSError as err:
                log.warning("cannot tell whether %s is local: %s", vs.spec.name, err)
                continue
            if suspended != vs.suspended:
                vs.suspended = suspended
                log.info("%sctivating healthchecks for VS %s (its address is %s)",
                         "Dea" if suspended else "A", vs.spec.name, "not local" if suspended else "local")

    async def _suspend_loop(self) -> None:
        if not any(vs.spec.ha_suspend for vs in self.pool.virtual_servers):
            return
        while True:
            await asyncio.sleep(SUSPEND_POLL)
            self._update_suspended()

    # --- notifications ------------------------------------------------------------------------------------

    def _notify_all(self, notes: list[Notification]) -> None:
        for note in notes:
            log.info("%s", note.message)
            for script in note.scripts:
                self._run_script(script)
            for fifo in self._fifos:
                fifo.write_line(note.fifo_line)
        mails, self.pool.mails = self.pool.mails, []
        if self._mailer is not None:
            for subject, body in mails:
                self._mailer.send(subject, body)

    def _run_script(self, script: NotifyScript, *, timeout: float = NOTIFY_TIMEOUT) -> None:
        """Queue a notify script, if the one script-security rule lets it run (as the user it names)."""
        self._notify_scripts.run(self.config.global_defs, script.argv, timeout=timeout, user=script.user)

    # --- reporting ----------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        return self.pool.status({**self.checkers, **self.files.states})

    def summary(self) -> dict[str, Any]:
        up, total = self.pool.counts()
        return {"real_servers_up": up, "real_servers": total,
                "virtual_servers": len(self.pool.virtual_servers), "ready": self.ready,
                "late_probes": self.stats["late_probes"],
                "max_lateness": round(self.stats["max_lateness"], 3)}

