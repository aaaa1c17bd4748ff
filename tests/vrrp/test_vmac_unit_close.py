"""VmacManager closes only what it opened: an AddressManager lent to it stays open for its owner."""

from __future__ import annotations

from keepalived_py.vrrp.net.vmac import VmacManager


class LentAddresses:
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_close_leaves_a_lent_address_manager_open():
    lent = LentAddresses()
    manager = VmacManager(addresses=lent)  # type: ignore[arg-type]
    manager.close()
    assert lent.closed == 0

