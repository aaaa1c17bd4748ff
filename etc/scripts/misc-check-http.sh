#!/bin/sh
# misc-check-http.sh -- MISC_CHECK: is the real server's HTTP service up?
#
# usage: misc-check-http.sh HOST PORT PATH [WEIGHT]
# Exit status, as MISC_CHECK reads it:
#     0      up: HOST:PORT answered PATH with a 2xx or 3xx status within 3 seconds
#     1      down (connection refused, timeout, any other status)
#     2..255 only when WEIGHT is given (0..253): up, and with "misc_dynamic" in the MISC_CHECK block
#            keepalived sets the real server's weight to exit status - 2, i.e. to WEIGHT.
#            Without misc_dynamic any non-zero exit is a failure: give WEIGHT only with misc_dynamic.
# Use from keepalived.conf:
#     MISC_CHECK {
#         misc_path "/usr/local/libexec/kpd/misc-check-http.sh 198.51.100.24 8080 /health"
#         misc_timeout 5
#     }
# Dependencies: curl. Exit 1 also on wrong usage (a misconfigured check must not keep a server up).
set -eu

if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
    echo "usage: $0 HOST PORT PATH [WEIGHT]" >&2
    exit 1
fi
host=$1
port=$2
path=$3
weight=${4:-}

case $host in
    *:*) url_host="[$host]" ;;  # IPv6 literal
    *) url_host=$host ;;
esac

code=$(curl --silent --output /dev/null --max-time 3 --write-out '%{http_code}' \
    "http://$url_host:$port$path") || code=000

case $code in
    2??|3??) ;;
    *) exit 1 ;;
esac

if [ -z "$weight" ]; then
    exit 0
fi
case $weight in
    ''|*[!0-9]*) echo "$0: WEIGHT must be 0..253, not $weight" >&2; exit 1 ;;
esac
if [ "$weight" -gt 253 ]; then
    echo "$0: WEIGHT must be 0..253, not $weight" >&2
    exit 1
fi
exit "$(expr "$weight" + 2)"
