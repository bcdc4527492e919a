#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build Debian 12's linux-source-6.1 with procnotify's forward port of the
# PR_SET_PREDUMP_SIG and PR_SET_ADOPTSIG proposals (predump-adoptsig.patch),
# configured as `make tinyconfig` + patched.config, and print the path of
# its bzImage. The result is cached outside the clone in
# $PN_KERNEL_CACHE/<hash of patch + config + this script + source version>/
# (default /var/cache/procnotify-kernels); it is rebuilt only when absent.
# Installs what it needs with apt-get (as root). JOBS (default 2) sets -j.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
cache=${PN_KERNEL_CACHE:-/var/cache/procnotify-kernels}
jobs=${JOBS:-2}

need=(linux-source-6.1 gcc make bc bison flex libelf-dev libssl-dev xz-utils cpio kmod)
missing=()
for p in "${need[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "build-kernel: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { cat "$here/predump-adoptsig.patch" "$here/patched.config" "$here/build-kernel.sh"
         echo "$srcver"; } | sha256sum | cut -c1-16)
out="$cache/patched-$key"
if [ -s "$out/bzImage" ]; then
        echo "$out/bzImage"
        exit 0
fi

mkdir -p "$cache"
work="$cache/build-$key"
rm -rf "$work"
mkdir -p "$work"
echo "build-kernel: building linux-source-6.1 $srcver + predump-adoptsig.patch in $work" >&2
start=$(date +%s)
tar -C "$work" -xJf /usr/src/linux-source-6.1.tar.xz
cd "$work/linux-source-6.1"
patch -p1 --quiet <"$here/predump-adoptsig.patch"
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "$here/patched.config" >/dev/null
make -s olddefconfig >/dev/null
# Every option asked for must have survived olddefconfig (a missing
# dependency silently drops one).
bad=0
while IFS= read -r line; do
        case $line in CONFIG_*=*) ;; *) continue ;; esac
        if ! grep -qx -- "$line" .config; then
                echo "build-kernel: $line did not survive olddefconfig" >&2
                bad=1
        fi
done <"$here/patched.config"
[ "$bad" -eq 0 ] || exit 1
make -s -j"$jobs" bzImage >/dev/null
mkdir -p "$out.tmp"
cp arch/x86/boot/bzImage .config "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
cd /
rm -rf "$work"
echo "build-kernel: built in $(($(date +%s) - start)) s: $out/bzImage" >&2
echo "$out/bzImage"
