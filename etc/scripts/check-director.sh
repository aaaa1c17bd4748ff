#!/bin/sh
# check-director.sh -- vrrp_script: is this director fit to hold the VIP?
#
# Exits 0 when the local HTTP service answers HOST:PORT/PATH with a 2xx or 3xx status within TIMEOUT
# seconds, 1 otherwise (connection refused, timeout, HTTP 4xx/5xx). keepalived treats any non-zero exit as
# a failure; after "fall" failures it applies the vrrp_script's weight (or FAULT without weight).
#
# usage: check-director.sh [HOST [PORT [PATH [TIMEOUT]]]]   defaults: 127.0.0.1 80 / 2
# Use from keepalived.conf:
#     vrrp_script chk_director {
#         script "/usr/local/libexec/kpd/check-director.sh 127.0.0.1 80 /health"
#         interval 2
#         timeout 3
#     }
# Keep TIMEOUT below the vrrp_script's timeout, or the script is killed and counted as failed anyway.
# Dependencies: curl.
set -eu

host=${1:-127.0.0.1}
port=${2:-80}
path=${3:-/}
timeout=${4:-2}

case $host in
    *:*) url_host="[$host]" ;;  # IPv6 literal
    *) url_host=$host ;;
esac

code=$(curl --silent --output /dev/null --max-time "$timeout" --write-out '%{http_code}' \
    "http://$url_host:$port$path") || code=000

case $code in
    2??|3??) exit 0 ;;
    *) exit 1 ;;
esac
