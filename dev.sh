#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# procnotify's developer entry point, for a fresh Debian 12 machine (as root):
#
#   ./dev.sh run [procnotifyd options]   build, then run the broker in the foreground
#   ./dev.sh test [meson test options]   build, then run every test (or those named;
#                                        glob patterns such as 'run*' work); ends with
#                                        "N passed, N failed, N skipped"
#   ./dev.sh test-sanitized [options]    the same with ASan+UBSan (and LeakSanitizer at
#                                        every exit), in build-sanitized/
#   ./dev.sh fuzz                        build the libFuzzer targets with clang (build-fuzz/)
#                                        and run each for FUZZ_SECONDS (default: 240 s
#                                        shared among them, at least 30 s each)
#   ./dev.sh bench                       build, then run the benchmarks (tests/bench)
#   ./dev.sh test-kernels [STAGE...]     build, then run the suite in qemu; stages (default:
#                                        stock patched): stock, Debian 12's stock 6.1, the
#                                        whole suite; patched, a 6.1 with PR_SET_PREDUMP_SIG/
#                                        PR_SET_ADOPTSIG (built and cached in
#                                        /var/cache/procnotify-kernels), its tests; selftest,
#                                        the prctl selftest 20 times; bench, the prctl path's
#                                        latency against the connector's (tests/kernel/)
#
# Each installs the Debian packages it needs first (apt-get), so nothing else
# is needed. BUILD_DIR (default: build) and MESON_ARGS change the build
# (.ci/run adds -Dwerror=true: a warning fails CI).
# .ci/run runs test, test-sanitized, fuzz and test-kernels, and sums their counts.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

BUILD_DIR=${BUILD_DIR:-build}

# Build and run: compiler, meson, and the libraries of the stack.
PKGS_BUILD=(gcc meson ninja-build pkg-config libnl-3-dev libsystemd-dev libjson-c-dev
            libinih-dev libcap-ng-dev libcmocka-dev libdbus-1-dev)
# Tests: Debian's python3 (the D-Bus bindings are for it), real clients and buses.
PKGS_TEST=(python3 socat jq dbus dbus-broker python3-dbus python3-gi systemd strace prometheus
           # install deb_package: dpkg-buildpackage -b and lintian
           build-essential dpkg-dev debhelper lintian)
# Fuzzing: clang with its sanitizer and libFuzzer runtimes.
PKGS_FUZZ=(clang libclang-rt-14-dev)
# Sanitized runs: what a sanitizer must find in the broker, it must find at
# once; leaks are checked at every exit (LeakSanitizer, on by default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Kernel stages: qemu, the initramfs's busybox, and what building a kernel
# needs (tests/kernel/build-kernel.sh installs linux-source-6.1 itself).
PKGS_KERNEL=(qemu-system-x86 busybox-static kmod cpio bc bison flex libelf-dev libssl-dev make xz-utils)
# Benchmarks: the baseline tools and plotting.
PKGS_BENCH=(forkstat gnuplot-nox valgrind)

install_packages() {
        local missing=()
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                echo "dev.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
                exit 1
        fi
        echo "dev.sh: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # Another apt or dpkg run (a test installing its package) holds the lock: wait.
        apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
        if [ -f "$BUILD_DIR/build.ninja" ]; then
                # shellcheck disable=SC2086
                meson setup --reconfigure "$BUILD_DIR" ${MESON_ARGS:-} >/dev/null
        else
                # shellcheck disable=SC2086
                meson setup "$BUILD_DIR" ${MESON_ARGS:-} >/dev/null
        fi
        meson compile -C "$BUILD_DIR"
}

