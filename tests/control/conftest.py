"""The control-plane tests' lab fixture (two hosts, ``a`` and ``b``)."""

from kpd_nodes import lab  # noqa: F401
