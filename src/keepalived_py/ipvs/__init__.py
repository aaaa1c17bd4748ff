"""IPVS: the table model (state), the pure reconciler (reconcile) and the netlink driver (driver)."""
