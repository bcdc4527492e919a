# SPDX-License-Identifier: LGPL-2.1-or-later
"""Installation: meson install for both prefixes, and the Debian package.

meson_prefixes: `meson install` of the source tree, with --prefix=/usr and
with the default /usr/local, into scratch DESTDIRs. Every file must land
where the part of the system that reads it looks: the D-Bus policy in a
directory the system bus's own configuration includes, the activation file
in a standard system service directory, units in systemd's unit path, the
sysusers.d file where systemd-sysusers reads, the configuration and hooks.d
where the installed binaries look, the scripts the installed hook files
and man pages name. The installed procnotify.conf is accepted by the
installed broker as it is and with every key uncommented.

deb_package: dpkg-buildpackage of a copy of the tree, lintian at the error
level, installation on this machine (apt-get, removed again after), the
user and group created, the units checked with systemd-analyze verify, and
the broker started as its unit starts it, from the installed files: its
configuration and socket by default, on a dbus-daemon and a dbus-broker
whose configuration is the system bus's own (but for its socket), so that
the installed policy is read from where the system bus reads it, and an
unprivileged user may call the broker.
"""
import fcntl
import glob
import grp
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import pntest
from pntest import Bus, Broker, Client, check, fail, run
from pnusers import Users, as_user

SOURCE = os.environ.get("PROCNOTIFY_SOURCE", "")
SYSTEM_BUS_CONFIG = "/usr/share/dbus-1/system.conf"  # dbus-daemon's and dbus-broker-launch's
# <standard_system_servicedirs/> (dbus-daemon(1); dbus-broker-launch reads the same).
SYSTEM_SERVICE_DIRS = ("/usr/local/share/dbus-1/system-services", "/usr/share/dbus-1/system-services",
                       "/lib/dbus-1/system-services")
# sysusers.d(5)
SYSUSERS_DIRS = ("/etc/sysusers.d", "/run/sysusers.d", "/usr/local/lib/sysusers.d", "/usr/lib/sysusers.d")
PACKAGES = ("procnotify", "libprocnotify1", "libprocnotify-dev")
LOCK = "/run/lock/procnotify-test-install.lock"


def sh(argv, what, timeout=600, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    check(r.returncode == 0, f"{what} failed ({r.returncode}): {' '.join(argv)}\n{r.stdout[-3000:]}\n"
          f"{r.stderr[-3000:]}")
    return r.stdout


def bus_include_dirs():
    """The policy directories the system bus reads: <includedir>s of its
    configuration, relative ones from the configuration's directory."""
    base = os.path.dirname(SYSTEM_BUS_CONFIG)
    return {os.path.normpath(os.path.join(base, e.text.strip()))
            for e in ET.parse(SYSTEM_BUS_CONFIG).getroot().iter("includedir")}


def unit_paths():
    out = sh(["systemd-analyze", "unit-paths"], "systemd-analyze unit-paths")
    return {os.path.normpath(p) for p in out.split()}


def installed(destdir):
    """Path inside the install -> its path in destdir, for every file and link."""
    files = {}
    for root, dirs, names in os.walk(destdir):
        for n in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, n)
            files["/" + os.path.relpath(full, destdir)] = full
    return files


def one(files, pattern, what):
    hits = [p for p in files if re.fullmatch(pattern, p)]
    check(len(hits) == 1, f"{what}: expected one installed file matching {pattern}, got {hits}")
    return hits[0]


def default_path(binary, env, pattern, what):
    out = sh([binary, "--help"], f"{binary} --help", env=env)
    m = re.search(r"\(default (/\S*?%s)[;)]" % pattern, out)
    check(m, f"{what}: no default path in {binary} --help:\n{out}")
    return m.group(1)


def man_paths(text):
    """Absolute paths of procnotify's own files that a roff page names."""
    text = text.replace("\\-", "-").replace("\\&", "")
    return set(re.findall(r"(/[\w.+-]+(?:/[\w.+*-]+)*)", text))


