"""``python -m keepalived_py`` runs the ``kpd`` command line."""

import sys

from keepalived_py.cli import main

sys.exit(main())
