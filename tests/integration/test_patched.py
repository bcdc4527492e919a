#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The broker on a kernel carrying PR_SET_PREDUMP_SIG and PR_SET_ADOPTSIG
(tests/kernel/predump-adoptsig.patch, prctl numbers 0x504e0001 and
0x504e0003): suite 'kernel-patched', run in the VM by
tests/kernel/test-kernels.sh, never on the host (the prctls do not exist
there). Run one test: python3 test_patched.py NAME."""
import select
import signal
import time

from pntest import PN_CHILD, check, run, timed
from test_run import RunBroker, run_ok

PR_SET_PREDUMP_SIG = 0x504E0001
PR_SET_ADOPTSIG = 0x504E0003
PRCTL_CONFIG = (f"PredumpSignalPrctl={PR_SET_PREDUMP_SIG}\nPredumpSignal=USR1\n"
                f"AdoptSignalPrctl={PR_SET_ADOPTSIG}\nAdoptSignal=USR2\n")
# Compared between the prctl path and the connector path of the same crash.
SAME_FIELDS = ("type", "comm", "exe", "cmdline", "uid", "cgroup")


def _crash(b, mb):
    """Run a child that dies of SIGSEGV with a core of about mb MB; its
    predump and exit events (every one of its pid)."""
    sub = b.client()
    sub.subscribe(events=["predump", "exit"], match={"descendants_of": b.proc.pid})
    ctl = b.client()
    pid = run_ok(ctl, [PN_CHILD, "segv-large", mb], name="crasher")["pid"]
    seen = sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == pid, timeout=120,
                            what=f"exit of the crashing child {pid}")
    mine = [e for e in seen if e["tgid"] == pid]
    return pid, mine, ctl.request({"op": "status"})


def predump_one_event():
    """A supervised child that crashes with a large core: exactly one
    predump, naming "prctl" and "connector", before its exit; the signal
    was accepted and merged. The same crash under a broker without the
    prctl (the connector path) gives the same predump but for its sources."""
    with RunBroker(extra=PRCTL_CONFIG) as b:
        check(f"Called prctl({PR_SET_PREDUMP_SIG}, {signal.SIGUSR1})" in b.log(),
              f"the broker did not set PR_SET_PREDUMP_SIG on itself:\n{b.log()}")
        pid, mine, st = _crash(b, 128)
        types = [e["type"] for e in mine]
        check(types == ["predump", "exit"], f"events of the crash: {types}: {mine}")
        pre, ex = mine
        check(sorted(pre["sources"]) == ["connector", "prctl"], f"predump sources: {pre}")
        check(pre["seq"] < ex["seq"] and pre["ts_ns"] <= ex["ts_ns"], f"predump not before exit: {mine}")
        check(ex["signal"] == signal.SIGSEGV and ex["core_dumped"], f"exit: {ex}")
        check(pre["ppid"] == b.proc.pid, f"predump's parent: {pre}")
        run, table = st["run"], st["process_table"]
        check(run["predump_signals_accepted"] == 1 and run["predump_signals_refused"] == 0,
              f"run statistics: {run}")
        check(table["merged_predumps"] == 1 and table["unmerged_predumps"] == 0,
              f"process table statistics: {table}")
    with RunBroker() as b:
        _, plain, _ = _crash(b, 128)
        check([e["type"] for e in plain] == ["predump", "exit"], f"connector path: {plain}")
        check(plain[0]["sources"] == ["connector"], f"connector path's predump: {plain[0]}")
        for k in SAME_FIELDS:
            check(plain[0].get(k) == pre.get(k), f"predump field {k}: prctl path {pre.get(k)!r}, "
                  f"connector path {plain[0].get(k)!r}")
        check(plain[1]["signal"] == ex["signal"] and plain[1]["core_dumped"] == ex["core_dumped"],
              f"exits differ: {plain[1]} vs {ex}")


def adopt_with_old_parent():
    """A double-forking supervised daemon: its orphan's adoption names the
    real old parent and the broker as new parent, with "prctl" and
    "connector" in sources, once."""
    with RunBroker(extra=PRCTL_CONFIG) as b:
        check(f"Called prctl({PR_SET_ADOPTSIG}, {signal.SIGUSR2})" in b.log(),
              f"the broker did not set PR_SET_ADOPTSIG:\n{b.log()}")
        sub = b.client()
        sub.subscribe(events=["fork", "adopt", "exit"], match={"comm": "pn-child"})
        ctl = b.client()
        cpid = run_ok(ctl, [PN_CHILD, "daemonize", 0], name="daemonizer")["pid"]
        seen = sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == cpid, timeout=60,
                                what="exit of the daemonizer")
        if not any(e["type"] == "adopt" for e in seen):
            seen += sub.events_until(lambda e: e["type"] == "adopt", timeout=30, what="the adoption")
        adopts = [e for e in seen if e["type"] == "adopt"]
        st = ctl.request({"op": "status"})
        check(len(adopts) == 1, f"adoptions: {adopts}; status {st['run']} {st['process_table']}")
        adopt = adopts[0]
        forks = {e["tgid"]: e for e in seen if e["type"] == "fork"}
        daemon = adopt["tgid"]
        middle = forks.get(daemon, {}).get("ppid")
        check(middle and adopt["old_parent"] == middle and forks[middle]["ppid"] == cpid,
              f"old_parent is not the intermediate process: {adopt}, forks {forks}")
        check(adopt["new_parent"] == b.proc.pid, f"new_parent: {adopt}")
        run, table = st["run"], st["process_table"]
        check(sorted(adopt["sources"]) == ["connector", "prctl"], f"adopt sources: {adopt}; {run} {table}")
        check(run["adopt_signals_accepted"] == 1 and run["adopt_signals_refused"] == 0, f"run: {run}")
        check(table["merged_adoptions"] == 1, f"process table: {table}")
        k = ctl.request({"op": "kill", "pid": daemon})
        check(k["type"] == "killed", f"kill of the adopted daemon: {k}")
        sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == daemon, timeout=30,
                         what="exit of the daemon")


def predump_small_cores():
    """Children that crash with RLIMIT_CORE 0, one after the other: the
    dump is over before the broker can look (the child is neither
    "CoreDumping: 1" nor dead yet when the signal is read), yet every
    predump signal is accepted (its verdict waits for the child's end) and
    every predump names "prctl", before its exit."""
    n = 50
    with RunBroker(extra=PRCTL_CONFIG) as b:
        sub = b.client()
        sub.subscribe(events=["predump", "exit"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        bad = []
        for i in range(n):
            pid = run_ok(ctl, [PN_CHILD, "segv", "nocore"], name=f"small{i}")["pid"]
            seen = sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == pid,
                                    timeout=timed(60), what=f"exit of crash {i} (pid {pid})")
            mine = [e for e in seen if e["tgid"] == pid]
            types = [e["type"] for e in mine]
            if types != ["predump", "exit"] or "prctl" not in mine[0]["sources"]:
                bad.append((i, [(e["type"], e["sources"]) for e in mine]))
            else:
                check(mine[1]["signal"] == signal.SIGSEGV,
                      f"exit of crash {i}: {mine[1]}")
        run_st = ctl.request({"op": "status"})["run"]
        check(not bad and run_st["predump_signals_accepted"] == n and
              run_st["predump_signals_refused"] == 0,
              f"{len(bad)} of {n} crashes without a prctl predump before the exit "
              f"(first: {bad[:3]}); run statistics: {run_st}")


def forged_signals_refused():
    """A root child that sends the broker both signals with kill(): SI_USER
    like the kernel's, but refused (not dumping core; no old parent and
    not an orphan) and counted per kind; no event is published."""
    with RunBroker(extra=PRCTL_CONFIG) as b:
        sub = b.client()
        sub.subscribe(events=["predump", "adopt", "exit"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        pid = run_ok(ctl, ["/bin/sh", "-c", "kill -USR1 $PPID && kill -USR2 $PPID"], name="forger")["pid"]
        seen = sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == pid, timeout=60,
                                what="exit of the forger")
        ex = seen[-1]
        check(ex["exit_code"] == 0, f"the forger failed to signal the broker: {ex}")
        deadline = time.monotonic() + 30
        while True:
            run_st = ctl.request({"op": "status"})["run"]
            if run_st["refused_signals"] >= 2 or time.monotonic() > deadline:
                break
            select.select([], [], [], 0.01)
        check(run_st["predump_signals_refused"] == 1 and run_st["adopt_signals_refused"] == 1 and
              run_st["predump_signals_accepted"] == 0 and run_st["adopt_signals_accepted"] == 0 and
              run_st["refused_signals"] == 2, f"statistics: {run_st}")
        others = [e for e in seen if e["type"] != "exit"]
        check(not others, f"a forged signal was published: {others}")
        check(b.proc.poll() is None, "the broker died")


def forged_predump_of_live_child_refused():
    """A child that sends the broker the predump signal with kill() and
    lives on: its form is the kernel's and it is the broker's child, so the
    verdict waits for its end, but at most 1 s: it is refused while the
    child still runs, and no predump is published, then or at its end."""
    with RunBroker(extra=PRCTL_CONFIG) as b:
        sub = b.client()
        sub.subscribe(events=["predump", "exit"], match={"descendants_of": b.proc.pid})
        ctl = b.client()
        pid = run_ok(ctl, ["/bin/sh", "-c", "kill -USR1 $PPID && exec sleep 60"], name="forger")["pid"]
        deadline = time.monotonic() + timed(10)
        while True:
            run_st = ctl.request({"op": "status"})["run"]
            if run_st["predump_signals_refused"] >= 1 or time.monotonic() > deadline:
                break
            select.select([], [], [], 0.05)
        check(run_st["predump_signals_refused"] == 1 and run_st["predump_signals_accepted"] == 0,
              f"the forged predump signal was not refused within {timed(10)} s: {run_st}")
        children = ctl.request({"op": "children"})
        check(any(c["pid"] == pid for c in children.get("children", [])),
              f"the forger should still run when its signal is refused: {children}")
        k = ctl.request({"op": "kill", "pid": pid})
        check(k["type"] == "killed", f"kill of the forger: {k}")
        seen = sub.events_until(lambda e: e["type"] == "exit" and e["tgid"] == pid, timeout=timed(30),
                                what="exit of the forger")
        others = [e for e in seen if e["type"] != "exit"]
        check(not others, f"a forged predump was published: {others}")
        run_st = ctl.request({"op": "status"})["run"]
        check(run_st["predump_signals_accepted"] == 0, f"statistics: {run_st}")


if __name__ == "__main__":
    run({
        "predump_one_event": predump_one_event,
        "adopt_with_old_parent": adopt_with_old_parent,
        "forged_signals_refused": forged_signals_refused,
        "predump_small_cores": predump_small_cores,
        "forged_predump_of_live_child_refused": forged_predump_of_live_child_refused,
    })
