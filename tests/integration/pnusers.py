# SPDX-License-Identifier: LGPL-2.1-or-later
"""Real unprivileged users and groups for procnotify's policy tests.

Users() creates them with useradd/groupadd (no home, no login shell) and
removes them on exit, also when the test fails; names carry the test's pid,
so that parallel tests never share one and a test killed before its cleanup
(a timeout) is cleaned up by the next one. as_user(u) runs a child process
with exactly that user's uid, gid and groups, as login would.
"""
import grp
import os
import pwd
import signal
import subprocess
import time

from pntest import _libc, fail

PREFIX = "pnt"


def _tool(*argv):
    """Run a shadow-utils tool; retry while another test holds /etc/passwd's lock."""
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode == 0:
            return
        # 1: cannot update the password file (locked); 10: cannot update the group file.
        if r.returncode in (1, 10) and "lock" in r.stderr and time.monotonic() < deadline:
            time.sleep(0.05)  # a lock held by a parallel test; nothing to wait on
            continue
        fail(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")


def _remove_stale():
    """Users and groups of test processes that no longer exist."""
    names = [(p.pw_name, "user") for p in pwd.getpwall()] + [(g.gr_name, "group") for g in grp.getgrall()]
    for name, kind in names:
        if not name.startswith(PREFIX) or len(name) < len(PREFIX) + 2:
            continue
        digits = name[len(PREFIX):-1]
        if not digits.isdigit() or os.path.exists(f"/proc/{digits}"):
            continue
        subprocess.run(["userdel" if kind == "user" else "groupdel", name], capture_output=True)


class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid
        self.groups = os.getgrouplist(name, pw.pw_gid)

    def __repr__(self):
        return f"{self.name}(uid {self.uid}, groups {self.groups})"


class Users:
    """with Users("a", "b", member=("m",)) as u: u.a, u.b, u.m are User objects;
    u.group is the name of a group that u.m (and only it) belongs to."""

    def __init__(self, *names, member=()):
        self.names = list(names)
        self.members = list(member)
        self.base = f"{PREFIX}{os.getpid()}"
        self.group = self.base + "g"
        self.created_users, self.created_group = [], False

    def __enter__(self):
        _remove_stale()
        try:
            if self.members:
                _tool("groupadd", self.group)
                self.created_group = True
            for n in self.names + self.members:
                name = self.base + n
                argv = ["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-c", "procnotify test"]
                if n in self.members:
                    argv += ["-G", self.group]
                _tool(*argv, name)
                self.created_users.append(name)
                setattr(self, n, User(name))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for name in self.created_users:
            # -f: a process the test failed to stop must not keep the user alive.
            _tool("userdel", "-f", name)
        if self.created_group:
            _tool("groupdel", self.group)
        self.created_users, self.created_group = [], False


def as_user(u):
    """preexec_fn: become u (groups, gid, uid) and die with the test."""
    def become():
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        os.setgroups(u.groups)
        os.setresgid(u.gid, u.gid, u.gid)
        os.setresuid(u.uid, u.uid, u.uid)
    return become
