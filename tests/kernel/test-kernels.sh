#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The kernel stages of CI (./dev.sh test-kernels), on the build in
# $BUILD_DIR (default: build; built on the host first by dev.sh):
#
#   stock:   Debian 12's stock 6.1 (fetch-stock.sh), the whole default test
#            suite (unit and integration) in the VM;
#   patched: linux-source-6.1 + predump-adoptsig.patch (build-kernel.sh,
#            cached), suite 'kernel-patched' in the VM: the prctl selftest
#            and the broker's tests of the patched path;
#   selftest: the prctl selftest alone, SELFTEST_RUNS (default 20) times
#            in one boot of the patched kernel (not a default stage);
#   bench:   on the patched kernel, the predump's latency by the prctl path
#            against the connector path, in ratios (not a default stage).
#
#   test-kernels.sh [stock|patched|selftest|bench]...   (default: stock patched)
#
# Each stage prints the meson log of failures and its own counts; the last
# line sums them: "N passed, N failed, N skipped". A stage that cannot run
# (no kernel, the VM did not report) counts as one failure. Exit status 1
# if anything failed.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
cd "$here/../.."
BUILD_DIR=${BUILD_DIR:-build}
stages=("$@")
# selftest (the prctl selftest alone, SELFTEST_RUNS times in one boot,
# default 20) is not a default stage: "patched" runs it once.
[ ${#stages[@]} -eq 0 ] && stages=(stock patched)

passed=0 failed=0 skipped=0 times=()

# In the guest: meson's own runner without rebuilding (the host built it),
# plain output, then the counts of its log. Its per-test timeouts, like the
# tests' own speed bounds, are scaled by run-vm.sh's PN_TIME_SCALE.
guest_tests() {
        local dir=$1
        shift
        cat <<GUEST
set -o pipefail
rm -f "$dir/meson-logs/testlog.json"
meson test -C "$dir" --no-rebuild --print-errorlogs --timeout-multiplier "\${PN_TIME_SCALE:-1}" $* | cat
/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    lines = open(sys.argv[1]).readlines()
except OSError:
    lines = []
for line in lines:
    t = json.loads(line)
    r = t["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
        print("FAILED:", t["name"], r)
if not lines:
    f = 1
    print("no test log: meson ran nothing")
print(f"{p} passed, {f} failed, {s} skipped")
PY
GUEST
}

run_stage() {
        local name=$1 log start st line
        shift
        log=$(mktemp)
        start=$(date +%s)
        echo "=== test-kernels: $name"
        "$@" 2>&1 | tee "$log"
        st=${PIPESTATUS[0]}
        line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n 1 | tr -d '\r')
        rm -f "$log"
        if [ -z "$line" ]; then
                echo "=== test-kernels: $name ended (status $st) without a result line: counted as 1 failed"
                failed=$((failed + 1))
        else
                read -r p _ f _ s _ <<<"${line//,/}"
                passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
        fi
        times+=("$name $(($(date +%s) - start))s${line:+ ($line)}")
}

# Not run in the VM, each for its reason (printed with the stage): tests of
# what no kernel changes, the package and its installation, which run in
# CI's first stage on the host's kernel. They build the tree anew (twice for
# meson_prefixes; deb_package with debhelper, then lintian) and run apt-get.
# Measured: one build of the tree takes 43 s on the host; under TCG, at its
# 12 times, 8 to 9 minutes (one did not finish in 16 minutes on a shared
# machine): the two would add half an hour or more to this stage, and CI
# must stay under 45 minutes. Everything else of the default suite runs, its
# native-speed bounds scaled (PN_TIME_SCALE, see run-vm.sh).
NOT_IN_VM=(
        "install *:packaging, not the kernel: builds the tree (43 s on the host, 8 min or more under TCG) and a .deb, runs apt-get"
)

# The names of the default suite's tests, less NOT_IN_VM; only those
# matching one of the globs in STOCK_TESTS if set (a developer's shortcut:
# STOCK_TESTS='core burst* hooks *' ./dev.sh test-kernels stock).
vm_test_names() {
        meson test -C "$BUILD_DIR" --list 2>/dev/null | sed 's/^procnotify:[^ ]* \/ //; s/^.* \/ //' |
                STOCK_TESTS=${STOCK_TESTS:-} /usr/bin/python3 -c '
import fnmatch, os, sys
pats = [a.split(":", 1)[0] for a in sys.argv[1:]]
only = [p for p in os.environ["STOCK_TESTS"].split("\n") if p]
for line in sys.stdin:
    name = line.rstrip("\n")
    if not name or any(fnmatch.fnmatchcase(name, p) for p in pats):
        continue
    if not only or any(fnmatch.fnmatchcase(name, p) for p in only):
        print(name)' "${NOT_IN_VM[@]}"
}

stock() {
        local k names=() e
        mapfile -t k < <("$here/fetch-stock.sh") || return 1
        [ ${#k[@]} -eq 2 ] || return 1
        for e in "${NOT_IN_VM[@]}"; do
                echo "test-kernels: not in the VM: ${e%%:*} (${e#*:})"
        done
        mapfile -t names < <(vm_test_names)
        [ ${#names[@]} -gt 0 ] || return 1
        "$here/run-vm.sh" --modules "${k[1]}" "${k[0]}" -- bash -c "$(guest_tests "$BUILD_DIR" $(printf "'%s' " "${names[@]}"))"
}

patched() {
        local k
        k=$("$here/build-kernel.sh") || return 1
        "$here/run-vm.sh" "$k" -- bash -c "$(guest_tests "$BUILD_DIR" --suite kernel-patched "'kernel prctl_selftest'" \
                "'patched predump_one_event'" "'patched adopt_with_old_parent'" "'patched forged_signals_refused'" \
                "'patched predump_small_cores'" "'patched forged_predump_of_live_child_refused'")"
}

selftest() {
        local k
        k=$("$here/build-kernel.sh") || return 1
        "$here/run-vm.sh" "$k" -- bash -c "$(guest_tests "$BUILD_DIR" --suite kernel-patched \
                --repeat "${SELFTEST_RUNS:-20}" "'kernel prctl_selftest'")"
}

# The predump's latency, prctl path against connector path, in ratios
# (tests/bench/bench-prctl.py; docs/bench/README.md has the figures).
bench() {
        local k
        k=$("$here/build-kernel.sh") || return 1
        "$here/run-vm.sh" "$k" -- bash -c "$(guest_tests "$BUILD_DIR" --suite kernel-patched --verbose \
                "'bench prctl_predump'")"
}

for s in "${stages[@]}"; do
        case $s in
        stock | patched | selftest | bench) run_stage "$s" "$s" ;;
        *)
                echo "test-kernels: unknown stage $s (stock, patched, selftest, bench)" >&2
                exit 2
                ;;
        esac
done
echo "=== test-kernels: ${times[*]/%/;}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
