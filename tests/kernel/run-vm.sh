#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run one command in a qemu VM booted from KERNEL, with this host's own root
# filesystem as the VM's (shared read-only over virtio-9p, a tmpfs overlay
# on top: the same userland, build and test dependencies, nothing written
# back), and bring back its output (on stdout, as it runs) and exit status.
#
#   run-vm.sh [--modules DIR] KERNEL [--] COMMAND [ARG...]
#
# --modules DIR: a lib/modules/<version> directory (fetch-stock.sh prints
# it) whose 9p, virtio and overlay modules the initramfs loads; without it,
# the kernel must have them built in (build-kernel.sh's does). The command
# runs in the current directory, as root, with this environment's PATH, CI,
# LANG; TMPDIR is a tmpfs (a Unix socket cannot be bound on 9p). PID 1 is a
# busybox shell that reaps orphans, not systemd.
#
# KVM is used only when the CPU has vmx or svm: /dev/kvm on this kind of
# machine may be a software hypervisor on which stock kernels do not boot;
# otherwise TCG (about 12x slower). The command gets PN_TIME_SCALE, how many
# times slower than the host the guest runs (12 under TCG, 1 under KVM; the
# caller's PN_TIME_SCALE if set): the tests' native-speed bounds are
# multiplied by it (tests/integration/pntest.py, timed()). VM_MEM (default 3G), VM_CPUS (default:
# the host's, at most 4), VM_TIMEOUT (seconds, default 3600), VM_APPEND
# (more kernel parameters). no_timer_check: under TCG on a loaded host the
# kernel's IO-APIC timer check fails and it panics at boot. Exit status:
# the command's; 124 if the VM timed out, 125 if it ended without
# reporting one.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")

modules=
if [ "${1:-}" = --modules ]; then
        modules=$(readlink -f "$2")
        shift 2
