#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run dbus-broker-launch standalone, for tests: dbus-broker-run.py SOCKET CONFIG

dbus-broker-launch expects systemd: its listening socket passed by socket
activation, a journal socket to log to, and the bus it serves reachable as
"the system bus". This wrapper provides all three: it binds SOCKET and hands
it over as fd 3 (LISTEN_FDS), points DBUS_SYSTEM_BUS_ADDRESS at it, and —
only where no journal runs — gives the launcher a private mount namespace
with a journal socket whose messages it prints. NOTIFY_SOCKET is passed
through, so READY=1 tells when the bus serves.
"""
import ctypes
import os
import socket
import sys

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
JOURNAL = "/run/systemd/journal/socket"


def private_journal():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        sys.exit(f"unshare: {os.strerror(ctypes.get_errno())}")
    libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
    os.makedirs("/run/systemd", exist_ok=True)
    if libc.mount(b"tmpfs", b"/run/systemd", b"tmpfs", 0, b"mode=0755") != 0:
        sys.exit(f"mount: {os.strerror(ctypes.get_errno())}")
    os.makedirs(os.path.dirname(JOURNAL))
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind(JOURNAL)
    return j


def main():
    path, config = sys.argv[1], sys.argv[2]
    journal = None if os.path.exists(JOURNAL) else private_journal()
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(128)
    pid = os.fork()
    if pid == 0:
        # The test ends the bus by ending this wrapper: the launcher (and
        # its dbus-broker) must go too, or every run leaks one, and the
        # leaked ones use up root's inotify instances (dbus-broker-launch
        # then fails with EMFILE).
        ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
        if os.getppid() == 1:
            os._exit(1)
        if journal:
            journal.close()
        os.dup2(listener.fileno(), 3)
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                          DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={path}")
        os.execvp("dbus-broker-launch", ["dbus-broker-launch", "--scope", "system",
                                         "--config-file", config])
    listener.close()
    if not journal:
        os.waitpid(pid, 0)
        return
    journal.setblocking(False)
    import select
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        r, _, _ = select.select([journal], [], [], 0.2)
        if r:
            for field in journal.recv(65536).split(b"\n"):
                if field.startswith(b"MESSAGE="):
                    print("dbus-broker:", field[8:].decode(errors="replace"), flush=True)


if __name__ == "__main__":
    main()
