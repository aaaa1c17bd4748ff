"""The names of every file kpd keeps in its runtime directory (default ``/run/kpd``), in one place.

The directory is root-only (0700); every file in it is created 0600 without following symlinks
(:mod:`keepalived_py.runtime_files`).
"""

from __future__ import annotations

#: the parent's pid (``kpd start`` refuses to run beside a live one)
PID_FILE = "kpd.pid"
#: the parent's heartbeat listener; each child connects once and beats on that connection
HEARTBEAT_SOCKET = "heartbeat.sock"
#: the parent's control listener (``kpd status``, ``kpd reload``, ``kpd stop``)
CONTROL_SOCKET = "control.sock"
#: the configuration the parent validated, handed to the children (:mod:`keepalived_py.config.snapshot`)
SNAPSHOT_FILE = "config.pickle"
#: SIGUSR1 and SIGUSR2 dumps
STATE_DUMP = "kpd-state.json"
STATS_DUMP = "kpd-stats.json"
#: each child's status, rewritten as it changes
VRRP_STATUS = "vrrp-status.json"
CHECK_STATUS = "check-status.json"
#: the process groups of each child's notify FIFO scripts (a child started after a killed one kills them)
VRRP_FIFO_SCRIPTS = "vrrp-fifo-scripts.json"
CHECK_FIFO_SCRIPTS = "check-fifo-scripts.json"
#: a large control answer goes through a private file, one per request:
#: ``control-reply-<32 hex>.json`` (runtime_files.REPLY_FILE_PATTERN)
