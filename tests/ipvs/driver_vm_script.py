"""Run inside the kpd test VM by test_ipvs_driver_vm.py: the IPVS driver against the real kernel.

Prints one JSON document: for each step, whether the driver's dump equals what was asked, the next plan
(must be empty: no perpetual difference from kernel normalisation), and `ipvsadm -Ln` as the oracle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv4Address, ip_address

from keepalived_py.ipvs.driver import IpvsDriver, IpvsError
from keepalived_py.ipvs.reconcile import Op, OpKind, plan
from keepalived_py.ipvs.state import Dest, Entry, Forward, Service, ServiceKey


def ipvsadm() -> str:
    return subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True).stdout


def ip(text: str):
    return ip_address(text)


TCP = ServiceKey.for_address("TCP", ip("10.0.0.1"), 80)
UDP = ServiceKey.for_address("UDP", ip("10.0.0.1"), 53)
SCTP = ServiceKey.for_address("SCTP", ip("10.0.0.1"), 9999)
FWM = ServiceKey.for_fwmark(7)
V6 = ServiceKey.for_address("TCP", ip("2001:db8::1"), 443)
DESIRED = {
    TCP: Entry.of(Service(TCP, "rr", persistence_timeout=300,
                          persistence_netmask=IPv4Address("255.255.255.0")), [
        Dest(ip("10.0.1.1"), 8080, Forward.MASQ, 3, 100, 10),
        Dest(ip("10.0.1.2"), 80, Forward.DROUTE, 1),
        Dest(ip("10.0.1.3"), 80, Forward.TUNNEL, 0),
    ]),
    UDP: Entry.of(Service(UDP, "wrr"), [Dest(ip("10.0.1.1"), 53, Forward.MASQ, 2)]),
    SCTP: Entry.of(Service(SCTP, "sh", one_packet=True), [Dest(ip("10.0.1.4"), 9999, Forward.MASQ, 1)]),
    FWM: Entry.of(Service(FWM, "wlc"), [Dest(ip("10.0.1.5"), 0, Forward.DROUTE, 5)]),
    V6: Entry.of(Service(V6, "lc", persistence_timeout=60),
                 [Dest(ip("2001:db8::10"), 8443, Forward.MASQ, 4)]),
}


def main() -> int:
    out: dict[str, object] = {}
    d = IpvsDriver()
    ops = plan(DESIRED, d.dump())
    failures = d.apply_all(ops)
    dumped = d.dump()
    out["create"] = {"ops": len(ops), "failures": [str(e) for _, e in failures], "equal": dumped == DESIRED,
                     "dump": {str(k): repr(v) for k, v in dumped.items()},
                     "replan": [str(o) for o in plan(DESIRED, dumped)], "ipvsadm": ipvsadm()}
    changed = dict(DESIRED)
    e = DESIRED[UDP]
    changed[UDP] = Entry.of(e.service, [Dest(ip("10.0.1.1"), 53, Forward.MASQ, 9)])
    ops = plan(changed, d.dump())
    d.apply_all(ops)
    out["weight"] = {"ops": [str(o) for o in ops], "equal": d.dump() == changed, "ipvsadm": ipvsadm()}
    subprocess.run(["ipvsadm", "-e", "-t", "10.0.0.1:80", "-r", "10.0.1.1:8080", "-m", "-w", "7",
                    "-x", "100", "-y", "10"], check=True)
    ops = plan(changed, d.dump())
    out["external_weight"] = {"ops": [str(o) for o in ops]}
    d.apply_all(ops)
    subprocess.run(["ipvsadm", "-C"], check=True)
    ops = plan(changed, d.dump())
    d.apply_all(ops)
    out["external_flush"] = {"ops": len(ops), "equal": d.dump() == changed}
    smaller = {k: v for k, v in changed.items() if k != SCTP}
    smaller[TCP] = Entry.of(changed[TCP].service, [x for x in changed[TCP].dests.values() if x.port != 8080])
    ops = plan(smaller, d.dump(), managed=set(changed))
    d.apply_all(ops)
    out["delete"] = {"ops": [str(o) for o in ops], "equal": d.dump() == smaller, "ipvsadm": ipvsadm()}
    try:
        d.apply(Op(OpKind.ADD_SERVICE, UDP, changed[UDP].service))
        out["error"] = "no error"
    except IpvsError as err:
        out["error"] = str(err)
    d.flush()
    out["flush"] = {"empty": d.dump() == {}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
