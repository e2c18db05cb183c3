"""The harness of test_sync.py: runs loyalty-terminal and loyalty-central
exactly as spec/cli.md writes their command lines (with the cross build's
emulator in front when there is one), starts and stops `serve`, and offers
fake servers that never answer. Python standard library only.
"""

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import program_clock  # noqa: E402
import postgresql  # noqa: E402

ERROR_LINE = re.compile(r"^error: ([a-z_]+): (.+)$")

# Valid Luhn card numbers.
CARDS = ["6280001234567895", "4539578763621486", "79927398713", "4111111111111111",
         "5500005555555559", "340000000000009"]


class Config:
    """Set once by test_sync.main()."""
    terminal = None
    central = None
    emulator = []       # in front of the terminal's commands (a cross build's qemu-user)
    central_emulator = []  # in front of the centre's: empty when it is a host build
    examples = None
    tmpbase = None      # where the temporary dirs go
    slow = 1            # time factor: larger under an emulator
    stop_within = 5     # s from SIGTERM to serve's exit ("a few seconds")
    emulated = False
    postgres = None     # a postgresql.Server: each Central gets a database on it


def emulated(cmd):
    """`cmd` as it runs: under the emulator of the program it starts."""
    return (Config.central_emulator if cmd[0] == Config.central else Config.emulator) + cmd


def emulator_args(text):
    """CMAKE_CROSSCOMPILING_EMULATOR may be a CMake list (a;b) or a plain path."""
    parts = []
    for piece in (text or "").split(";"):
        parts.extend(shlex.split(piece))
    return parts


def pick_tmpbase(explicit=None):
    """Temporary dirs on tmpfs when there is one: the same SQLite files and the
    same fsync calls, without waiting for a disk on each of thousands of
    checkouts."""
    if explicit:
        return explicit
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, host="127.0.0.1"):
    try:
        c = socket.create_connection((host, port), timeout=0.5)
    except OSError:
        return False
    c.close()
    return True


def at(minutes_ago=0):
    """An RFC 3339 time `minutes_ago` before the programs' now, in UTC."""
    return program_clock.rfc3339(program_clock.now() - datetime.timedelta(minutes=minutes_ago))


def line(sku, category, qty, unit_price, discount=0):
    return {"sku": sku, "category": category, "qty": qty, "unit_price": unit_price,
            "discount": discount}


def basket(receipt_id, lines, when=None):
    return {"receipt_id": receipt_id, "at": when or at(30), "lines": lines}


class Run:
    def __init__(self, cmd, rc, out, err, elapsed, env_note=""):
        self.cmd = cmd
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed
        self.env_note = env_note

    def __str__(self):
        return "command: %s%s\nexit: %s (%.2f s)\nstdout: %r\nstderr: %r" % (
            self.env_note, " ".join(shlex.quote(c) for c in self.cmd), self.rc, self.elapsed,
            self.out, self.err)

    def json(self):
        return json.loads(self.out)


class Forwarder:
    """A TCP forwarder on a loopback port: each connection goes to the next
    upstream port in turn that accepts it (one that does not is passed
    over). With `cut`, it drops a connection, once, at the first chunk the
    terminal sends after cut() says so."""

    def __init__(self, upstream_ports, cut=None):
        self.ups = list(upstream_ports)
        self.next = 0
        self.cut = cut
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        threading.Thread(target=self._loop, daemon=True).start()

    def _connect(self):
        for _ in range(len(self.ups)):
            port = self.ups[self.next % len(self.ups)]
            self.next += 1
            try:
                u = socket.create_connection(("127.0.0.1", port), timeout=5)
                u.settimeout(None)
                return u
            except OSError:
                continue
        return None

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = self._connect()
            if u is None:
                c.close()
                continue
            threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, a, b, from_terminal):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if from_terminal and self.cut is not None and self.cuts == 0 and self.cut():
                    self.cuts += 1
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        a.close()  # each direction's thread closes the socket it read

    def close(self):
        self.sock.close()


