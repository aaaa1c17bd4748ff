"""How the VRRP engine programs virtual addresses: a few at once, in the loop turn that asks for them (so a
new MASTER's gratuitous ARPs follow its first advert without a thread hop); many, or any queued behind
earlier work, on the address worker, in order."""

from __future__ import annotations

import asyncio
import threading
from ipaddress import ip_interface
from types import SimpleNamespace

from keepalived_py.config import load_config
from keepalived_py.vrrp.engine import INLINE_ADDRESS_CHANGES, VrrpEngine
from keepalived_py.vrrp.net import AddressSpec

CONF = """
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


class RecordingAddresses:
    """Stands in for AddressManager: records each call, its specs and the thread that made it."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, list[str], str]] = []
        self.block = block

    def _record(self, verb: str, specs: list[AddressSpec]) -> None:
        if self.block is not None:
            self.block.wait(10)
        self.calls.append((verb, [str(s.address) for s in specs], threading.current_thread().name))

    def add(self, specs: list[AddressSpec]) -> None:
        self._record("add", specs)

    def remove(self, specs: list[AddressSpec]) -> None:
        self._record("remove", specs)


def specs(n: int, base: int = 1) -> list[AddressSpec]:
    return [AddressSpec(ip_interface(f"192.0.2.{base + i}/24"), "eth0") for i in range(n)]


def engine_with(write_conf, addresses: RecordingAddresses) -> VrrpEngine:
    result = load_config(write_conf(CONF), host_checks=False)
    assert result.config is not None
    engine = VrrpEngine(result.config)
    engine._loop = asyncio.new_event_loop()
    engine._addresses = addresses  # type: ignore[assignment]
    return engine


def drain(engine: VrrpEngine) -> None:
    engine._addr_pool.submit(lambda: None).result(10)
    engine._addr_pool.shutdown(wait=True)
    assert engine._loop is not None
    engine._loop.close()


def test_few_address_changes_are_made_in_the_turn_that_asks_for_them(write_conf) -> None:
    rec = RecordingAddresses()
    engine = engine_with(write_conf, rec)
    inst = SimpleNamespace(name="VI_1")
    engine._program_specs(inst, specs(INLINE_ADDRESS_CHANGES), [])  # type: ignore[arg-type]
    # done before _program_specs returned, on this thread: no worker, no later loop turn
    assert [(verb, len(addrs), thread) for verb, addrs, thread in rec.calls] == [
        ("add", INLINE_ADDRESS_CHANGES, threading.current_thread().name)]
    assert engine._addresses_settled()
    drain(engine)


def test_many_address_changes_go_to_the_worker(write_conf) -> None:
    gate = threading.Event()
    rec = RecordingAddresses(block=gate)
    engine = engine_with(write_conf, rec)
    inst = SimpleNamespace(name="VI_1")
    engine._program_specs(inst, specs(INLINE_ADDRESS_CHANGES + 1), [])  # type: ignore[arg-type]
    assert rec.calls == [] and not engine._addresses_settled()
    gate.set()
    drain(engine)
    (verb, addrs, thread), = rec.calls
    assert verb == "add" and len(addrs) == INLINE_ADDRESS_CHANGES + 1 and thread.startswith("kpd-addr")


def test_a_small_change_queued_behind_worker_work_keeps_its_order(write_conf) -> None:
    gate = threading.Event()
    rec = RecordingAddresses(block=gate)
    engine = engine_with(write_conf, rec)
    inst = SimpleNamespace(name="VI_1")
    big = specs(INLINE_ADDRESS_CHANGES + 1)
    engine._program_specs(inst, [], big)  # type: ignore[arg-type]  # a large removal, still running
    engine._program_specs(inst, specs(1, base=200), [])  # type: ignore[arg-type]  # then an add of one
    assert rec.calls == []  # the add waits behind the removal instead of overtaking it
    gate.set()
    drain(engine)
    assert [(verb, addrs[:1]) for verb, addrs, _ in rec.calls] == [
        ("remove", ["192.0.2.1/24"]), ("add", ["192.0.2.200/24"])]
