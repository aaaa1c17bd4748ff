#!/usr/bin/env bash
# Runs COMMAND while one busy-looping process per CPU keeps every core busy; exits with COMMAND's status.
#
#   scripts/with-cpu-hog.sh [-n HOGS] COMMAND [ARG...]
#
# The hogs run at normal priority (the point is a machine whose CPUs other work competes for, as on a
# shared CI runner). They are killed when COMMAND ends or fails, and when this script is interrupted:
# Ctrl-C reaches COMMAND, SIGTERM and SIGHUP are passed on to it, and the hogs go once it has stopped.
# Each hog also exits by itself as soon as this script is gone (even after a SIGKILL), so none outlives
# the run.
set -euo pipefail

usage() { echo "usage: $0 [-n HOGS] COMMAND [ARG...]   (HOGS: default one per CPU, $(nproc))" >&2; exit 2; }

hogs=$(nproc)
while getopts "n:h" opt; do
  case $opt in
    n) hogs=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
[[ $hogs =~ ^[0-9]+$ ]] || usage

me=$$
pids=()

stop_hogs() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_hogs EXIT

hog() {
  # busy arithmetic; every 100,000 rounds, make sure the script that started us still runs
  local i
  while kill -0 "$me" 2>/dev/null; do
    i=0
    while [ $i -lt 100000 ]; do i=$((i + 1)); done
  done
}

for ((n = 0; n < hogs; n++)); do
  hog &
  pids+=($!)
done
echo "with-cpu-hog: $hogs busy-looping processes (pids ${pids[*]:-none}) while running: $*" >&2

# COMMAND runs in the background so that this script can act on signals while it runs (bash runs a trap
# only once its foreground command has finished), with SIGINT restored (a non-interactive shell's background
# commands ignore it): Ctrl-C reaches COMMAND straight from the terminal, as it would without this script.
( trap - INT QUIT; exec "$@" ) &
cmd=$!
forward() { kill -"$1" "$cmd" 2>/dev/null || true; }
trap : INT  # COMMAND got it too (same process group); it decides how to stop
trap 'forward TERM' TERM
trap 'forward HUP' HUP
while :; do
  status=0
  wait "$cmd" || status=$?  # returns early (> 128) when a trapped signal arrives
  kill -0 "$cmd" 2>/dev/null || break
done
exit "$status"