def check_prefix(prefix, build, destdir):
    sh(["meson", "setup", build, SOURCE, f"--prefix={prefix}", "-Dtests=false"], "meson setup")
    sh(["meson", "compile", "-C", build], "meson compile")
    sh(["meson", "install", "-C", build, "--destdir", destdir], "meson install")
    files = installed(destdir)
    where = f"--prefix={prefix}"

    # The D-Bus policy, where the system bus reads it.
    policy = one(files, r".*/system\.d/org\.procnotify\.Broker1\.conf", "D-Bus policy")
    dirs = bus_include_dirs()
    check(os.path.dirname(policy) in dirs,
          f"{where}: the D-Bus policy {policy} is in no directory the system bus reads ({sorted(dirs)})")
    service = one(files, r".*/org\.procnotify\.Broker1\.service", "D-Bus activation file")
    check(os.path.dirname(service) in SYSTEM_SERVICE_DIRS,
          f"{where}: the activation file {service} is in no standard system service directory")

    # Units and the sysusers.d file, where systemd reads them.
    paths = unit_paths()
    for unit in ("procnotifyd.service", "procnotifyd.socket", "procnotify-hooks.service"):
        u = one(files, r".*/" + re.escape(unit), unit)
        check(os.path.dirname(u) in paths, f"{where}: {u} is not in systemd's unit path {sorted(paths)}")
    sysusers = one(files, r".*/sysusers\.d/[^/]+\.conf", "sysusers.d file")
    check(os.path.dirname(sysusers) in SYSUSERS_DIRS,
          f"{where}: {sysusers} is in no directory systemd-sysusers reads")
    with open(files[sysusers]) as f:
        text = f.read()
    check(re.search(r"(?m)^g procnotify ", text) and re.search(r"(?m)^u procnotify-hooks ", text),
          f"{where}: {sysusers} does not create the group procnotify and the user procnotify-hooks")

    # The configuration and hooks.d, where the installed binaries look.
    broker = files[one(files, r".*/sbin/procnotifyd", "procnotifyd")]
    runner = files[one(files, r".*/bin/procnotify-hooks", "procnotify-hooks")]
    libdir = os.path.dirname(files[one(files, r".*/libprocnotify\.so\.1", "libprocnotify")])
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    conf = default_path(broker, env, r"procnotify\.conf", "procnotifyd")
    check(conf in files, f"{where}: procnotifyd reads {conf}, which is not installed")
    hooks = default_path(runner, env, r"hooks\.d", "procnotify-hooks")
    check(os.path.isdir(os.path.join(destdir, hooks.lstrip("/"))),
          f"{where}: procnotify-hooks reads {hooks}, which is not installed "
          f"(installed: {[p for p in files if 'procnotify/' in p and '/etc' in p]})")

    # What the man pages and the hook files name is installed.
    pages = [p for p in files if re.search(r"/man/man[18]/procnotify[^/]*\.[18]$", p)]
    check(len(pages) == 3, f"{where}: man pages installed: {pages}")
    docdir = one(files, r".*/doc/procnotify/PROTOCOL\.md", "PROTOCOL.md").rsplit("/", 1)[0]
    own = (conf.rsplit("/", 1)[0], docdir, f"{prefix}/share/procnotify")  # sysconf, doc, examples
    for page in pages:
        with open(files[page]) as f:
            text = f.read()
        left = re.findall(r"@[A-Z][A-Z_]*@", text)
        check(not left, f"{where}: {page} has unsubstituted {left}")
        for path in man_paths(text):
            if any(path.startswith(d + "/") or path == d for d in own):
                # A glob (hooks.d/*.conf) names its directory.
                path = path.split("*")[0].rstrip("/") if "*" in path else path
                check(os.path.lexists(os.path.join(destdir, path.lstrip("/"))),
                      f"{where}: {page} names {path}, which is not installed")
    for hook in [p for p in files if "/examples/hooks.d/" in p]:
        with open(files[hook]) as f:
            cmd = re.search(r"(?m)^Command=(\S+)", f.read())
        check(cmd, f"{hook}: no Command=")
        script = files.get(cmd.group(1))
        check(script and os.access(script, os.X_OK),
              f"{where}: {hook} runs {cmd.group(1)}, which is not installed")

    # The installed configuration starts the installed broker, as it is and
    # with every key uncommented (its defaults are valid values).
    with open(files[conf]) as f:
        text = f.read()
    uncommented = re.sub(r"(?m)^#([A-Za-z]+=)", r"\1", text)
    check(uncommented != text and "Socket=" in uncommented, f"{conf}: no commented-out keys")
    # The socket key must name the test's own socket: everything else as shipped.
    uncommented = re.sub(r"(?m)^Socket=.*$", "", uncommented)
    saved = pntest.PROCNOTIFYD
    pntest.PROCNOTIFYD = broker
    try:
        for config in (text, uncommented):
            with Broker(config=config, env={"LD_LIBRARY_PATH": libdir}) as b:
                c = b.client()
                check(c.hello.get("type") == "hello", f"no hello: {c.hello}")
                c.close()
    finally:
        pntest.PROCNOTIFYD = saved

    # The units verify with the installed broker and man pages.
    with tempfile.TemporaryDirectory() as d:
        units = []
        for unit in ("procnotifyd.service", "procnotifyd.socket", "procnotify-hooks.service"):
            with open(files[one(files, r".*/" + re.escape(unit), unit)]) as f:
                text = re.sub(r"(?m)^(ExecStart=)(\S+)",
                              lambda m: m.group(1) + os.path.join(destdir, m.group(2).lstrip("/")), f.read())
            units.append(os.path.join(d, unit))
            with open(units[-1], "w") as f:
                f.write(text)
        manpath = os.path.join(destdir, prefix.lstrip("/"), "share", "man")
        r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, text=True,
                           env=dict(os.environ, MANPATH=manpath, SYSTEMD_LOG_COLOR="0"), timeout=120)
        check(r.returncode == 0 and not r.stderr.strip(), f"{where}: systemd-analyze verify: {r.stderr}")
    print(f"{where}: policy {policy}, units {os.path.dirname(u)}, configuration {conf}, hooks {hooks}")


