#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Adoption, following a service through its forks, and signals to
subscribers, against the real kernel with real forking and crashing
processes (tests/helpers/pn-child). Run one test: `test_adopt.py NAME`."""
import os

from pntest import Broker, Dance, check, run


def _adoptions(c, dance, n):
    """Read events until n adopt events about the dance's stages came."""
    pids = {pid for pid, _ in dance.stages.values()}
    adopts = []

    def done(e):
        if e["type"] == "adopt" and e["tgid"] in pids:
            adopts.append(e)
        return len(adopts) == n
    c.events_until(done, what=f"{n} adoptions of the stages {dance.stages} (got {adopts})")
    return adopts


def _check_dance_adoptions(adopts, dance, reaper):
    """Stage i (i >= 1) was adopted from stage i-1 by reaper, in order."""
    want = [(dance.pid(i), dance.pid(i - 1), reaper) for i in range(1, dance.forks + 1)]
    got = [(e["tgid"], e["old_parent"], e["new_parent"]) for e in adopts]
    check(got == want, f"adoptions (pid, old_parent, new_parent): got {got}, want {want}")
    for e in adopts:
        check(e["ppid"] == reaper and e["sources"] == ["connector"], f"adopt event: {e}")
        check(e["comm"] == "pn-child", f"adopt event not enriched: {e}")
    # What the kernel said to the stages themselves: each saw the reaper as
    # its parent once its own parent was gone.
    for i in range(1, dance.forks + 1):
        check(dance.stages[i][1] == reaper,
              f"stage {i} saw parent {dance.stages[i][1]}, not {reaper}")


def test_adopt_double_fork_init():
    """The classic daemon double fork: fork, setsid, fork, parent exits. Both
    orphans are adopted by init (pid 1), with the right old parents."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["adopt"])
        d = Dance(2)
        try:
            d.read_all()
            check(d.stages[2][1] == 1, f"the daemon's parent is {d.stages[2][1]}, not init: "
                  "is a process above this test a child subreaper?")
            _check_dance_adoptions(_adoptions(c, d, 2), d, 1)
            s = c.request({"op": "status"})
            check(s["process_table"]["adoptions"] >= 2, f"status: {s['process_table']}")
        finally:
            d.close()


def test_adopt_double_fork_subreaper():
    """The same dance below a child subreaper: the orphans go to it, not init."""
    with Broker() as b:
        c = b.client()
        c.subscribe(events=["adopt"])
        d = Dance(2, subreaper=True)
        try:
            d.read_all()
            check(d.subreaper and d.subreaper != 1, f"no subreaper: {d.subreaper}")
            _check_dance_adoptions(_adoptions(c, d, 2), d, d.subreaper)
        finally:
            d.close()


if __name__ == "__main__":
    run({name[5:]: fn for name, fn in globals().items() if name.startswith("test_")})
