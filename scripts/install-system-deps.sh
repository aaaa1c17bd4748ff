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
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# keepalived's Debian package starts a service; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now keepalived >/dev/null 2>&1 || true; fi
pkill -x keepalived 2>/dev/null || true
