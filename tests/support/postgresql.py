#!/usr/bin/env python3
"""A PostgreSQL server of the tests' own: initdb in a temporary dir, started
with pg_ctl on a free loopback port, stopped and removed afterwards. Debian's
PostgreSQL (postgresql-15); as root (CI) the server runs as the unprivileged
`postgres` user, which the package creates, since PostgreSQL refuses root.

As a program, it runs one command with the server up:

    tests/support/postgresql.py [--durable] -- COMMAND ARGS...

and passes it LOYALTY_TEST_POSTGRESQL, a connection URI of the server's
`postgres` database (trust authentication on loopback, user postgres). The
exit code is the command's. As a module: Server(), .start(), .uri(db),
.create_database(), .psql(), .stop(mode), .kill_connections().

fsync is off (the tests' machine does not lose power; an immediate stop or a
SIGKILL of a backend loses nothing that fsync would keep), synchronous_commit
stays on: a commit that returned is in the WAL, the fault tests rely on it.
--durable turns fsync and full-page writes on, as a production server has
them (the benchmarks).
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL server found (/usr/lib/postgresql/*/bin): "
                           "toolchains/install-deps.sh postgresql installs it")
    return os.path.dirname(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, root=None, settings=None):
        self.bin = bindir()
        self.owned_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="loyalty-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.settings = {"fsync": "off", "full_page_writes": "off", "max_connections": "300",
                         "shared_buffers": "128MB", "listen_addresses": "'127.0.0.1'",
                         "unix_socket_directories": "'%s'" % self.root}
        self.settings.update(settings or {})
        self.as_user = []
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.log = os.path.join(self.root, "server.log")
        self.databases = 0

    def _run(self, *cmd, check=True):
        p = subprocess.run(self.as_user + list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=self.root)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stdout[-2000:]))
        return p

    def start(self):
        if not os.path.exists(self.data):
            self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
                for k, v in self.settings.items():
                    f.write("%s = %s\n" % (k, v))
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                  "-o", "-p %d" % self.port, "start")
        return self

    def stop(self, mode="fast"):
        """Stops the server: fast (clients cut, clean), immediate (as a crash)."""
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop",
                  check=False)

    def running(self):
        return self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "status", check=False).returncode == 0

    def uri(self, db="postgres"):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def psql(self, sql, db="postgres"):
        """Runs SQL; returns the rows as lists of strings (tab separated)."""
        p = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-At", "-F", "\t", "-v",
                            "ON_ERROR_STOP=1", "-d", self.uri(db), "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError("psql: %s" % p.stderr.strip())
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]

    def create_database(self, prefix="t"):
        self.databases += 1
        name = "%s_%d_%d" % (prefix, os.getpid(), self.databases)
        self.psql("CREATE DATABASE %s" % name)
        return name

    def kill_connections(self, db):
        """Cuts every client connection to `db` (as a network fault would)."""
        self.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' "
                  "AND pid <> pg_backend_pid()" % db)

    def close(self):
        if self.running():
            self.stop("immediate")
        if self.owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if "--" not in argv or any(a != "--durable" for a in argv[:argv.index("--")]):
        print("usage: postgresql.py [--durable] -- COMMAND ARGS...", file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    durable = "--durable" in argv[:argv.index("--")]
    with Server(settings={"fsync": "on", "full_page_writes": "on"} if durable else None) as pg:
        env = dict(os.environ, LOYALTY_TEST_POSTGRESQL=pg.uri())
        proc = subprocess.Popen(cmd, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
