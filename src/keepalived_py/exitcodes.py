"""Process exit codes, named once.

``kpd check-config`` mirrors ``keepalived -t`` exactly as keepalived 2.2 implements it (its
``KEEPALIVED_CHK_EXIT_*`` codes): 0 valid, 4 the config cannot run, 5 it has errors but would run,
6 scripts would run without ``enable_script_security``.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # a runtime failure not covered below
    USAGE = 2  # bad command line (argparse's own code)
    CHILD_FATAL = 3  # a child cannot run on this host at all (e.g. no IPVS in the kernel): the daemon stops
    CONFIG_FATAL = 4  # the configuration cannot run (keepalived's KEEPALIVED_CHK_EXIT_CONFIG)
    CONFIG_ERRORS = 5  # errors, but the configuration would run (KEEPALIVED_CHK_EXIT_CONFIG_TEST)
    CONFIG_SCRIPT_SECURITY = 6  # scripts without enable_script_security (..._CONFIG_TEST_SECURITY)
