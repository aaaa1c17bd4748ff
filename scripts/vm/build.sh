#!/usr/bin/env bash
# Prepares the QEMU VM cache used by scripts/vm/run (real IPVS in a stock Debian kernel).
#
#   scripts/vm/build.sh            build <repo>/.cache/vm/ if missing or stale (fast no-op otherwise)
#   scripts/vm/build.sh --force    rebuild the initramfs even if the stamp matches
#
# What it does:
#   * installs the Debian packages it needs when missing (qemu-system-x86, busybox-static, cpio, kmod,
#     ipvsadm, iproute2, xz-utils);
#   * resolves the kernel package that `linux-image-amd64` depends on (e.g. linux-image-6.1.0-56-amd64),
#     `apt-get download`s it into .cache/vm/debs/ and `dpkg -x`es it into a scratch dir;
#   * builds an uncompressed initramfs: busybox-static, scripts/vm/init as /init, and the kernel modules
#     the VM needs (virtio/9p, overlay, IPVS + schedulers, conntrack/NAT/nftables/iptables, veth, bridge,
#     dummy, netem, ...) with every dependency taken from modules.dep, then `depmod`;
#   * writes .cache/vm/<kernel-package-version>/{vmlinuz,initrd.img,kver,stamp} and points
#     .cache/vm/current at it.
# The result is keyed by the kernel package version plus a hash of this script and scripts/vm/init, so
# editing either rebuilds the initramfs (from the cached .deb, no download). When apt cannot resolve the
# kernel package (no package lists, no registry) an existing cache is used as it is.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${KPD_VM_CACHE:-$repo/.cache/vm}
force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf 'vm-build: %s\n' "$*" >&2; }
die() { printf 'vm-build: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- host packages
apt_updated=0
apt_update_once() {
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
  fi
}

ensure_packages() {
  # probe -> package; a probe starting with / is a file, otherwise a command
  local -A need=(
    [qemu-system-x86_64]=qemu-system-x86
    [/bin/busybox]=busybox-static
    [cpio]=cpio
    [depmod]=kmod
    [modprobe]=kmod
    [ipvsadm]=ipvsadm
    [ip]=iproute2
    [dpkg-deb]=dpkg
    [flock]=util-linux
    [xz]=xz-utils
    [python3]=python3
  )
  local probe missing=()
  for probe in "${!need[@]}"; do
    if [[ $probe == /* ]]; then
      [[ -e $probe ]] || missing+=("${need[$probe]}")
    else
      command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe || -x /sbin/$probe ]] ||
        missing+=("${need[$probe]}")
    fi
  done
  # busybox-static puts a static binary at /bin/busybox; the dynamic `busybox` package does too
  if [[ -e /bin/busybox ]] && ! file_is_static /bin/busybox; then missing+=(busybox-static); fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [[ $(id -u) -eq 0 ]] || die "missing packages ${missing[*]}; install them as root"
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get"
  log "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      die "apt-get install ${missing[*]} failed"
  fi
}

file_is_static() {
  # no PT_INTERP program header <=> statically linked; avoids needing `file`
  ! LC_ALL=C grep -qa '/lib64/ld-linux' "$1"
}

PATH=$PATH:/usr/sbin:/sbin
ensure_packages

# ---------------------------------------------------------------- kernel package
resolve_kernel_pkg() {
  # prints "<package> <version>" for the package linux-image-amd64 depends on, or nothing
  local pkg ver
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ {print $2; exit}')
  [[ -n $pkg ]] || return 0
  ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" {print $2; exit}')
  [[ -n $ver && $ver != "(none)" ]] || return 0
  printf '%s %s\n' "$pkg" "$ver"
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # one build at a time; concurrent callers wait and then find the cache ready

script_hash=$(cat "$here/build.sh" "$here/init" | sha256sum | cut -c1-16)

read -r kpkg kver_pkg < <(resolve_kernel_pkg; echo) || true
if [[ -z ${kpkg:-} ]]; then
  apt_update_once
  read -r kpkg kver_pkg < <(resolve_kernel_pkg; echo) || true
fi
if [[ -z ${kpkg:-} ]]; then
  if [[ -e $cache/current/stamp ]]; then
    log "cannot resolve linux-image-amd64 with apt; using the existing cache $(readlink "$cache/current")"
    exit 0
  fi
  die "cannot resolve the kernel package that linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
fi

key=$kver_pkg
out=$cache/$key
stamp="$kpkg $kver_pkg $script_hash"
if [[ $force -eq 0 && -f $out/stamp && $(cat "$out/stamp") == "$stamp" &&
      -f $out/vmlinuz && -f $out/initrd.img ]]; then
  [[ $(readlink "$cache/current" 2>/dev/null) == "$key" ]] || ln -sfn "$key" "$cache/current"
  exit 0
fi

log "building the VM cache for $kpkg $kver_pkg in $out"
mkdir -p "$cache/debs"
deb=$(find "$cache/debs" -maxdepth 1 -name "${kpkg}_${kver_pkg//:/%3a}_*.deb" -print -quit)
if [[ -z $deb ]]; then
  log "apt-get download $kpkg=$kver_pkg"
  ( cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$kpkg=$kver_pkg" >&2 ) || {
    apt_update_once
    ( cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$kpkg=$kver_pkg" >&2 )
  } || die "apt-get download $kpkg=$kver_pkg failed"
  deb=$(find "$cache/debs" -maxdepth 1 -name "${kpkg}_*.deb" -newer "$cache/.lock" -print -quit)
  [[ -n $deb ]] || deb=$(find "$cache/debs" -maxdepth 1 -name "${kpkg}_*.deb" -print -quit)
  [[ -n $deb ]] || die "apt-get download left no ${kpkg}_*.deb in $cache/debs"
  # keep only this kernel's .deb
  find "$cache/debs" -maxdepth 1 -name '*.deb' ! -path "$deb" -delete
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | head -n1)
[[ -n $kver && -f $work/kernel/boot/vmlinuz-$kver ]] || die "no vmlinuz/modules in $deb"
kmods=$work/kernel/lib/modules/$kver
depmod -b "$work/kernel" "$kver"

has_pvh_note() { # ELF64 file with the Xen note XEN_ELFNOTE_PHYS32_ENTRY (18) that QEMU boots as PVH
  python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
if data[:4] != b"\x7fELF" or data[4] != 2:
    sys.exit(1)
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
for i in range(phnum):
    p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
    if p_type != 4:  # PT_NOTE
        continue
    pos, end = p_offset, p_offset + p_filesz
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
        if name == b"Xen" and ntype == 18:
            sys.exit(0)
        pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
sys.exit(1)
PY
}

extract_vmlinux() { # BZIMAGE OUT: decompress the kernel payload; succeed only for an ELF with a PVH note
  local offset magic tool
  for magic in xz gzip zstd; do
    case $magic in
      xz) offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -n1 | cut -d: -f1); tool="xz -dc --single-stream" ;;
      gzip) offset=$(LC_ALL=C grep -obUaP '\x1f\x8b\x08' "$1" | head -n1 | cut -d: -f1); tool="gzip -dc" ;;
      zstd) offset=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$1" | head -n1 | cut -d: -f1); tool="zstd -qdc" ;;
    esac
    [[ -n $offset ]] || continue
    command -v "${tool%% *}" >/dev/null 2>&1 || continue
    tail -c +$((offset + 1)) "$1" | $tool >"$2" 2>/dev/null || true
    has_pvh_note "$2" && return 0
  done
  return 1
}

# ---------------------------------------------------------------- modules
# Named modules (loaded at boot by /init, plus whatever depends on them) ...
named=(
  virtio_pci virtio_rng 9pnet_virtio 9p overlay
  crc32c_generic libcrc32c
  nf_conntrack nf_nat nf_defrag_ipv4 nf_defrag_ipv6
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_sed ip_vs_nq
  ip_vs_lblc ip_vs_lblcr ip_vs_fo ip_vs_ovf ip_vs_twos ip_vs_ftp
  veth bridge dummy macvlan ipvlan vrf ifb bonding tun vxlan 8021q ipip ip_gre sch_netem
  iptable_nat iptable_filter iptable_mangle ip6table_nat ip6table_filter nft_nat nft_masq nft_chain_nat
  nft_compat nft_ct nft_reject_inet nf_tables
  inet_diag tcp_diag udp_diag raw_diag unix_diag packet_diag netlink_diag
)
# ... and whole directories, so that the kernel can autoload any of them on demand (modprobe_path is
# /sbin/modprobe of the initramfs, which stays the kernel's root: /init only chroots).
dirs=(
  kernel/net/netfilter kernel/net/ipv4 kernel/net/ipv6 kernel/net/sched kernel/net/bridge
  kernel/net/8021q kernel/net/packet kernel/net/unix kernel/net/netlink kernel/net/llc kernel/net/802
)
want=()
for m in "${named[@]}"; do
  if modprobe -d "$work/kernel" -S "$kver" -n -q "$m" 2>/dev/null; then want+=("$m"); fi
done
for d in "${dirs[@]}"; do
  [[ -d $kmods/$d ]] || continue
  while IFS= read -r f; do
    f=${f##*/}; f=${f%%.ko*}; want+=("$f")
  done < <(find "$kmods/$d" -name '*.ko*')
done
mapfile -t files < <(modprobe -d "$work/kernel" -S "$kver" --show-depends -a "${want[@]}" 2>/dev/null |
                     awk '$1 == "insmod" {print $2}' | sort -u)
[[ ${#files[@]} -gt 20 ]] || die "module dependency resolution found only ${#files[@]} files"

rootfs=$work/initramfs
mkdir -p "$rootfs"/{bin,sbin,dev,proc,sys,tmp,run,host,results,newroot,ovl,etc,root} "$rootfs/lib/modules/$kver"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox || -e $rootfs/bin/$applet ]] || ln -s busybox "$rootfs/bin/$applet"
done
ln -s ../bin/busybox "$rootfs/sbin/modprobe"   # the kernel's modprobe_path
cp "$here/init" "$rootfs/init"
chmod 755 "$rootfs/init"
for f in "${files[@]}"; do
  rel=${f#"$kmods"/}
  mkdir -p "$rootfs/lib/modules/$kver/$(dirname "$rel")"
  case $f in
    *.ko) cp "$f" "$rootfs/lib/modules/$kver/$rel" ;;
    *.ko.xz) xz -dc "$f" >"$rootfs/lib/modules/$kver/${rel%.xz}" ;;
    *.ko.zst) zstd -qdc "$f" >"$rootfs/lib/modules/$kver/${rel%.zst}" ;;
    *.ko.gz) gzip -dc "$f" >"$rootfs/lib/modules/$kver/${rel%.gz}" ;;
    *) die "unexpected module file $f" ;;
  esac
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [[ -f $kmods/$f ]] && cp "$kmods/$f" "$rootfs/lib/modules/$kver/"
done
depmod -b "$rootfs" "$kver"
echo "$kver" >"$rootfs/etc/kver"
log "initramfs: ${#files[@]} modules, $(du -sh "$rootfs" | cut -f1)"