fi
[ $# -ge 2 ] || { sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
kernel=$(readlink -f "$1")
shift
[ "${1:-}" = -- ] && shift
[ -r "$kernel" ] || { echo "run-vm: no kernel $kernel" >&2; exit 2; }

need=(qemu-system-x86 busybox-static kmod)
missing=()
for p in "${need[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "run-vm: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

job=$(mktemp -d /tmp/pn-vm.XXXXXX)
trap 'rm -rf "$job"' EXIT
mkdir -p "$job/initramfs/"{bin,modules,proc,sys,dev} "$job/share"
cp /bin/busybox "$job/initramfs/bin/busybox"

# Modules, dependencies first, in the order the initramfs loads them.
if [ -n "$modules" ]; then
        ver=$(basename "$modules")
        base=$(dirname "$(dirname "$(dirname "$modules")")")
        n=0
        # veth: the tests make network namespaces of their own joined by one.
        for m in virtio_pci 9pnet_virtio 9p overlay veth; do
                while read -r _ path _; do
                        [ -n "$path" ] || continue
                        name=$(basename "$path")
                        if ! grep -qx "$name" "$job/initramfs/modules/order" 2>/dev/null; then
                                cp "$path" "$job/initramfs/modules/$(printf %02d $n)-$name"
                                n=$((n + 1))
                                echo "$name" >>"$job/initramfs/modules/order"
                        fi
                done < <(modprobe -d "$base" -S "$ver" --show-depends "$m" | grep '^insmod ')
        done
fi

cat >"$job/initramfs/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do
        [ -e "$m" ] && insmod "$m"
done
fail() { echo "run-vm init: $*" >/dev/console; poweroff -f; }
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose root /lower ||
        fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
        fail "cannot mount the overlay"
mkdir -p /newroot/.pn-job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /newroot/.pn-job ||
        fail "cannot mount the job share"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs -o mode=0755 run /newroot/run
mkdir -p /newroot/run/lock /newroot/run/user /newroot/run/dbus
mount -t tmpfs -o mode=1777 vartmp /newroot/var/tmp
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
# /etc on a tmpfs of its own: useradd's lock files (link()) fail on the
# overlay over 9p ("/etc/subgid.lock: No such file or directory").
# The host's own useradd (other tests running there) may hold lock files
# that vanish while they are copied, or would be stale here: not copied.
mkdir -p /rw/etc
cp -a /newroot/etc/. /rw/etc/ 2>/dev/null
rm -f /rw/etc/*.lock /rw/etc/.pwd.lock
mount --bind /rw/etc /newroot/etc || fail "cannot put /etc on a tmpfs"
cp /bin/busybox /newroot/.pn-job/busybox
exec switch_root /newroot /.pn-job/busybox sh /.pn-job/pid1.sh
INIT
chmod +x "$job/initramfs/init"
(cd "$job/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$job/initramfs.gz"

# PID 1 after switch_root: the command in its own session with the console
# as its terminal, then its status back through the job share.
cat >"$job/share/pid1.sh" <<'PID1'
bb=/.pn-job/busybox
$bb hostname pn-vm
# The loopback interface is up on every booted machine (udev/networkd or
# ifupdown do it): the tests send datagrams to 127.0.0.1.
$bb ip link set lo up
$bb setsid -c $bb sh /.pn-job/cmd.sh </dev/console >/dev/console 2>&1 &
cmd=$!
while :; do
        wait $cmd
        st=$?
        # wait returns early (status > 128) when a signal interrupts it: only
        # a reaped command has no /proc entry any more.
        [ -d /proc/$cmd ] || break
done
echo "$st" >/.pn-job/status
$bb dmesg >/.pn-job/dmesg 2>/dev/null
$bb sync
$bb poweroff -f
PID1

accel=tcg,thread=multi cpu=max scale=12
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
        accel=kvm cpu=host,-arch-capabilities scale=1
fi
{
        echo "export PATH=$(printf %q "$PATH") HOME=/root TMPDIR=/tmp LANG=${LANG:-C.UTF-8}"
        echo "export PN_TIME_SCALE=$(printf %q "${PN_TIME_SCALE:-$scale}")"
        [ -n "${CI:-}" ] && echo "export CI=$(printf %q "$CI")"
        for v in ${VM_ENV:-}; do echo "export $v=$(printf %q "${!v:-}")"; done
        echo "cd $(printf %q "$PWD") || exit 125"
        printf 'exec'
        printf ' %q' "$@"
        echo
} >"$job/share/cmd.sh"

ncpu=$(nproc)
cpus=${VM_CPUS:-$((ncpu > 4 ? 4 : ncpu))}
mhz=$(awk -F': ' '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
append="console=ttyS0 quiet loglevel=1 panic=-1 oops=panic no_timer_check rdinit=/init ${mhz:+tsc_early_khz=$mhz} ${VM_APPEND:-}"
echo "run-vm: $(basename "$kernel") accel=${accel%%,*} cpus=$cpus mem=${VM_MEM:-3G}: $*" >&2
start=$(date +%s)
st=0
timeout --foreground -k 10 "${VM_TIMEOUT:-3600}" qemu-system-x86_64 \
        -accel "$accel" -cpu "$cpu" -smp "$cpus" -m "${VM_MEM:-3G}" \
        -nographic -no-reboot -nodefaults -serial stdio -monitor none \
        -kernel "$kernel" -initrd "$job/initramfs.gz" -append "$append" \
        -virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$job/share",mount_tag=job,security_model=none,multidevs=remap \
        </dev/null || st=$?
if [ "$st" -eq 124 ]; then
        echo "run-vm: timed out after ${VM_TIMEOUT:-3600} s" >&2
        exit 124
fi
if [ ! -s "$job/share/status" ]; then
        echo "run-vm: the VM ended (qemu status $st) without the command's status" >&2
        [ -s "$job/share/dmesg" ] && tail -n 40 "$job/share/dmesg" >&2
        exit 125
fi
[ -n "${VM_DMESG:-}" ] && cp "$job/share/dmesg" "$VM_DMESG"
echo "run-vm: done in $(($(date +%s) - start)) s, status $(cat "$job/share/status")" >&2
exit "$(cat "$job/share/status")"
