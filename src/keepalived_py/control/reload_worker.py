"""A reload's configuration, loaded and validated off the parent's event loop.

Loading a configuration can take seconds (a 136k-line config, a slow template) and a hostile template can
try to take all the CPU and memory there is. The parent therefore forks a worker that loads the
configuration under hard limits (CPU seconds, address space) and sends the :class:`LoadResult` back through
a pipe; the parent keeps reading heartbeats and serving ``kpd status`` meanwhile and collects the result
when the pipe closes. A worker that exceeds its wall-clock deadline is killed; every failure becomes a
rejected reload with a reason, never a stalled or dead parent.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
from dataclasses import dataclass

from keepalived_py.config.load import LoadResult, load_config
from keepalived_py.control.child_fork import importing
from keepalived_py.procname import die_with_parent

#: CPU seconds a reload's load may use
CPU_SECONDS = 120
#: address space a reload's load may map
MEMORY_BYTES = 4 * 1024**3
#: wall-clock seconds before the worker is killed
DEADLINE = 180.0
#: the largest answer accepted from the worker
MAX_RESULT_BYTES = 512 * 1024 * 1024


@dataclass
class Failure:
    """The worker could not produce a result."""

    reason: str


class ReloadWorker:
    def __init__(self, config_path: str, *, vars_files: list[str], config_id: str | None,
                 started: float, deadline: float = DEADLINE, cpu_seconds: int = CPU_SECONDS,
                 memory_bytes: int = MEMORY_BYTES):
        self.started = started
        self.deadline = started + deadline
        self.result: LoadResult | Failure | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        with importing():  # not while a thread of the parent imports (see child_fork)
            pid = os.fork()
        if pid == 0:  # the worker: never returns
            os.close(rfd)
            _work(wfd, config_path, vars_files, config_id, cpu_seconds, memory_bytes)
        os.close(wfd)
        os.set_blocking(rfd, False)
        self.pid: int | None = pid
        self.fd: int | None = rfd

    def readable(self) -> bool:
        """Read what the worker sent; True once its pipe is closed (the result is then decided)."""
        assert self.fd is not None
        while True:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                return False
            if not data:
                break
            self._size += len(data)
            if self._size > MAX_RESULT_BYTES:
                self.kill()
                self._finish(Failure("the configuration loader's answer is too large"))
                return True
            self._chunks.append(data)
        try:
            result = pickle.loads(b"".join(self._chunks))
        except Exception as err:  # a worker killed mid-answer
            self._finish(Failure(f"the configuration loader ended without an answer ({type(err).__name__})"))
        else:
            self._finish(result if isinstance(result, LoadResult | Failure)
                         else Failure("the configuration loader answered nonsense"))
        return True

    def exited(self, status: int) -> None:
        """The reaper collected the worker; a worker killed by a limit explains the missing answer."""
        self.pid = None
        code = os.waitstatus_to_exitcode(status)
        if self.result is None and self.fd is not None:
            self.readable()
        if isinstance(self.result, Failure) and code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": f"it used more than {CPU_SECONDS} s of CPU",
                   "SIGKILL": "it was killed (deadline or memory)"}.get(name, f"it died of {name}")
            self.result = Failure(f"loading the configuration failed: {why}")

    def overdue(self, now: float) -> bool:
        return self.result is None and now >= self.deadline

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _finish(self, result: LoadResult | Failure) -> None:
        self.result = result
        self._chunks = []
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> None:
        self.kill()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _work(wfd: int, config_path: str, vars_files: list[str], config_id: str | None,
          cpu_seconds: int, memory_bytes: int) -> None:
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        die_with_parent(signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        answer: LoadResult | Failure
        try:
            # the parent already runs in its network namespace: the checks look where we are
            answer = load_config(config_path, vars_files=vars_files, config_id=config_id, namespace="")
        except MemoryError:
            answer = Failure(f"loading the configuration needed more than {memory_bytes >> 20} MiB")
        except Exception as err:
            answer = Failure(f"loading the configuration failed: {type(err).__name__}: {err}")
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]
    except BaseException:
        code = 1
    finally:
        os._exit(code)