class CuttingProxy(Forwarder):
    """Between a terminal and a server: a link lost in the middle of a sync,
    once, when `cut()` says so."""

    def __init__(self, upstream_port, cut):
        super().__init__([upstream_port], cut)


class Balancer(Forwarder):
    """A TCP load balancer in front of several servers, as a chain's spreads
    terminals over stateless centres: each connection to the next server in
    turn, a dead one passed over."""

    def __init__(self, upstream_ports):
        super().__init__(upstream_ports)


class FakeCentre:
    """A TLS server with the centre's certificate that answers each request
    with handler(method, target, body) -> (status, doc): a centre that is
    buggy or hostile. Counts the requests by path; closes past `limit`."""

    def __init__(self, central, handler, limit=5000):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(central.pki("server.pem"), central.pki("server.key"))
        ctx.load_verify_locations(central.pki("ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx, self.handler, self.limit = ctx, handler, limit
        self.count = {}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(4)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw):
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
            f = s.makefile("rb")
            while True:
                req = f.readline()
                if not req:
                    return
                method, target, _ = req.decode().split(" ", 2)
                n = 0
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    k, v = h.split(":", 1)
                    if k.lower() == "content-length":
                        n = int(v)
                body = f.read(n) if n else b""
                path = target.split("?")[0]
                self.count[path] = self.count.get(path, 0) + 1
                if sum(self.count.values()) > self.limit:
                    s.close()
                    return
                status, doc = self.handler(method, target, body)
                out = json.dumps(doc).encode()
                s.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (status, len(out)) + out)
        except (OSError, ValueError):
            pass

    def close(self):
        self.sock.close()


