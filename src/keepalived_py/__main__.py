"""``python -m keepalived_py`` runs the ``kpd`` command line."""

from keepalived_py.cli import run

run()
