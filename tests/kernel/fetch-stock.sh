#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Debian 12's stock kernel (the newest linux-image-6.1.0-N-amd64-unsigned in
# the apt archive), downloaded with `apt-get download` and unpacked in
# $PN_KERNEL_CACHE/stock-<package>/ (default /var/cache/procnotify-kernels)
# unless already there. Prints two lines: the vmlinuz path and the modules
# directory (its lib/modules/<version>), as run-vm.sh's --modules wants it.
set -euo pipefail
cache=${PN_KERNEL_CACHE:-/var/cache/procnotify-kernels}

if [ -n "${PN_STOCK_PACKAGE:-}" ]; then
        pkg=$PN_STOCK_PACKAGE
else
        pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' |
                awk '{print $1}' | sort -V | tail -n 1)
        if [ -z "$pkg" ]; then
                echo "fetch-stock: no linux-image-6.1.0-*-amd64-unsigned in apt's lists; running apt-get update" >&2
                apt-get update -qq
                pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' |
                        awk '{print $1}' | sort -V | tail -n 1)
        fi
fi
[ -n "$pkg" ] || { echo "fetch-stock: no Debian 12 stock kernel package found" >&2; exit 1; }
dir="$cache/stock-$pkg"
if [ ! -d "$dir/root" ]; then
        mkdir -p "$cache"
        tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        echo "fetch-stock: downloading $pkg" >&2
        (cd "$tmp" && apt-get download -q "$pkg" >&2)
        mkdir "$tmp/root"
        dpkg-deb -x "$tmp"/*.deb "$tmp/root"
        rm -f "$tmp"/*.deb
        # The package's postinst runs depmod; run-vm.sh needs modules.dep.
        v=$(ls "$tmp/root/lib/modules")
        depmod -b "$tmp/root" "$v"
        rm -rf "$dir"
        mv "$tmp" "$dir"
        trap - EXIT
fi
vmlinuz=$(ls "$dir"/root/boot/vmlinuz-* | head -n 1)
ver=${vmlinuz##*/vmlinuz-}
echo "$vmlinuz"
echo "$dir/root/lib/modules/$ver"
