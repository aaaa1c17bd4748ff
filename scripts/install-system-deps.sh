#!/usr/bin/env bash
# Installs the Debian packages kpd's test suite needs, only those missing.
# Runs as root on Debian/Ubuntu; elsewhere it says what is missing and exits non-zero.
set -euo pipefail

# command-or-file -> Debian package
declare -A NEED=(
  [ip]=iproute2
  [keepalived]=keepalived
  [ipvsadm]=ipvsadm
  [tcpdump]=tcpdump
  [iptables]=iptables
  [nft]=nftables
  [qemu-system-x86_64]=qemu-system-x86
  [/bin/busybox]=busybox-static
  [cpio]=cpio
  [depmod]=kmod
  [make]=make
  [promtool]=prometheus
)

missing=()
for probe in "${!NEED[@]}"; do
  if [[ $probe == /* ]]; then
    [[ -e $probe ]] || missing+=("${NEED[$probe]}")
  else
    command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe || -x /sbin/$probe ]] || missing+=("${NEED[$probe]}")
  fi
done
# python3-venv is needed only where python3 lacks ensurepip
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]} (install them as root with apt-get)" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# The Debian packages keepalived and prometheus (which brings promtool) enable and start a service; the tests
# run their own keepalived instances and need only promtool. Only for those this run installs: keep the new
# services from starting (a temporary policy-rc.d that answers 101 "action forbidden", only if the host has
# none of its own), then disable those units. A keepalived or prometheus already running on this host (a
# production director, a monitoring server) is never stopped, and nothing is ever killed by name.
services=()
for pkg in "${missing[@]}"; do
  case $pkg in keepalived | prometheus) services+=("$pkg") ;; esac
done
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ${#services[@]} -gt 0 && ! -e $policy && ! -L $policy ]]; then
  printf '#!/bin/sh\n# temporary, from kpd scripts/install-system-deps.sh: start no service\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  own_policy=true
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if $own_policy; then
  rm -f "$policy"
  trap - EXIT
fi
for service in "${services[@]}"; do
  if command -v systemctl >/dev/null 2>&1; then systemctl disable "$service" >/dev/null 2>&1 || true; fi
  if $own_policy; then
    echo "$service was installed by this run: its service was not started and is now disabled; no running $service was touched"
  else
    echo "$service was installed by this run: its service is now disabled; this host has its own $policy, so the package may have started it (stop it with 'systemctl stop $service' if unwanted); no running $service was touched"
  fi
done
