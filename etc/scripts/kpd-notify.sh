#!/bin/sh
# kpd-notify.sh -- log a VRRP state transition to syslog.
#
# Use as a vrrp_instance (or vrrp_sync_group) "notify" script:
#     notify /usr/local/libexec/kpd/kpd-notify.sh
# keepalived (and kpd) run it without a shell, as script_user, with four arguments:
#     TYPE NAME STATE PRIORITY
#     TYPE      INSTANCE or GROUP
#     NAME      the vrrp_instance / vrrp_sync_group name
#     STATE     MASTER, BACKUP, FAULT, STOP (or DELETED)
#     PRIORITY  the instance's priority (always 0 for a GROUP)
# e.g.  kpd-notify.sh INSTANCE VI_WEB MASTER 150
# It logs one line, tag "kpd-notify", facility daemon, and exits with logger's status.
# Dependencies: logger (util-linux). Exit 2 on wrong usage.
set -eu

if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
    echo "usage: $0 INSTANCE|GROUP NAME STATE [PRIORITY]" >&2
    exit 2
fi
type=$1
name=$2
state=$3
priority=${4:-0}

case $state in
    FAULT) level=daemon.warning ;;
    *) level=daemon.notice ;;
esac

exec logger -t kpd-notify -p "$level" -- "$type $name is now $state (priority $priority)"