class StallServer:
    """A TCP server on 127.0.0.1:port that never says a word.

    mode "accept": accepts every connection and holds it open, silent;
    mode "backlog": listens but never accepts (the kernel completes the
    handshake, nobody reads); mode "close": accepts and closes at once;
    mode "garbage": accepts, sends a plain-text HTTP answer and holds on;
    mode "trickle": accepts and sends the start of a TLS record, one byte
    every 0.2 s, for ever."""

    def __init__(self, port, mode="accept"):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.conns = []
        self.accepted = 0
        self.stop_flag = threading.Event()
        self.thread = None
        if mode != "backlog":
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()

    def _loop(self):
        while not self.stop_flag.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "close":
                c.close()
                continue
            if self.mode == "trickle":
                threading.Thread(target=self._trickle, args=(c,), daemon=True).start()
            if self.mode == "garbage":
                try:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + b"\x00" * 64)
                except OSError:
                    pass
            self.conns.append(c)

    def _trickle(self, c):
        data = b"\x16\x03\x03\x3f\xff" + b"\x02" * 100000
        for i in range(len(data)):
            if self.stop_flag.wait(0.2):
                return
            try:
                c.sendall(data[i:i + 1])
            except OSError:
                return

    def close(self):
        self.stop_flag.set()
        if self.thread:
            self.thread.join(5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


class Server:
    """One `loyalty-central serve` process."""

    def __init__(self, case, central, port, host="127.0.0.1"):
        self.case = case
        self.host = host
        self.central = central
        self.port = port
        self.proc = None
        self.log_path = None
        self.starts = 0
        self.extra_args = []

    def start(self, wait=True):
        self.starts += 1
        self.log_path = os.path.join(self.central.root, "serve-%d.log" % self.starts)
        cmd = [Config.central] + self.central.store_args() + ["serve",
               "--listen", "%s:%d" % (self.host, self.port),
               "--cert", self.central.pki("server.pem"), "--key", self.central.pki("server.key"),
               "--client-ca", self.central.pki("ca.pem")]
        cmd += self.extra_args
        log = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen(emulated(cmd), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        self.case.track(self.proc)
        if wait:
            self.wait_listening()
        return self.proc

    def listening_or_port_taken(self):
        """Waits until serve listens (True) or exits because its port was
        taken (False); any other exit is left for wait_listening to report."""
        deadline = time.monotonic() + 20 * Config.slow
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return "Address already in use" not in self.log()
            if port_open(self.port, self.host):
                return True
            time.sleep(0.02)
        return True

    def wait_listening(self, limit=None):
        limit = limit or 20 * Config.slow
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.case.fail("serve exited with %s before listening\n%s" % (rc, self.log()))
            if port_open(self.port, self.host):
                return
            time.sleep(0.02)
        self.case.fail("serve did not listen on port %d within %d s\n%s" %
                       (self.port, limit, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, within=None):
        """Sends `sig`; serve must exit 0 within `within` seconds. Returns the
        time it took."""
        within = within or Config.stop_within
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.case.fail("serve did not exit within %.0f s of %s\n%s" %
                           (within, signal.Signals(sig).name, self.log()))
        elapsed = time.monotonic() - t0
        self.case.assertEqual(rc, 0, "serve exited %s after %s\n%s" %
                              (rc, signal.Signals(sig).name, self.log()))
        return elapsed

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path) as f:
                text = f.read()
        except OSError:
            return "(no serve log)"
        return "serve log (%s), last lines:\n%s" % (self.log_path, "\n".join(text.splitlines()[-15:]))


class Central:
    """A central server's data dir and its administrative commands."""

    def __init__(self, case, root, pki_dir=None, database=None):
        self.case = case
        self.root = root
        self.data = os.path.join(root, "central")
        self.pki_dir = pki_dir or os.path.join(root, "pki")
        # On PostgreSQL, a database of its own (or the one named, to share).
        self.database = None
        if Config.postgres is not None:
            self.database = database or Config.postgres.create_database()

    def store_args(self):
        """Where this centre keeps its data, as every command is told."""
        args = ["--data-dir", self.data]
        if self.database:
            args += ["--database", Config.postgres.uri(self.database)]
        return args

    def pki(self, name):
        return os.path.join(self.pki_dir, name)

    def backup(self):
        """A copy of the centre's data (its servers stopped): the data dir,
        or a database made from this one as a template."""
        if self.database:
            name = self.database + "_backup"
            Config.postgres.psql("CREATE DATABASE %s TEMPLATE %s" % (name, self.database))
            return name
        path = self.data + "-backup"
        shutil.copytree(self.data, path)
        return path

    def restore(self, backup):
        """Puts a backup() back in place of the centre's data."""
        if self.database:
            Config.postgres.psql("DROP DATABASE %s" % self.database)
            Config.postgres.psql("CREATE DATABASE %s TEMPLATE %s" % (self.database, backup))
            return
        shutil.rmtree(self.data)
        shutil.copytree(backup, self.data)

    def run(self, *args, json_out=True):
        cmd = [Config.central] + self.store_args() + [str(a) for a in args]
        if json_out:
            cmd.append("--json")
        return self.case.run_cmd(cmd)

    def ok(self, *args):
        r = self.run(*args)
        self.case.assertEqual(r.rc, 0, str(r))
        return self.case.one_json(r)

    def fails(self, rc, code, *args):
        r = self.run(*args)
        self.case.check_error(r, rc, code)
        return r

    def pki_init(self, terminals):
        return self.ok("pki", "init", "--out", self.pki_dir, "--terminals", ",".join(terminals))

    def publish(self, path):
        return self.ok("program", "publish", path)

    def balance(self, card):
        return self.ok("balance", "--card", card)

    def report(self):
        return self.ok("report")

    def query(self, sql, params=()):
        """Reads the centre's tables: central.db (WAL) with a read-only
        connection, or the database through psql (integers come back as
        integers, as sqlite3 gives them)."""
        if self.database:
            def literal(v):
                return str(int(v)) if isinstance(v, int) else "'%s'" % str(v).replace("'", "''")
            parts = sql.split("?")
            self.case.assertEqual(len(parts) - 1, len(params), sql)
            text = parts[0] + "".join(literal(p) + rest for p, rest in zip(params, parts[1:]))
            rows = Config.postgres.psql(text, self.database)
            return [tuple(int(v) if re.fullmatch(r"-?[0-9]+", v) else v for v in row) for row in rows]
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.data, "central.db"), uri=True,
                              timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()


class Terminal:
    """A terminal's data dir and its commands."""

    def __init__(self, case, root, terminal_id, store):
        self.case = case
        self.id = terminal_id
        self.store = store
        self.data = os.path.join(root, "term-%s-%s" % (terminal_id, store))
        n = 0
        while os.path.exists(self.data):
            n += 1
            self.data = os.path.join(root, "term-%s-%s-%d" % (terminal_id, store, n))

    def run(self, *args, json_out=True, stdin=None, env=None):
        cmd = [Config.terminal, "--data-dir", self.data] + [str(a) for a in args]
        if json_out:
            cmd.append("--json")
        return self.case.run_cmd(cmd, stdin=stdin, env=env)

    def ok(self, *args, stdin=None, env=None):
        r = self.run(*args, stdin=stdin, env=env)
        self.case.assertEqual(r.rc, 0, str(r))
        return self.case.one_json(r)

    def init(self, central, port, cert=None, key=None, ca=None, token_key=None, tz="Europe/Budapest"):
        cert = cert or central.pki("%s.pem" % self.id)
        key = key or central.pki("%s.key" % self.id)
        ca = ca or central.pki("ca.pem")
        token_key = token_key or central.pki("token.key")
        args = ["init", "--terminal-id", self.id, "--store", self.store]
        if tz:
            args += ["--tz", tz]
        args += ["--server", "https://127.0.0.1:%d" % port, "--ca", ca, "--cert", cert,
                 "--key", key, "--token-key", token_key]
        return self.ok(*args)

    def status(self):
        return self.ok("status")

    def verify(self):
        res = self.ok("verify")
        self.case.assertIs(res["ok"], True, "terminal %s: ledger does not verify: %r" % (self.id, res))
        return res

    def balance(self, card):
        return self.ok("balance", "--card", card)

    def enroll(self, card):
        return self.ok("enroll", "--card", card)

    def checkout(self, card, doc, redeem=None, reward=None):
        args = ["checkout", "--card", card, "--basket", "-"]
        if redeem is not None:
            args += ["--redeem", redeem]
        if reward is not None:
            args += ["--reward", reward]
        return self.ok(*args, stdin=json.dumps(doc))

    def checkout_file(self, card, path, redeem=None, reward=None):
        args = ["checkout", "--card", card, "--basket", path]
        if redeem is not None:
            args += ["--redeem", redeem]
        if reward is not None:
            args += ["--reward", reward]
        return self.ok(*args)

    def refund(self, receipt, *lines):
        args = ["refund", "--receipt", receipt]
        for ln in lines:
            args += ["--line", ln]
        return self.ok(*args)

    def sync_run(self, env=None):
        return self.run("sync", env=env)

    def sync(self, env=None):
        r = self.sync_run(env=env)
        self.case.assertEqual(r.rc, 0, "sync of terminal %s failed\n%s" % (self.id, r))
        res = self.case.one_json(r)
        for k in ("pushed", "acked_through", "members", "program_version"):
            self.case.assertIn(k, res, str(r))
        return res

    def popen_sync(self, env=None):
        cmd = [Config.terminal, "--data-dir", self.data, "sync", "--json"]
        p = subprocess.Popen(emulated(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        self.case.track(p)
        return p


class SyncCase(unittest.TestCase):
    """Fresh temp dirs per test; every process started is tracked and killed
    in tearDown if still alive."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loy-e2e-", dir=Config.tmpbase)
        self.procs = []
        self.stalls = []
        self.secrets = set(CARDS)
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        for s in self.stalls:
            s.close()
        if os.environ.get("LOYALTY_E2E_KEEP"):
            print("kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, True)

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def stall_server(self, port, mode):
        s = StallServer(port, mode)
        self.stalls.append(s)
        return s

    # -- running ------------------------------------------------------------

    def run_cmd(self, cmd, stdin=None, env=None):
        note = ""
        if env is not None:
            extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
            note = "".join("%s=%s " % kv for kv in sorted(extra.items()))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(emulated(cmd), input=stdin, capture_output=True, text=True,
                                  timeout=120 * Config.slow, env=env)
        except subprocess.TimeoutExpired as e:
            self.fail("command hung for %.0f s: %s\nstdout: %r\nstderr: %r" %
                      (e.timeout, " ".join(cmd), e.stdout, e.stderr))
        r = Run(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0, note)
        for secret in self.secrets:
            self.assertNotIn(secret, r.out, "full card number on stdout\n%s" % r)
            self.assertNotIn(secret, r.err, "full card number on stderr\n%s" % r)
        self.assertGreaterEqual(r.rc, 0, "killed by a signal\n%s" % r)
        return r

    def one_json(self, r):
        text = r.out
        self.assertTrue(text.endswith("\n"), "stdout not one line\n%s" % r)
        self.assertEqual(text.count("\n"), 1, "stdout is more than one line\n%s" % r)
        try:
            obj = json.loads(text)
        except ValueError as e:
            self.fail("stdout is not JSON (%s)\n%s" % (e, r))
        self.assertIsInstance(obj, dict, str(r))
        return obj

    def check_error(self, r, rc, code=None):
        """cli.md's failure contract: exit `rc`, one `error: <code>: <msg>`
        line on stderr and, with --json, {"error": {...}} on stdout."""
        self.assertEqual(r.rc, rc, str(r))
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1, "want exactly one line on stderr\n%s" % r)
        m = ERROR_LINE.match(lines[0])
        self.assertTrue(m, "stderr is not 'error: <code-name>: <message>'\n%s" % r)
        if code is not None:
            self.assertEqual(m.group(1), code, str(r))
        if r.cmd[-1] == "--json":
            obj = self.one_json(r)
            self.assertIn("error", obj, str(r))
            self.assertEqual(obj["error"].get("code"), m.group(1), str(r))
        return m

    # -- set-up -------------------------------------------------------------

    def write_json(self, doc, name):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def program_path(self):
        return os.path.join(Config.examples, "programs", "cafe-rewards.json")

    def load_program(self):
        with open(self.program_path()) as f:
            return json.load(f)

    def example_basket(self, name):
        return os.path.join(Config.examples, "baskets", name)

    def new_central(self, terminals=("T1", "T2", "T3"), name="hq", publish=True):
        c = Central(self, os.path.join(self.tmp, name))
        os.makedirs(c.root)
        c.pki_init(terminals)
        for f in ["ca.pem", "server.pem", "server.key", "token.key"] + \
                 ["%s.%s" % (t, e) for t in terminals for e in ("pem", "key")]:
            self.assertTrue(os.path.isfile(c.pki(f)), "pki init wrote no %s" % f)
        if publish:
            res = c.publish(self.program_path())
            self.assertEqual((res.get("program"), res.get("version")), ("cafe-rewards", 7), str(res))
        return c

    def new_server(self, central, port=None, start=True, host="127.0.0.1"):
        s = Server(self, central, port or free_port(host), host)
        if start and port is None:
            # A free port can be taken by another suite's process between
            # free_port() and serve's bind (the suites run side by side):
            # then another port, never a retry of anything under test.
            for _ in range(5):
                s.start(wait=False)
                if s.listening_or_port_taken():
                    break
                s.port = free_port(host)
            s.wait_listening()
        elif start:
            s.start()
        return s

    def new_terminal(self, terminal_id, store):
        return Terminal(self, self.tmp, terminal_id, store)