# Uncompressed cpio: under TCG the kernel unpacks it faster than it would inflate a gzip.
mkdir -p "$out.new"
( cd "$rootfs" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet ) >"$out.new/initrd.img"
cp "$work/kernel/boot/vmlinuz-$kver" "$out.new/vmlinuz"
# The uncompressed ELF vmlinux boots through its PVH entry point (CONFIG_PVH): QEMU loads it directly,
# which saves the 2-3 s that decompressing the bzImage takes under TCG. scripts/vm/kpdvm.py falls back
# to vmlinuz when vmlinux is absent.
if extract_vmlinux "$out.new/vmlinuz" "$out.new/vmlinux.tmp"; then
  mv "$out.new/vmlinux.tmp" "$out.new/vmlinux"
else
  rm -f "$out.new/vmlinux.tmp"
  log "warning: could not extract an ELF vmlinux with a PVH note; the VM will boot the slower bzImage"
fi
echo "$kver" >"$out.new/kver"
echo "$kpkg" >"$out.new/package"
echo "$stamp" >"$out.new/stamp"
rm -rf "$out"
mv "$out.new" "$out"
ln -sfn "$key" "$cache/current"
# drop caches of other kernel versions
for d in "$cache"/*/; do
  d=${d%/}
  case $(basename "$d") in "$key"|debs|current) ;; *) rm -rf "$d" ;; esac
done
log "done: $out ($kver)"