def test_meson_prefixes():
    check(SOURCE and os.path.exists(os.path.join(SOURCE, "meson.build")), f"PROCNOTIFY_SOURCE: {SOURCE!r}")
    with tempfile.TemporaryDirectory(prefix="pninstall-") as d:
        for i, prefix in enumerate(("/usr", "/usr/local")):
            check_prefix(prefix, os.path.join(d, f"build{i}"), os.path.join(d, f"dest{i}"))


def copy_tree(dest):
    """The source tree as it is (uncommitted changes too), without builds."""
    if os.path.isdir(os.path.join(SOURCE, ".git")):
        names = sh(["git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                   "git ls-files").split("\0")
        for n in filter(None, names):
            src = os.path.join(SOURCE, n)
            if os.path.lexists(src):
                os.makedirs(os.path.dirname(os.path.join(dest, n)), exist_ok=True)
                shutil.copy2(src, os.path.join(dest, n), follow_symlinks=False)
    else:
        shutil.copytree(SOURCE, dest, symlinks=True,
                        ignore=lambda d, names: [n for n in names if n.startswith(("build", "obj-", ".git"))]
                        if d == SOURCE else [])


class SystemBus(Bus):
    """A bus whose configuration is the system bus's own but for where it
    listens, who it runs as and its pid file: the policy directories it
    includes are the system's."""

    def __init__(self, kind):
        super().__init__(kind)
        with open(SYSTEM_BUS_CONFIG) as f:
            text = f.read()
        base = os.path.dirname(SYSTEM_BUS_CONFIG)
        text = re.sub(r"<listen>[^<]*</listen>", f"<listen>unix:path={self.socket_path}</listen>", text)
        text = re.sub(r"<(user|pidfile|servicehelper)>[^<]*</\1>|<fork/>", "", text)
        text = re.sub(r"<includedir>([^/<][^<]*)</includedir>",
                      lambda m: f"<includedir>{os.path.join(base, m.group(1))}</includedir>", text)
        with open(self.config, "w") as f:
            f.write(text)


def start_as_unit(exec_start, args, log):
    """The broker as its unit's ExecStart= runs it: default configuration
    and socket; READY=1 on NOTIFY_SOCKET."""
    d = tempfile.mkdtemp(prefix="pninstall-notify-")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(d, "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(d, "notify"))
    env.pop("JOURNAL_STREAM", None)
    proc = subprocess.Popen(exec_start + args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                            preexec_fn=pntest._die_with_parent)
    deadline = time.monotonic() + 30
    try:
        while True:
            check(proc.poll() is None, f"the installed broker exited with {proc.returncode}")
            check(time.monotonic() < deadline, "the installed broker sent no READY=1 within 30 s")
            r, _, _ = select.select([notify], [], [], 0.2)
            if r and "READY=1" in notify.recv(4096).decode().split("\n"):
                return proc
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        notify.close()
        shutil.rmtree(d, ignore_errors=True)


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail(f"{what} did not stop within 15 s of SIGTERM")
    check(rc == 0, f"{what} exited with {rc} after SIGTERM")


def apt(*args):
    # Other apt and dpkg runs on this machine: wait for their lock.
    return sh(["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q", "--no-install-recommends"]
              + list(args), "apt-get " + args[0], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def exercise_installed(log):
    """The installed package: user, group, files, units, and the broker."""
    try:
        hooks_user = pwd.getpwnam("procnotify-hooks")
        group = grp.getgrnam("procnotify")
    except KeyError as e:
        fail(f"the package did not create its user and group: {e}")
    check("procnotify-hooks" in group.gr_mem or hooks_user.pw_gid == group.gr_gid,
          f"procnotify-hooks is not in the group procnotify: {group}")
    check(os.path.exists("/etc/procnotify/procnotify.conf") and os.path.isdir("/etc/procnotify/hooks.d"),
          "no /etc/procnotify/procnotify.conf or hooks.d")
    conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", "procnotify"], "dpkg-query")
    check("/etc/procnotify/procnotify.conf" in conffiles, f"procnotify.conf is not a conffile: {conffiles}")
    policy = [p for p in sh(["dpkg", "-L", "procnotify"], "dpkg -L").split() if p.endswith("Broker1.conf")]
    check(len(policy) == 1 and os.path.dirname(policy[0]) in bus_include_dirs(),
          f"the packaged policy {policy} is in no directory the system bus reads")

    units = [f"/lib/systemd/system/{u}" for u in ("procnotifyd.service", "procnotifyd.socket",
                                                  "procnotify-hooks.service")]
    r = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))
    check(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify ({r.returncode}): {r.stderr}")
    with open(units[0]) as f:
        exec_start = re.search(r"(?m)^ExecStart=(.+)$", f.read()).group(1).split()
    with open(units[1]) as f:
        sock = re.search(r"(?m)^ListenStream=(.+)$", f.read()).group(1).strip()
    check(exec_start[0] == "/usr/sbin/procnotifyd", f"ExecStart={' '.join(exec_start)}")
    if os.path.exists(sock):
        try:
            Client(sock, timeout=2)
            fail(f"a broker already serves {sock}: the test starts the installed one there")
        except (ConnectionRefusedError, FileNotFoundError):
            pass

    made_run_dir = not os.path.exists(os.path.dirname(sock))
    try:
        for kind in Bus.KINDS:
            with SystemBus(kind) as bus, Users("u") as users:
                proc = start_as_unit(exec_start, [f"--dbus={bus.address}"], log)
                try:
                    c = Client(sock)
                    check(c.hello.get("type") == "hello", f"{sock}: no hello: {c.hello}")
                    c.close()
                    r = subprocess.run(["busctl", f"--address={bus.address}", "--json=short", "call",
                                        "org.procnotify.Broker1", "/org/procnotify/Broker1",
                                        "org.procnotify.Broker1", "GetStatistics"],
                                       capture_output=True, text=True, timeout=30,
                                       preexec_fn=as_user(users.u))
                    check(r.returncode == 0 and '"seq"' in r.stdout,
                          f"{kind}: an unprivileged user's call to the installed broker failed: {r.stderr}")
                finally:
                    stop(proc, "the installed broker")
                check(not os.path.exists(sock), f"{sock} left behind after SIGTERM")
    finally:
        if made_run_dir:
            shutil.rmtree(os.path.dirname(sock), ignore_errors=True)


def test_deb_package():
    check(SOURCE and os.path.exists(os.path.join(SOURCE, "debian", "control")), f"PROCNOTIFY_SOURCE: {SOURCE!r}")
    with tempfile.TemporaryDirectory(prefix="pninstall-deb-") as d, open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installation on this machine at a time
        src = os.path.join(d, "procnotify")
        copy_tree(src)
        t0 = time.monotonic()
        sh(["dpkg-buildpackage", "-us", "-uc", "-b"], "dpkg-buildpackage", timeout=1200, cwd=src,
           env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2"))
        t1 = time.monotonic()
        debs = sorted(glob.glob(os.path.join(d, "*.deb")))
        for p in PACKAGES:
            check(any(os.path.basename(x).startswith(p + "_") for x in debs), f"no {p} package in {debs}")
        changes = glob.glob(os.path.join(d, "*.changes"))
        r = subprocess.run(["lintian", "--fail-on", "error", "--no-tag-display-limit"] + changes,
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, f"lintian found errors:\n{r.stdout}\n{r.stderr}")
        t2 = time.monotonic()
        print(f"dpkg-buildpackage {t1 - t0:.0f} s, lintian {t2 - t1:.0f} s")

        before = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "procnotify"], capture_output=True,
                                text=True).stdout
        check("installed" not in before or "not-installed" in before,
              "procnotify is installed on this machine: the test installs and purges its own build")
        had_user = "procnotify-hooks" in {p.pw_name for p in pwd.getpwall()}
        had_group = "procnotify" in {g.gr_name for g in grp.getgrall()}
        log_path = os.path.join(d, "broker.log")
        try:
            apt("install", *[x for x in debs if "dbgsym" not in x and "-dev_" not in x])
            with open(log_path, "ab") as log:
                exercise_installed(log)
        except BaseException:
            if os.path.exists(log_path):
                with open(log_path, errors="replace") as f:
                    print("--- installed broker's log ---\n" + f.read())
            raise
        finally:
            apt("purge", *PACKAGES[:2])
            # Debian leaves system users behind on purge; the test leaves
            # the machine as it found it.
            if not had_user:
                subprocess.run(["userdel", "procnotify-hooks"], capture_output=True)
            if not had_group:
                subprocess.run(["groupdel", "procnotify"], capture_output=True)
        left = [p for p in ("/etc/procnotify", "/usr/sbin/procnotifyd", "/lib/systemd/system/procnotifyd.service",
                            "/etc/systemd/system/dbus-org.procnotify.Broker1.service") if os.path.lexists(p)]
        check(not left, f"left behind after purge: {left}")
        print(f"installed, run and purged in {time.monotonic() - t2:.0f} s")


if __name__ == "__main__":
    run({"meson_prefixes": test_meson_prefixes, "deb_package": test_deb_package})