# Run meson test in $BUILD_DIR; print the summary line last. Exit status: 1
# if a test failed, or was skipped although running as root.
run_tests() {
        local rc=0 line a names args=()
        # meson 1.0 takes exact test names only: expand glob patterns
        # ('run*') into the names they match.
        for a in "$@"; do
                if [[ $a != -* && $a == *[*?[]* ]]; then
                        mapfile -t names < <(meson test -C "$BUILD_DIR" --list 2>/dev/null |
                                /usr/bin/python3 -c 'import fnmatch, sys
for line in sys.stdin:
    name = line.rstrip("\n").split(" / ", 1)[-1]
    if fnmatch.fnmatchcase(name, sys.argv[1]):
        print(name)' "$a")
                        if [ ${#names[@]} -eq 0 ]; then
                                echo "dev.sh: no test matches \"$a\"" >&2
                                return 1
                        fi
                        args+=("${names[@]}")
                else
                        args+=("$a")
                fi
        done
        # A run that selects no test writes no log: never count an older one.
        rm -f "$BUILD_DIR/meson-logs/testlog.json"
        meson test -C "$BUILD_DIR" --print-errorlogs ${args[@]+"${args[@]}"} || rc=$?
        if [ -f "$BUILD_DIR/meson-logs/testlog.json" ]; then
                line=$(summary)
        else
                line="0 passed, 1 failed, 0 skipped"
                echo "dev.sh: meson ran no test (none selected?)" >&2
                rc=1
        fi
        # As root (and in CI) a skipped test is a failure to investigate.
        if [ "$rc" -eq 0 ] && [ "$(id -u)" -eq 0 ] && ! echo "$line" | grep -q " 0 skipped"; then
                echo "dev.sh: tests were skipped although running as root: see the log above"
                rc=1
        fi
        echo "$line"
        return "$rc"
}

# The fuzz suite must hold every target in tests/fuzz/: one a hook parser or
# anything else adds is fuzzed without anyone touching CI.
check_fuzz_targets() {
        local listed missing=()
        listed=$(meson test -C "$BUILD_DIR" --list --suite fuzz 2>/dev/null)
        for f in tests/fuzz/fuzz-*.c; do
                local name
                name=$(basename "$f" .c)
                name=${name#fuzz-}
                echo "$listed" | grep -q "/ fuzz $name\$" || missing+=("$name")
        done
        if [ ${#missing[@]} -gt 0 ]; then
                echo "dev.sh: fuzz targets not in tests/fuzz/meson.build's fuzz_targets: ${missing[*]}" >&2
                return 1
        fi
        echo "$listed" | grep -c "/ fuzz "
}

# Count results from meson's machine-readable log: one JSON object a line.
summary() {
        /usr/bin/python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
        install_packages "${PKGS_BUILD[@]}"
        build
        exec "$BUILD_DIR/daemon/procnotifyd" "$@"
        ;;
test)
        install_packages "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}"
        build
        run_tests "$@"
        ;;
test-sanitized)
        install_packages "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}"
        BUILD_DIR=${BUILD_DIR_SANITIZED:-build-sanitized}
        MESON_ARGS="-Db_sanitize=address,undefined ${MESON_ARGS:-}"
        build
        run_tests "$@"
        ;;
fuzz)
        install_packages "${PKGS_BUILD[@]}" "${PKGS_FUZZ[@]}"
        BUILD_DIR=${BUILD_DIR_FUZZ:-build-fuzz}
        MESON_ARGS="-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false ${MESON_ARGS:-}"
        export CC=clang
        build
        n=$(check_fuzz_targets) || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
        budget=${FUZZ_BUDGET:-240}
        per=$(( budget / n ))
        export FUZZ_SECONDS=${FUZZ_SECONDS:-$(( per > 30 ? per : 30 ))}
        echo "dev.sh: fuzzing $n targets for ${FUZZ_SECONDS} s each"
        run_tests --suite fuzz "$@"
        ;;
test-kernels)
        install_packages "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}" "${PKGS_KERNEL[@]}"
        build
        BUILD_DIR=$BUILD_DIR exec tests/kernel/test-kernels.sh "$@"
        ;;
bench)
        install_packages "${PKGS_BUILD[@]}" "${PKGS_TEST[@]}" "${PKGS_BENCH[@]}"
        build
        exec "$BUILD_DIR/tests/bench/run-benchmarks" "$@"
        ;;
*)
        sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
