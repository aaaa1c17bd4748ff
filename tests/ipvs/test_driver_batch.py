"""The driver's batches against a scripted kernel (no netlink socket): many requests per sendmsg, each
failure reported with its operation and errno, the others applied; dumps parsed from the receive buffer."""

from __future__ import annotations

import errno
import itertools
import struct
from collections import deque
from ipaddress import ip_address

import pytest
from test_codec import FAMILY, kernel_dest_reply, kernel_service_reply

from keepalived_py.ipvs import codec
from keepalived_py.ipvs.driver import IpvsDriver, IpvsError
from keepalived_py.ipvs.reconcile import Op, OpKind
from keepalived_py.ipvs.state import Dest, Entry, Forward, Service, ServiceKey

KEY = ServiceKey.for_address("TCP", ip_address("10.0.0.1"), 80)


def dest(last: int, weight: int = 1) -> Dest:
    return Dest(ip_address(f"10.0.1.{last}"), 8080, Forward.MASQ, weight)


class ScriptedKernel:
    """A socket whose kernel handles each request of a sendmsg in order and acknowledges it; ``refuse``
    maps a request's position (over the whole run) to an errno."""

    def __init__(self, refuse: dict[int, int] | None = None, per_datagram: int = 3) -> None:
        self.refuse = refuse or {}
        self.per_datagram = per_datagram  # acknowledgements the kernel packs in one datagram
        self.sends: list[list[bytes]] = []
        self.handled = 0
        self.queue: deque[bytes] = deque()
        self.dumps: dict[int, list[bytes]] = {}

    def sendmsg(self, buffers: list[bytes]) -> int:
        self.sends.append(list(buffers))
        data = b"".join(buffers)
        acks = []
        for _kind, seq, offset, length in codec.iter_messages(data, len(data)):
            code = self.refuse.get(self.handled, 0)
            self.handled += 1
            payload = data[offset:offset + (length if code else codec.HEADER.size)]
            acks.append(codec.HEADER.pack(20 + len(payload), codec.NLMSG_ERROR, 0, seq, 0)
                        + struct.pack("=i", -code) + payload)
        for i in range(0, len(acks), self.per_datagram):
            self.queue.append(b"".join(acks[i:i + self.per_datagram]))
        return len(data)

    def send(self, data: bytes) -> int:
        (_kind, seq, _offset, _length), *_ = codec.iter_messages(data, len(data))
        cmd = data[codec.HEADER.size]
        replies = self.dumps.get(cmd, [])
        fixed = [codec.HEADER.pack(len(r), FAMILY, 2, seq, 0) + r[codec.HEADER.size:] for r in replies]
        self.queue.append(b"".join(fixed))
        self.queue.append(codec.HEADER.pack(20, codec.NLMSG_DONE, 2, seq, 0) + b"\0\0\0\0")
        return len(data)

    def recv_into(self, buf: bytearray) -> int:
        data = self.queue.popleft()
        buf[:len(data)] = data
        return len(data)


def driver_with(kernel: ScriptedKernel, batch: int = 4) -> IpvsDriver:
    driver = IpvsDriver.__new__(IpvsDriver)
    driver._sock = kernel  # type: ignore[assignment]
    driver._seq = itertools.count(1)
    driver._buf = bytearray(1 << 16)
    driver._dest_reader = codec.DestReader()
    driver.batch = batch
    driver.family = FAMILY
    return driver


OPS = [Op(OpKind.ADD_SERVICE, KEY, Service(KEY, "wlc")),
       *(Op(OpKind.ADD_DEST, KEY, dest(i)) for i in range(1, 10))]


def test_many_requests_go_in_one_sendmsg_and_every_acknowledgement_is_collected():
    kernel = ScriptedKernel()
    driver = driver_with(kernel, batch=4)
    assert driver.apply_all(OPS) == []
    assert [len(s) for s in kernel.sends] == [4, 4, 2]
    assert kernel.handled == len(OPS) and not kernel.queue
    sent = [b for s in kernel.sends for b in s]
    assert sent == [codec.op_request(op, FAMILY, seq) for seq, op in enumerate(OPS, start=1)]


def test_a_refused_operation_is_reported_with_its_op_and_errno_and_the_others_are_applied():
    kernel = ScriptedKernel(refuse={2: errno.EEXIST, 5: errno.ENOENT})
    failed = driver_with(kernel).apply_all(OPS)
    assert [(op, err.errno, err.op) for op, err in failed] == [
        (OPS[2], errno.EEXIST, OPS[2]), (OPS[5], errno.ENOENT, OPS[5])]
    assert str(failed[0][1]) == f"{OPS[2]}: File exists"
    assert kernel.handled == len(OPS) and not kernel.queue


def test_apply_raises_the_refusal_of_its_one_operation():
    driver = driver_with(ScriptedKernel(refuse={0: errno.ESRCH}))
    with pytest.raises(IpvsError) as caught:
        driver.apply(OPS[1])
    assert caught.value.errno == errno.ESRCH and caught.value.op == OPS[1]
    assert str(caught.value) == f"{OPS[1]}: No such process"


def test_an_operation_that_cannot_be_encoded_is_reported_and_the_others_are_sent():
    bad = Op(OpKind.SET_DEST, KEY, dest(1, weight=2**32))
    kernel = ScriptedKernel()
    failed = driver_with(kernel).apply_all([OPS[0], bad, OPS[1]])
    assert [(op, err.errno) for op, err in failed] == [(bad, errno.EINVAL)]
    assert kernel.handled == 2


def test_acknowledgements_of_earlier_requests_are_skipped():
    kernel = ScriptedKernel()
    driver = driver_with(kernel)
    kernel.queue.append(codec.HEADER.pack(36, codec.NLMSG_ERROR, 0, 999, 0) + struct.pack("=i", -errno.EIO)
                        + codec.HEADER.pack(16, 0, 0, 999, 0))
    assert driver.apply_all(OPS[:2]) == []
    assert not kernel.queue


def test_a_dump_reads_every_service_then_its_real_servers():
    kernel = ScriptedKernel()
    v6 = ServiceKey.for_address("UDP", ip_address("2001:db8::1"), 53)
    services = [Service(KEY, "rr", 300), Service(v6, "wlc")]
    kernel.dumps[codec.CMD_GET_SERVICE] = [kernel_service_reply(s) for s in services]
    six = Dest(ip_address("2001:db8::10"), 8443, Forward.DROUTE, 4)
    kernel.dumps[codec.CMD_GET_DEST] = [kernel_dest_reply(d) for d in (dest(1), dest(2, 5))]
    table = driver_with(kernel).dump()
    assert table == {KEY: Entry.of(services[0], [dest(1), dest(2, 5)]),
                     v6: Entry.of(services[1], [dest(1), dest(2, 5)])}
    kernel.dumps[codec.CMD_GET_DEST] = [kernel_dest_reply(six)]
    assert driver_with(kernel).dests(v6) == [six]
