#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The predump's latency, the patched kernel's PR_SET_PREDUMP_SIG path
against the proc connector's, for the same crashes (issue 11 §4). Run in
the VM of the patched kernel only (`./dev.sh test-kernels bench`: suite
'kernel-patched', never in CI), where TCG emulation makes absolute figures
meaningless: only ratios are printed.

1. The floor: bench-crash --pair, one process that is both the parent of
   the crashing children (with the prctl set on itself) and a connector
   listener; for each crash, from just before its SIGSEGV to the read of
   the connector's COREDUMP and to the read of the predump signal.
2. The broker: crashes of children it runs (`run`), to a JSON subscriber's
   read of the predump, by a broker without the prctl (the connector path)
   and by one with it (the predump is published once both reported: the
   first report is held for the other, PROTOCOL.md "Patched kernels"), in
   alternating rounds.

Prints a Markdown table; exit status 1 if a crash was not reported."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from pntest import check  # noqa: E402
from test_run import RunBroker, run_ok  # noqa: E402

PR_SET_PREDUMP_SIG = 0x504E0001
PRCTL_CONFIG = f"PredumpSignalPrctl={PR_SET_PREDUMP_SIG}\nPredumpSignal=USR1\n"
BENCH_CRASH = os.environ["BENCH_CRASH"]
CRASHES = int(os.environ.get("PN_BENCH_CRASHES", "200"))
ROUNDS = 4


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, len(v) * p // 100)]


def floor_pair(n):
    out = subprocess.run([BENCH_CRASH, "--pair", str(n), "20", str(PR_SET_PREDUMP_SIG)],
                         capture_output=True, text=True, timeout=600)
    check(out.returncode == 0, f"bench-crash --pair: {out.returncode}: {out.stderr}")
    cn, sig, order = [], [], {"signal first": 0, "connector first": 0, "at one wakeup": 0}
    for line in out.stdout.splitlines():
        _, t0, t_cn, t_sig = (int(x) for x in line.split())
        cn.append((t_cn - t0) / 1000)
        sig.append((t_sig - t0) / 1000)
        order["signal first" if t_sig < t_cn else "connector first" if t_cn < t_sig else "at one wakeup"] += 1
    check(len(cn) == n, f"bench-crash --pair reported {len(cn)} of {n} crashes")
    return cn, sig, order


def broker_round(prctl, n, stamps):
    """n crashes of the broker's children; latencies (µs) to the predump's
    read by a JSON subscriber, and the sources each predump named."""
    lat, sources = [], []
    with RunBroker(extra=PRCTL_CONFIG if prctl else "") as b:
        sub = b.client()
        sub.subscribe(events=["predump"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        for i in range(n):
            with open(stamps, "w"):
                pass
            pid = run_ok(ctl, [BENCH_CRASH, "--one", stamps, i], name=f"crash{i}")["pid"]
            e = sub.events_until(lambda e: e["type"] == "predump" and e["tgid"] == pid, timeout=60,
                                 what=f"the predump of crash {i} (pid {pid})")[-1]
            t_recv = time.monotonic_ns()
            with open(stamps) as f:
                idx, t0 = (int(x) for x in f.read().split())
            check(idx == i, f"stamp of crash {idx}, expected {i}")
            lat.append((t_recv - t0) / 1000)
            sources.append(",".join(sorted(e["sources"])))
        run = ctl.request({"op": "status"})["run"]
    return lat, sources, run["predump_signals_accepted"], run["predump_signals_refused"]


def main():
    n = CRASHES
    cn, sig, order = floor_pair(n)
    per = max(1, n // ROUNDS)
    lat = {False: [], True: []}
    srcs = {False: {}, True: {}}
    accepted = refused = 0
    stamps = tempfile.NamedTemporaryFile(prefix="pnbench-stamps-", delete=False).name
    try:
        for _ in range(ROUNDS):
            for prctl in (False, True):
                v, s, a, r = broker_round(prctl, per, stamps)
                lat[prctl] += v
                for x in s:
                    srcs[prctl][x] = srcs[prctl].get(x, 0) + 1
                if prctl:
                    accepted, refused = accepted + a, refused + r
    finally:
        os.unlink(stamps)
    print("\n### Predump latency: the prctl path against the connector path (patched 6.1, qemu)\n")
    print(f"Ratios only (TCG emulation). Floor: {n} crashes (SIGSEGV, RLIMIT_CORE 0) of one "
          f"process's children, each read on both paths: "
          f"{', '.join(f'{k} {v}' for k, v in order.items())}.\n")
    print("| path | p50 ÷ connector p50 | p99 ÷ connector p99 |")
    print("|---|---:|---:|")
    print("| floor: connector COREDUMP | 1.00 | 1.00 |")
    print(f"| floor: PR_SET_PREDUMP_SIG signal | {pct(sig, 50) / pct(cn, 50):.2f} | "
          f"{pct(sig, 99) / pct(cn, 99):.2f} |")
    c50, c99 = pct(lat[False], 50), pct(lat[False], 99)

    def named(d):
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))
    print(f"| broker, connector only (predump sources: {named(srcs[False])}) | "
          f"{c50 / pct(cn, 50):.2f} | {c99 / pct(cn, 99):.2f} |")
    print(f"| broker, prctl configured (predump sources: {named(srcs[True])}) | "
          f"{pct(lat[True], 50) / pct(cn, 50):.2f} | {pct(lat[True], 99) / pct(cn, 99):.2f} |")
    print(f"\nBroker with the prctl ÷ broker without: p50 {pct(lat[True], 50) / c50:.2f}, "
          f"p99 {pct(lat[True], 99) / c99:.2f} ({len(lat[True])} and {len(lat[False])} crashes in "
          f"{ROUNDS} alternating rounds); the broker accepted {accepted} predump signals and "
          f"refused {refused}.")
    check(set(srcs[False]) == {"connector"}, f"connector broker's predump sources: {srcs[False]}")
    # Every crash is genuine: a refused signal is a wrong verdict (with
    # RLIMIT_CORE 0 the dump is over before the broker looks: PROTOCOL.md
    # "Patched kernels").
    check(refused == 0 and accepted == per * ROUNDS and all("prctl" in k for k in srcs[True]),
          f"prctl broker: accepted {accepted}, refused {refused}, predump sources {srcs[True]}")
    check(len(lat[True]) == len(lat[False]) == per * ROUNDS, "a crash without its predump")

if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
