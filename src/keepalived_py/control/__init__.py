"""The control plane: the parent process that starts, watches and restarts the VRRP and Checkers children."""
