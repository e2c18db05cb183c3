#!/usr/bin/env python3
"""End-to-end tests of loyalty-terminal, driven exactly as spec/cli.md writes
its command lines. Every test starts from a fresh temporary data dir.

    test_terminal_cli.py --terminal PATH [--emulator "qemu-aarch64"] --examples DIR
                         [unittest options, e.g. -v or a test name]

Only the Python standard library is used. With --emulator, every command is
run under it (cross builds run aarch64 binaries under qemu-user).
"""

import argparse
import copy
import datetime
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import program_clock  # noqa: E402

TERMINAL = None
EMULATOR = []
EXAMPLES = None
TIMEOUT = 120  # seconds per command; generous for qemu-user

# Luhn-valid card numbers (see luhn()). cli.md's own example, 6280001234567897,
# fails the Luhn check; ...7895 is the valid number of that series.
CARD = "6280001234567895"
BAD_LUHN = "6280001234567897"

ERROR_LINE = re.compile(r"^error: ([a-z_]+): (.+)$")
MASKED = re.compile(r"^\*{4}\d{4}$")


def luhn_complete(prefix):
    """prefix + the Luhn check digit."""
    for d in "0123456789":
        if luhn(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


def luhn(number):
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def emulator_args(text):
    """CMAKE_CROSSCOMPILING_EMULATOR may be a CMake list (a;b) or a plain path."""
    parts = []
    for piece in (text or "").split(";"):
        parts.extend(shlex.split(piece))
    return parts


def load_program():
    with open(os.path.join(EXAMPLES, "programs", "cafe-rewards.json")) as f:
        return json.load(f)


def line(sku, category, qty, unit_price, discount=0):
    return {"sku": sku, "category": category, "qty": qty, "unit_price": unit_price,
            "discount": discount}


class Run:
    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __str__(self):
        return "command: %s\nexit: %d\nstdout: %r\nstderr: %r" % (
            " ".join(shlex.quote(c) for c in self.cmd), self.rc, self.out, self.err)


class TerminalCase(unittest.TestCase):
    """A fresh data dir per test and helpers to run the program."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loy-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.data = os.path.join(self.tmp, "data")
        self.files = 0
        # Full card numbers (and the scans holding them) that must never be
        # printed.
        self.secrets = {CARD, BAD_LUHN}

    # -- running -----------------------------------------------------------

    def run_cli(self, *args, stdin=None, json_out=True, data_dir=None, env=None):
        """`env`: variables to set for this run, on top of the suite's."""
        cmd = [TERMINAL]
        if data_dir is not False:
            cmd += ["--data-dir", data_dir or self.data]
        cmd += [str(a) for a in args]
        if json_out:
            cmd.append("--json")
        proc = subprocess.run(EMULATOR + cmd, input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT, env=dict(os.environ, **env) if env else None)
        r = Run(cmd, proc)
        for secret in self.secrets:
            self.assertNotIn(secret, r.out, "full card number on stdout\n%s" % r)
            self.assertNotIn(secret, r.err, "full card number on stderr\n%s" % r)
        self.assertNotEqual(r.rc, -11, "crashed (SIGSEGV)\n%s" % r)
        self.assertGreaterEqual(r.rc, 0, "killed by a signal\n%s" % r)
        return r

    def one_json(self, r):
        """stdout is exactly one JSON object (one line) and nothing else."""
        text = r.out
        self.assertTrue(text.endswith("\n"), "stdout not one line\n%s" % r)
        self.assertEqual(text.count("\n"), 1, "stdout is more than one line\n%s" % r)
        try:
            obj = json.loads(text)
        except ValueError as e:
            self.fail("stdout is not JSON (%s)\n%s" % (e, r))
        self.assertIsInstance(obj, dict, str(r))
        return obj

    def ok(self, *args, stdin=None):
        """Runs with --json; exit 0, nothing on stderr, one JSON object."""
        r = self.run_cli(*args, stdin=stdin)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.err, "", str(r))
        return self.one_json(r)

    def ok_in(self, data_dir, *args):
        r = self.run_cli(*args, data_dir=data_dir)
        self.assertEqual(r.rc, 0, str(r))
        return self.one_json(r)

    def human(self, *args, stdin=None):
        """Runs without --json; exit 0, a short text for a cashier."""
        r = self.run_cli(*args, stdin=stdin, json_out=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(r.err, "", str(r))
        self.assertTrue(r.out.strip(), "no output\n%s" % r)
        self.assertLessEqual(len(r.out.splitlines()), 15, "not short\n%s" % r)
        for ln in r.out.splitlines():
            self.assertLessEqual(len(ln), 100, "line too long\n%s" % r)
        return r.out

    def check_error(self, r, rc, code):
        """The failure contract of cli.md for one run; returns the message."""
        self.assertEqual(r.rc, rc, str(r))
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1, "want exactly one line on stderr\n%s" % r)
        self.assertTrue(r.err.endswith("\n"), str(r))
        m = ERROR_LINE.match(lines[0])
        self.assertTrue(m, "stderr is not 'error: <code-name>: <message>'\n%s" % r)
        if code is not None:
            self.assertEqual(m.group(1), code, str(r))
        return m

    def refused(self, rc, code, *args, stdin=None, check_entries=True, env=None):
        """Runs with and without --json: both fail with `rc`, one error line on
        stderr, and with --json exactly {"error": {"code", "message"}} on
        stdout. Nothing is recorded (the ledger's journal read directly: two
        runs fewer a case, which counts under an emulator). Returns the
        message."""
        before = self.recorded() if check_entries else None
        r = self.run_cli(*args, stdin=stdin, env=env)
        m = self.check_error(r, rc, code)
        obj = self.one_json(r)
        self.assertEqual(set(obj), {"error"}, str(r))
        self.assertEqual(set(obj["error"]), {"code", "message"}, str(r))
        self.assertEqual(obj["error"]["code"], m.group(1), str(r))
        self.assertIsInstance(obj["error"]["message"], str)
        self.assertTrue(obj["error"]["message"], str(r))
        self.assertEqual(obj["error"]["message"], m.group(2), str(r))
        h = self.run_cli(*args, stdin=stdin, json_out=False, env=env)
        hm = self.check_error(h, rc, code)
        self.assertEqual(hm.group(1), m.group(1), str(h))
        self.assertNotIn('{"error"', h.out, "JSON without --json\n%s" % h)
        if check_entries:
            self.assertEqual(self.recorded(), before, "a refused command recorded something")
        return obj["error"]["message"]

    # -- set-up ------------------------------------------------------------

    def write_json(self, doc, name=None):
        self.files += 1
        path = os.path.join(self.tmp, name or ("doc-%d.json" % self.files))
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def basket(self, receipt_id, at, lines):
        return self.write_json({"receipt_id": receipt_id, "at": at, "lines": lines})

    def example_basket(self, name):
        return os.path.join(EXAMPLES, "baskets", name)

    def program_path(self):
        return os.path.join(EXAMPLES, "programs", "cafe-rewards.json")

    def init(self, terminal_id="T1", store="S1", tz="Europe/Budapest"):
        args = ["init", "--terminal-id", terminal_id, "--store", store]
        if tz:
            args += ["--tz", tz]
        return self.ok(*args)

    def setup_terminal(self, program=None):
        self.init()
        path = self.write_json(program) if program is not None else self.program_path()
        self.ok("program", "load", path)

    def enroll(self, card=CARD):
        self.secrets.add(card)
        return self.ok("enroll", "--card", card)

    def entries(self):
        return self.ok("status")["entries"]

    def balance(self, card=CARD):
        return self.ok("balance", "--card", card)

    def checkout(self, card, basket, *extra, stdin=None):
        return self.ok("checkout", "--card", card, "--basket", basket, *extra, stdin=stdin)

    def recorded(self):
        """The journal's entries as the ledger file holds them: how many, the
        last, and their bodies' length; None before there is a ledger."""
        path = os.path.join(self.data, "ledger.db")
        if not os.path.exists(path):
            return None
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            return con.execute("SELECT count(*), coalesce(max(seq), 0), coalesce(sum(length(body)), 0) "
                               "FROM journal").fetchone()
        finally:
            con.close()

    def journal(self, sql, params=()):
        con = sqlite3.connect(os.path.join(self.data, "ledger.db"))
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def tamper(self, sql):
        """Runs one statement on the ledger behind the program's back; returns
        the number of rows it changed."""
        con = sqlite3.connect(os.path.join(self.data, "ledger.db"))
        try:
            changed = con.execute(sql).rowcount
            con.commit()
            return changed
        finally:
            con.close()

    def journal_text_column(self):
        """The journal's column holding the entry's data as JSON text: "data"
        where the ledger keeps one, else the hashed "body"."""
        cols = [r[1] for r in self.journal("PRAGMA table_info(journal)")]
        return "data" if "data" in cols else "body"

    # A big basket on Monday 2026-11-23: 1000.00 EUR of beans, 1050 points
    # for a Member (base 1000 + big-basket 50); afterwards the member is Gold.
    def big_basket(self, receipt_id="BIG-1", at="2026-11-23T09:00:00+01:00", qty=10):
        return self.basket(receipt_id, at, [line("BEAN-1K", "beans", qty, 10000)])

    # -- result shapes -----------------------------------------------------

    def assert_checkout_shape(self, res, card=CARD):
        for key, types in (("receipt_id", str), ("card", str), ("tier", str), ("earned", int),
                           ("redeemed", int), ("discount", int), ("breakdown", list),
                           ("replayed", bool)):
            self.assertIn(key, res)
            self.assertIsInstance(res[key], types, key)
            if types is int:
                self.assertNotIsInstance(res[key], bool, key)
        self.assertIn("balance", res)
        self.assertTrue(res["balance"] is None or
                        (isinstance(res["balance"], int) and not isinstance(res["balance"], bool)))
        self.assertRegex(res["card"], MASKED)
        self.assertEqual(res["card"], "****" + card[-4:])
        self.assertTrue(res["breakdown"], "breakdown is empty")
        self.assertEqual(res["breakdown"][0]["rule"], "base")
        for part in res["breakdown"]:
            self.assertEqual(set(part) & {"rule", "points"}, {"rule", "points"})
            self.assertIsInstance(part["rule"], str)
            self.assertIsInstance(part["points"], int)
        self.assertEqual(sum(p["points"] for p in res["breakdown"]), res["earned"])
        return res


def breakdown(res):
    return {p["rule"]: p["points"] for p in res["breakdown"]}


# ---------------------------------------------------------------------------


class InitTest(TerminalCase):

    def test_init_makes_a_private_data_dir(self):
        res = self.init(tz="Europe/Budapest")
        self.assertEqual(res["terminal_id"], "T1")
        self.assertEqual(res["store"], "S1")
        self.assertTrue(os.path.isdir(self.data))
        self.assertEqual(stat.S_IMODE(os.stat(self.data).st_mode), 0o700)
        st = self.ok("status")
        self.assertEqual(st["terminal_id"], "T1")
        self.assertEqual(st["store"], "S1")
        self.assertIsNone(st["program"])
        self.assertEqual(st["entries"], 0)
        self.assertEqual(st["unsynced"], 0)
        self.assertIsNone(st["last_sync"])

    def test_init_without_tz_and_human_output(self):
        out = self.human("init", "--terminal-id", "till-01", "--store", "store_7.b")
        self.assertIn("till-01", out)
        st = self.ok("status")
        self.assertEqual((st["terminal_id"], st["store"]), ("till-01", "store_7.b"))

    def test_init_twice_same_id_ok_other_refused(self):
        self.init()
        self.init()
        self.ok("program", "load", self.program_path())
        self.enroll()
        self.init()  # again, on a used terminal: changes nothing
        self.assertEqual(self.entries(), 1)
        self.refused(2, None, "init", "--terminal-id", "T2", "--store", "S1")
        self.refused(2, None, "init", "--terminal-id", "T1", "--store", "S2")
        st = self.ok("status")
        self.assertEqual((st["terminal_id"], st["store"]), ("T1", "S1"))
        self.assertEqual(st["program"], {"id": "cafe-rewards", "version": 7})

    def test_init_bad_arguments(self):
        self.refused(2, None, "init", "--terminal-id", "T1", check_entries=False)
        self.refused(2, None, "init", "--store", "S1", check_entries=False)
        self.refused(2, None, "init", "--terminal-id", "T 1", "--store", "S1",
                     check_entries=False)
        self.refused(2, None, "init", "--terminal-id", "T1", "--store", "S1", "--tz",
                     "Mars/Olympus_Mons", check_entries=False)
        self.refused(2, None, "init", "--terminal-id", "T1", "--store", "S1", "--colour",
                     "red", check_entries=False)
        # None of them made the dir a terminal.
        self.init()

    def test_failed_init_leaves_nothing_behind(self):
        self.refused(2, None, "init", "--terminal-id", "T1", "--store", "S1", "--token-key",
                     os.path.join(self.tmp, "missing.key"), check_entries=False)
        self.refused(2, None, "init", "--terminal-id", "T1", "--store", "S1", "--server",
                     "https://127.0.0.1:9", check_entries=False)
        # The dir is still nobody's: another terminal may take it.
        res = self.init(terminal_id="T9", store="S9")
        self.assertEqual((res["terminal_id"], res["store"]), ("T9", "S9"))

    def test_token_key_makes_one_member_token(self):
        # Terminals given the chain's key hash a card to the same member
        # token; a terminal set up alone makes its own key.
        key = os.path.join(self.tmp, "token.key")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        dirs = [os.path.join(self.tmp, n) for n in ("t1", "t2", "t3")]
        for i, d in enumerate(dirs):
            args = ["init", "--terminal-id", "T%d" % i, "--store", "S1"]
            if i < 2:
                args += ["--token-key", key]
            r = self.run_cli(*args, data_dir=d)
            if r.rc == 2 and i == 0:
                self.skipTest("--token-key is only taken with --server: %s" % r.err.strip())
            self.assertEqual(r.rc, 0, str(r))
            self.ok_in(d, "program", "load", self.program_path())
            self.ok_in(d, "enroll", "--card", CARD)
        tokens = []
        for d in dirs:
            con = sqlite3.connect(os.path.join(d, "ledger.db"))
            try:
                tokens.append(con.execute("SELECT token FROM journal WHERE kind = 'enroll'")
                              .fetchone()[0])
            finally:
                con.close()
        self.assertEqual(tokens[0], tokens[1])
        self.assertNotEqual(tokens[0], tokens[2])
        for t in tokens:
            self.assertNotIn(CARD, t)

    def test_commands_need_an_initialised_data_dir(self):
        r = self.run_cli("status")
        self.assertNotEqual(r.rc, 0, str(r))
        self.check_error(r, r.rc, None)
        self.assertIn("error", self.one_json(r))

    def test_global_options_before_the_command(self):
        self.init()
        r = self.run_cli("--json", "status", json_out=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(self.one_json(r)["terminal_id"], "T1")

    def test_data_dir_is_required(self):
        r = self.run_cli("status", data_dir=False)
        self.check_error(r, 2, None)
        self.assertIn("error", self.one_json(r))


class ProgramTest(TerminalCase):

    def test_program_load(self):
        self.init()
        res = self.ok("program", "load", self.program_path())
        self.assertEqual(res.get("program"), "cafe-rewards")
        self.assertEqual(res.get("version"), 7)
        self.assertEqual(self.ok("status")["program"], {"id": "cafe-rewards", "version": 7})
        # Same version, same content: fine, nothing changes.
        self.ok("program", "load", self.program_path())
        out = self.human("program", "load", self.program_path())
        self.assertIn("cafe-rewards", out)
        self.assertEqual(self.ok("status")["program"], {"id": "cafe-rewards", "version": 7})

    def invalid_documents(self):
        base = load_program()
        base["version"] = 8
        docs = []

        def variant(field, change):
            d = copy.deepcopy(base)
            change(d)
            docs.append((field, d))

        variant("per", lambda d: d["earn"].update(per=0))
        variant("kind", lambda d: d["campaigns"].append(
            {"id": "odd", "kind": "lottery", "points": 5}))
        variant("redeem", lambda d: d.pop("redeem"))
        variant("tiers", lambda d: d["tiers"].reverse())
        variant("points", lambda d: d["earn"].update(points=-1))
        variant("min_points", lambda d: d["redeem"].update(min_points=-100))
        variant("check", lambda d: d["card"].update(check="crc32"))
        variant("campaigns", lambda d: d["campaigns"].append(copy.deepcopy(d["campaigns"][0])))
        variant("rewards", lambda d: d["rewards"].append(copy.deepcopy(d["rewards"][0])))
        variant("days", lambda d: d["campaigns"][0].update(days=["someday"]))
        variant("cost", lambda d: d["rewards"][0].update(cost=-300))
        variant("max_length", lambda d: d["card"].update(min_length=20, max_length=19))
        variant("min_spend", lambda d: d["campaigns"][2].pop("min_spend"))
        return docs

    def test_invalid_program_refused_naming_the_field(self):
        self.init()
        for field, doc in self.invalid_documents():
            with self.subTest(field=field):
                msg = self.refused(2, None, "program", "load", self.write_json(doc))
                if field in ("campaigns", "rewards"):
                    # Duplicate ids: the message names the list or the id.
                    self.assertTrue(field in msg or "id" in msg, msg)
                elif field == "max_length":
                    self.assertTrue("max_length" in msg or "min_length" in msg, msg)
                else:
                    self.assertIn(field, msg)
                self.assertIsNone(self.ok("status")["program"])

    def test_invalid_program_keeps_the_version_in_force(self):
        self.init()
        self.ok("program", "load", self.program_path())
        for field, doc in self.invalid_documents():
            with self.subTest(field=field):
                self.refused(2, None, "program", "load", self.write_json(doc))
                self.assertEqual(self.ok("status")["program"],
                                 {"id": "cafe-rewards", "version": 7})

    def test_malformed_program_json(self):
        self.init()
        path = os.path.join(self.tmp, "broken.json")
        with open(path, "w") as f:
            f.write('{"program": "cafe-rewards", "version": ')
        self.refused(2, None, "program", "load", path)
        self.refused(2, None, "program", "load", os.path.join(self.tmp, "missing.json"))
        self.assertIsNone(self.ok("status")["program"])

    def test_older_version_refused_and_newer_kept(self):
        self.init()
        v8 = load_program()
        v8["version"] = 8
        v8["earn"]["per"] = 50
        self.ok("program", "load", self.write_json(v8))
        msg = self.refused(2, None, "program", "load", self.program_path())
        self.assertIn("7", msg)
        self.assertEqual(self.ok("status")["program"], {"id": "cafe-rewards", "version": 8})
        # Same version, other content: refused too.
        other = copy.deepcopy(v8)
        other["earn"]["per"] = 25
        self.refused(2, None, "program", "load", self.write_json(other))
        # Same version, same content: fine.
        self.ok("program", "load", self.write_json(v8))
        # The version in force is the one that counts: 1 point per 0.50 EUR.
        self.enroll()
        res = self.checkout(CARD, self.basket("R-1", "2026-11-23T10:00:00+01:00",
                                              [line("BEAN-1K", "beans", 1, 1000)]))
        self.assertEqual(breakdown(res)["base"], 20)
        v9 = copy.deepcopy(v8)
        v9["version"] = 9
        self.ok("program", "load", self.write_json(v9))
        self.assertEqual(self.ok("status")["program"], {"id": "cafe-rewards", "version": 9})

    def test_commands_need_a_program(self):
        self.init()
        self.refused(2, None, "enroll", "--card", CARD)
        self.refused(2, None, "checkout", "--card", CARD, "--basket",
                     self.example_basket("tuesday-coffee.json"))
        self.assertEqual(self.entries(), 0)


class CardTest(TerminalCase):

    def test_enroll(self):
        self.setup_terminal()
        res = self.enroll("6280 0012-3456 7895")
        self.assertEqual(res["card"], "****7895")
        self.assertIs(res["known"], True)
        self.assertEqual(self.entries(), 1)
        # Enrolling again is harmless.
        self.assertIs(self.enroll(CARD)["known"], True)
        out = self.human("enroll", "--card", CARD)
        self.assertIn("****7895", out)
        bal = self.balance()
        self.assertIs(bal["known"], True)
        self.assertEqual(bal["balance"], 0)

    def test_scans_of_one_member(self):
        self.setup_terminal()
        self.secrets |= {"6280 0012 3456 7895", "6280-0012-3456-7895"}
        self.enroll("6280 0012 3456 7895")
        scans = ["6280001234567895", "6280-0012-3456-7895", ";6280001234567895=2812?",
                 "LOYALTY:6280001234567895"]
        total = 0
        for i, scan in enumerate(scans):
            res = self.checkout(scan, self.basket("S-%d" % i, "2026-11-23T10:0%d:00+01:00" % i,
                                                  [line("BEAN-1K", "beans", 1, 1000)]))
            self.assertEqual(res["card"], "****7895")
            total += res["earned"]
            self.assertEqual(res["balance"], total, "scan %r is another member" % scan)
        for scan in scans:
            bal = self.balance(scan)
            self.assertEqual(bal["card"], "****7895")
            self.assertIs(bal["known"], True)
            self.assertEqual(bal["balance"], total)

    def test_invalid_cards_refused(self):
        self.setup_terminal()
        self.enroll()
        for scan in (BAD_LUHN, ";6280001234567897=2812?", "LOYALTY:6280001234567897",
                     "6280x01234567895", "", "1234567", ";6280001234567895", "LOYALTY:"):
            with self.subTest(scan=scan):
                self.refused(2, "bad_card", "enroll", "--card", scan)
                self.refused(2, "bad_card", "balance", "--card", scan)
                self.refused(2, "bad_card", "checkout", "--card", scan, "--basket",
                             self.example_basket("tuesday-coffee.json"))
        self.assertEqual(self.entries(), 1)

    def test_card_checks_ean13_and_none(self):
        p = load_program()
        p["program"] = "gs1-cards"
        p["card"] = {"check": "ean13", "min_length": 13, "max_length": 13}
        self.setup_terminal(p)
        ean = "4006381333931"  # a valid EAN-13
        self.secrets |= {ean, "4006381333932"}
        self.assertEqual(self.enroll(ean)["card"], "****3931")
        self.refused(2, "bad_card", "enroll", "--card", "4006381333932")
        p["program"] = "any-cards"
        p["card"] = {"check": "none", "min_length": 8, "max_length": 19}
        self.ok("program", "load", self.write_json(p))
        self.assertEqual(self.enroll(BAD_LUHN)["card"], "****7897")
        self.refused(2, "bad_card", "enroll", "--card", "1234567")


class CheckoutTest(TerminalCase):

    def test_checkout_json(self):
        self.setup_terminal()
        self.enroll()
        res = self.assert_checkout_shape(
            self.checkout(CARD, self.example_basket("tuesday-coffee.json")))
        # Tuesday 2026-11-24: coffee 7.00 + pastry 7.00 eligible (tobacco and
        # BAG-01 excluded): base 14, double-tuesday 14, pastry-x3 on 7.00: 14.
        self.assertEqual(res["receipt_id"], "R-1001")
        self.assertEqual(res["tier"], "Member")
        self.assertEqual(breakdown(res), {"base": 14, "double-tuesday": 14, "pastry-x3": 14})
        self.assertEqual([p["rule"] for p in res["breakdown"]],
                         ["base", "double-tuesday", "pastry-x3"])
        self.assertEqual((res["earned"], res["redeemed"], res["discount"]), (42, 0, 0))
        self.assertEqual(res["balance"], 42)
        self.assertIs(res["replayed"], False)
        res = self.checkout(CARD, self.example_basket("saturday-big.json"))
        # Saturday: 35.90 beans + 24.00 cake + 3.50 coffee (gift card
        # excluded): base 63, pastry-x3 on 24.00: 48, big-basket 50.
        self.assertEqual(breakdown(res), {"base": 63, "pastry-x3": 48, "big-basket": 50})
        self.assertEqual(res["earned"], 161)
        self.assertEqual(res["balance"], 203)
        self.assertEqual(self.balance()["balance"], 203)
        self.assertEqual(self.entries(), 3)

    def test_unknown_card_earns_with_balance_null(self):
        self.setup_terminal()
        other = luhn_complete("628000999999999")
        self.secrets.add(other)
        res = self.assert_checkout_shape(
            self.checkout(other, self.example_basket("tuesday-coffee.json")), card=other)
        self.assertIsNone(res["balance"])
        self.assertEqual(res["earned"], 42)
        self.assertEqual(res["tier"], "Member")
        bal = self.balance(other)
        self.assertIs(bal["known"], False)
        self.assertIsNone(bal["balance"])
        self.assertEqual(bal["redeemable_today"], 0)
        # It earns, it cannot redeem.
        self.refused(3, "balance_unknown", "checkout", "--card", other, "--basket",
                     self.example_basket("saturday-big.json"), "--redeem", "100")
        # Enrolling makes its balance known here, with what it earned.
        self.enroll(other)
        self.assertEqual(self.balance(other)["balance"], 42)

    def test_basket_from_stdin(self):
        self.setup_terminal()
        self.enroll()
        with open(self.example_basket("tuesday-coffee.json")) as f:
            text = f.read()
        res = self.checkout(CARD, "-", stdin=text)
        self.assertEqual((res["receipt_id"], res["earned"], res["replayed"]), ("R-1001", 42, False))
        again = self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.assertIs(again["replayed"], True)
        self.refused(2, None, "checkout", "--card", CARD, "--basket", "-", stdin="{not json")
        self.refused(2, None, "checkout", "--card", CARD, "--basket", "-", stdin="")

    def test_redeem_points(self):
        self.setup_terminal()
        self.enroll()
        self.assertEqual(self.checkout(CARD, self.big_basket())["earned"], 1050)
        res = self.checkout(CARD, self.basket("F-1", "2026-11-27T09:00:00+01:00", [
            line("BEAN-1K", "beans", 1, 1890), line("COF-01", "coffee", 1, 350)]),
            "--redeem", "200")
        # 2.00 EUR spread by largest remainder: 1.69 on the beans, 0.31 on the
        # coffee; S = 20.40 for a Gold member: base 20, tier:Gold 10, and
        # coffee-stamp 5.
        self.assertEqual(res["tier"], "Gold")
        self.assertEqual((res["redeemed"], res["discount"]), (200, 200))
        self.assertEqual(breakdown(res), {"base": 20, "tier:Gold": 10, "coffee-stamp": 5})
        self.assertEqual(res["balance"], 1050 - 200 + 35)
        self.assertEqual(self.balance()["balance"], 885)

    def test_reward(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())
        coffee = self.basket("C-1", "2026-11-27T10:00:00+01:00", [line("COF-01", "coffee", 2, 350)])
        res = self.checkout(CARD, coffee, "--reward", "free-coffee")
        # One coffee given for 300 points; the other paid: S = 3.50, Gold:
        # base 3, tier:Gold 1, coffee-stamp for the one unit sold: 5.
        self.assertEqual((res["redeemed"], res["discount"]), (300, 350))
        self.assertEqual(breakdown(res), {"base": 3, "tier:Gold": 1, "coffee-stamp": 5})
        self.assertEqual(res["balance"], 1050 - 300 + 9)
        no_coffee = self.basket("C-2", "2026-11-27T10:05:00+01:00",
                                [line("CRS-02", "pastry", 2, 250)])
        self.refused(3, "reward_not_in_basket", "checkout", "--card", CARD, "--basket", no_coffee,
                     "--reward", "free-coffee")
        self.refused(2, None, "checkout", "--card", CARD, "--basket", no_coffee,
                     "--reward", "free-yacht")
        self.assertEqual(self.balance()["balance"], 759)

    def test_declines(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))  # 42 points
        big = self.example_basket("saturday-big.json")  # eligible 63.40: at most 31.70
        cases = [
            ("99", "below_min_points"),
            ("100", "insufficient_points"),
            ("3170", "insufficient_points"),
            ("3171", "over_max_pct"),
            ("100000", "over_max_pct"),
        ]
        for points, code in cases:
            with self.subTest(points=points):
                self.refused(3, code, "checkout", "--card", CARD, "--basket", big,
                             "--redeem", points)
                self.assertEqual(self.balance()["balance"], 42)
        # The refused receipt id was not used up.
        self.assertEqual(self.checkout(CARD, big)["earned"], 161)

    def test_daily_cap(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket(qty=30))  # 3050 points
        bal = self.balance()
        self.assertEqual(bal["balance"], 3050)
        self.assertEqual(bal["redeemable_today"], 1000)  # the offline daily cap

        def friday(n, day="2026-11-27"):
            return self.basket("D-%d" % n, "%sT1%d:00:00+01:00" % (day, n),
                               [line("BEAN-1K", "beans", 2, 10000)])

        self.assertEqual(self.checkout(CARD, friday(1), "--redeem", "600")["redeemed"], 600)
        self.refused(3, "daily_cap", "checkout", "--card", CARD, "--basket", friday(2),
                     "--redeem", "401")
        self.assertEqual(self.checkout(CARD, friday(3), "--redeem", "400")["redeemed"], 400)
        self.refused(3, "daily_cap", "checkout", "--card", CARD, "--basket", friday(4),
                     "--redeem", "100")
        # A reward's points count toward the cap too.
        coffee = self.basket("D-6", "2026-11-27T18:00:00+01:00", [line("COF-01", "coffee", 1, 350)])
        self.refused(3, "daily_cap", "checkout", "--card", CARD, "--basket", coffee,
                     "--reward", "free-coffee")
        # Another local day has its own cap.
        self.assertEqual(self.checkout(CARD, friday(5, "2026-11-28"), "--redeem", "100")
                         ["redeemed"], 100)
        bal = self.balance()
        self.assertGreaterEqual(bal["redeemable_today"], 0)
        self.assertLessEqual(bal["redeemable_today"], 1000)

    def test_pending_points(self):
        # Receipts of the terminal's "now" (whatever day the suite runs on):
        # pending until two days later. No campaign, so that the weekday
        # or a campaign's window cannot change what is earned.
        p = load_program()
        p["pending_days"] = 2
        p["campaigns"] = []
        self.setup_terminal(p)
        self.enroll()
        now = program_clock.rfc3339(program_clock.now())
        res = self.checkout(CARD, self.basket("P-1", now, [line("BEAN-1K", "beans", 1, 1000)]))
        self.assertEqual(res["earned"], 10)
        self.assertEqual(res["balance"], 0)
        bal = self.balance()
        self.assertEqual((bal["balance"], bal["pending"]), (0, 10))
        # Pending points cannot be spent yet.
        res = self.checkout(CARD, self.basket("P-2", now, [line("BEAN-1K", "beans", 10, 10000)]))
        self.assertEqual((res["earned"], res["balance"]), (1000, 0))
        self.refused(3, "insufficient_points", "checkout", "--card", CARD, "--basket",
                     self.basket("P-3", now, [line("BEAN-1K", "beans", 1, 1000)]),
                     "--redeem", "100")
        self.assertEqual(self.balance()["pending"], 1010)

    def test_tier_follows_local_spend_and_refunds(self):
        self.setup_terminal()
        self.enroll()
        # 200.00 EUR of eligible spend makes a Silver member.
        self.checkout(CARD, self.basket("T-1", "2026-11-23T09:00:00+01:00",
                                        [line("BEAN-1K", "beans", 2, 10000)]))
        self.assertEqual(self.balance()["tier"], "Silver")
        res = self.checkout(CARD, self.basket("T-2", "2026-11-23T10:00:00+01:00",
                                              [line("BEAN-1K", "beans", 1, 1000)]))
        self.assertEqual(res["tier"], "Silver")
        self.assertEqual(breakdown(res), {"base": 10, "tier:Silver": 2})
        self.ok("refund", "--receipt", "T-1", "--line", "BEAN-1K=1")
        self.assertEqual(self.balance()["tier"], "Member")


class ClockTest(TerminalCase):
    """LOYALTY_CLOCK_OFFSET_S moves the program's wall clock, as
    tests/run-dates.sh needs to rehearse other days."""

    @staticmethod
    def clock_at(when):
        """The variables that put the program's clock at `when` (RFC 3339)."""
        target = datetime.datetime.fromisoformat(when).timestamp()
        return {program_clock.ENV: str(round(target - time.time()))}

    def test_offset_moves_the_clock_of_pending_points(self):
        p = load_program()
        p["pending_days"] = 2
        p["campaigns"] = []
        self.setup_terminal(p)
        self.enroll()
        basket = self.basket("K-1", "2030-06-04T09:00:00+02:00", [line("BEAN-1K", "beans", 1, 1000)])
        day = self.clock_at("2030-06-04T10:00:00+02:00")
        res = self.one_json(self.run_cli("checkout", "--card", CARD, "--basket", basket, env=day))
        self.assertEqual((res["earned"], res["pending"], res["balance"]), (10, 10, 0), str(res))

        def balance_at(when):
            r = self.run_cli("balance", "--card", CARD, env=self.clock_at(when))
            self.assertEqual(r.rc, 0, str(r))
            b = self.one_json(r)
            return b["balance"], b["pending"]

        self.assertEqual(balance_at("2030-06-06T08:00:00+02:00"), (0, 10))  # still pending
        self.assertEqual(balance_at("2030-06-06T10:00:00+02:00"), (10, 0))  # two days after

    def test_a_bad_offset_is_refused_naming_the_variable(self):
        self.setup_terminal()
        for bad in ("tomorrow", "1.5", "3600s", "99999999999999", "-99999999999999", " 5", "+5", "5 ", "0x10",
                    "-", "--5"):
            r = self.run_cli("status", env={program_clock.ENV: bad})
            message = self.check_error(r, 2, "bad_argument").group(2)
            self.assertIn(program_clock.ENV, message, str(r))
        # Set but empty is unset: the system clock.
        self.assertEqual(self.run_cli("status", env={program_clock.ENV: ""}).rc, 0)


class DonationTest(TerminalCase):
    """`donate` (spec/program.md v2, "Charity donations"; cli.md): declined as
    a redemption for money, on the terminal's local day."""

    def program(self):
        p = load_program()
        p["spec"] = 2
        p["version"] = 8
        p["charities"] = [{"id": "red-cross", "name": "Red Cross"},
                          {"id": "food-bank", "name": "Food Bank"}]
        return p

    def donate(self, charity, points, card=CARD, env=None, json_out=True):
        return self.run_cli("donate", "--card", card, "--charity", charity, "--points", points,
                            env=env, json_out=json_out)

    def test_donate_and_its_declines(self):
        self.setup_terminal(self.program())
        self.enroll()
        self.checkout(CARD, self.big_basket(qty=30))  # 3050 points
        friday = ClockTest.clock_at("2026-11-27T10:00:00+01:00")
        r = self.donate("red-cross", 300, env=friday)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(self.one_json(r),
                         {"card": "****" + CARD[-4:], "charity": "red-cross", "points": 300, "balance": 2750})
        self.assertEqual(self.balance()["balance"], 2750)
        args = lambda charity, points, card=CARD: (  # noqa: E731
            "donate", "--card", card, "--charity", charity, "--points", str(points))
        self.refused(3, "insufficient_points", *args("red-cross", 2751), env=friday)
        # The offline daily cap (1000), shared with the day's redemptions.
        basket = self.basket("F-1", "2026-11-27T11:00:00+01:00", [line("BEAN-1K", "beans", 20, 10000)])
        res = self.one_json(self.run_cli("checkout", "--card", CARD, "--basket", basket, "--redeem", "500",
                                         env=friday))
        self.assertEqual(res["redeemed"], 500, str(res))
        self.refused(3, "daily_cap", *args("food-bank", 201), env=friday)
        self.assertEqual(self.donate("food-bank", 200, env=friday).rc, 0)
        self.refused(3, "daily_cap", *args("food-bank", 1), env=friday)
        # The next local day has its own cap.
        saturday = ClockTest.clock_at("2026-11-28T00:30:00+01:00")
        self.assertEqual(self.one_json(self.donate("food-bank", 1, env=saturday))["points"], 1)
        # Bad input: exit 2, nothing recorded.
        self.refused(2, "unknown_charity", *args("unicef", 1), env=friday)
        self.refused(2, "unknown_charity", *args("Red Cross", 1), env=friday)
        for points in ("0", "-5", "ten", "1.5", "99999999999999999999"):
            with self.subTest(points=points):
                self.refused(2, "bad_argument", *args("red-cross", points))
        self.refused(2, "bad_argument", "donate", "--card", CARD, "--points", "5")
        self.refused(2, "bad_argument", "donate", "--card", CARD, "--charity", "red-cross")
        self.refused(2, "bad_argument", *args("red-cross", 5), "--reward", "x")
        # A card this terminal does not know has no balance to give.
        other = luhn_complete("628000765432101")
        self.secrets.add(other)
        self.refused(3, "balance_unknown", *args("red-cross", 1, other))
        out = self.run_cli(*args("red-cross", 10), json_out=False)
        self.assertEqual(out.rc, 0, str(out))
        self.assertIn("red-cross", out.out)
        self.assertIn("Balance", out.out)
        # Every point accounted for: earned, redeemed, given.
        self.assertEqual(self.balance()["balance"], 3050 - 300 - 500 + res["earned"] - 200 - 1 - 10)
        self.assertTrue(self.ok("verify")["ok"])
        kinds = [k for (k,) in self.journal("SELECT kind FROM journal ORDER BY seq")]
        self.assertEqual(kinds.count("donate"), 4)

    def test_a_program_without_charities(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())
        self.refused(2, "unknown_charity", "donate", "--card", CARD, "--charity", "red-cross",
                     "--points", "1")


class StampCardOptionTest(TerminalCase):
    """`checkout --stamp-card ID` (cli.md v2): one redemption a checkout, and
    a stamp card the program does not have is bad input."""

    def test_a_stamp_card_the_program_lacks_is_bad_input(self):
        self.setup_terminal()
        self.enroll()
        b = self.basket("S-1", "2026-11-23T09:00:00+01:00", [line("COF-01", "coffee", 2, 350)])
        msg = self.refused(2, "unknown_stamp_card", "checkout", "--card", CARD, "--basket", b,
                           "--stamp-card", "coffee-card")
        self.assertIn("coffee-card", msg)
        for other in (("--redeem", "100"), ("--reward", "free-coffee")):
            self.refused(2, "bad_argument", "checkout", "--card", CARD, "--basket", b,
                         "--stamp-card", "coffee-card", *other)
        # The receipt id was not used up.
        self.assertEqual(self.checkout(CARD, b)["receipt_id"], "S-1")


class StampCardTest(TerminalCase):
    """Stamp cards at the till (program.md v2, "Stamp cards"; cli.md): stamps
    per unit sold, the reward at the card's stamps-th stamp, its declines,
    refunds, and the member's stamps in balance; all kept by the ledger,
    replayed and verified."""

    def program(self, stamps=3):
        p = load_program()
        p.update({"spec": 2, "version": 8})
        p["stamp_cards"] = [
            {"id": "coffee-card", "sku": "COF-01", "stamps": stamps, "reward_sku": "COF-01",
             "expiry_days": 180},
            {"id": "bean-card", "category": "beans", "stamps": 5, "reward_sku": "BEAN-1K"}]
        return p

    def coffee(self, receipt_id, qty, at="2026-11-23T09:00:00+01:00", *extra):
        b = self.basket(receipt_id, at, [line("COF-01", "coffee", qty, 350)])
        return self.checkout(CARD, b, *extra)

    def test_stamps_earned_spent_and_refunded(self):
        self.setup_terminal(self.program())
        self.enroll()
        self.assertEqual(self.balance()["stamps"], {"coffee-card": 0, "bean-card": 0})
        res = self.coffee("S-1", 2)
        self.assertEqual(res["stamps"], [{"id": "coffee-card", "earned": 2, "used": 0, "balance": 2}])
        self.assertEqual(self.balance()["stamps"], {"coffee-card": 2, "bean-card": 0})
        # One short of the card's 3: declined, never clipped, nothing recorded.
        b = self.basket("S-2", "2026-11-23T10:00:00+01:00", [line("COF-01", "coffee", 1, 350)])
        msg = self.refused(3, "insufficient_stamps", "checkout", "--card", CARD, "--basket", b,
                           "--stamp-card", "coffee-card")
        self.assertIn("coffee-card", msg)
        self.coffee("S-3", 1)  # the 3rd stamp
        # The reward: one unit of COF-01 given (no stamp for it), the other sold.
        b = self.basket("S-4", "2026-11-23T11:00:00+01:00", [line("COF-01", "coffee", 2, 350)])
        res = self.checkout(CARD, b, "--stamp-card", "coffee-card")
        self.assertEqual(res["stamps"], [{"id": "coffee-card", "earned": 1, "used": 3, "balance": 1}])
        self.assertEqual(res["discount"], 350)
        self.assertEqual(res["redeemed"], 0)
        # The same request again: the recorded answer, stamps included.
        again = self.checkout(CARD, b, "--stamp-card", "coffee-card")
        self.assertTrue(again["replayed"])
        self.assertEqual(again["stamps"], res["stamps"])
        self.assertEqual(self.balance()["stamps"]["coffee-card"], 1)
        # Beans by category.
        res = self.checkout(CARD, self.basket("S-5", "2026-11-23T12:00:00+01:00",
                                              [line("BEAN-1K", "beans", 2, 1890)]))
        self.assertEqual(res["stamps"], [{"id": "bean-card", "earned": 2, "used": 0, "balance": 2}])
        # A refund of the reward line: the sold unit first (its stamp taken
        # back), then the given one (the 3 stamps used come back).
        self.ok("refund", "--receipt", "S-4", "--line", "COF-01=1")
        self.assertEqual(self.balance()["stamps"]["coffee-card"], 0)
        self.ok("refund", "--receipt", "S-4", "--line", "COF-01=1")
        self.assertEqual(self.balance()["stamps"]["coffee-card"], 3)
        self.ok("refund", "--receipt", "S-5")
        self.assertEqual(self.balance()["stamps"], {"coffee-card": 3, "bean-card": 0})
        self.assertTrue(self.ok("verify")["ok"])
        # The derived stamps are checked against the journal.
        con = sqlite3.connect(os.path.join(self.data, "ledger.db"))
        con.execute("UPDATE member_stamps SET local = local + 7")
        con.commit()
        con.close()
        r = self.run_cli("verify")
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("member_stamps", r.out + r.err)

    def test_one_stamp_reward_a_day_on_a_terminal(self):
        self.setup_terminal(self.program(stamps=2))
        self.enroll()
        self.coffee("D-1", 6)
        self.coffee("D-2", 1, "2026-11-23T10:00:00+01:00", "--stamp-card", "coffee-card")
        b = self.basket("D-3", "2026-11-23T23:30:00+01:00", [line("COF-01", "coffee", 1, 350)])
        self.refused(3, "stamp_daily_limit", "checkout", "--card", CARD, "--basket", b,
                     "--stamp-card", "coffee-card")
        # The basket's local day decides: past midnight, another day.
        res = self.coffee("D-4", 1, "2026-11-24T00:10:00+01:00", "--stamp-card", "coffee-card")
        self.assertEqual(res["stamps"], [{"id": "coffee-card", "earned": 0, "used": 2, "balance": 2}])

    def test_a_card_not_known_here_has_no_stamps_to_spend(self):
        self.setup_terminal(self.program())
        other = "4539578763621486"
        self.secrets.add(other)
        b = self.basket("U-1", "2026-11-23T09:00:00+01:00", [line("COF-01", "coffee", 4, 350)])
        res = self.checkout(other, b)
        self.assertEqual(res["stamps"], [{"id": "coffee-card", "earned": 4, "used": 0, "balance": None}])
        self.assertEqual(self.balance(other)["stamps"], {})
        b = self.basket("U-2", "2026-11-23T10:00:00+01:00", [line("COF-01", "coffee", 1, 350)])
        self.refused(3, "balance_unknown", "checkout", "--card", other, "--basket", b,
                     "--stamp-card", "coffee-card")


class MembershipTest(TerminalCase):
    """Paid membership at the till (program.md v2, "Paid membership";
    cli.md): bought on a receipt (counting for its other lines at once),
    extended from the end of a run, its part while it runs, until exclusive,
    shortened by refunds; checkout and balance show it; kept by the ledger."""

    def program(self):
        p = load_program()
        p.update({"spec": 2, "version": 8})
        p["memberships"] = [{"id": "plus", "sku": "MEM-PLUS", "days": 30, "multiplier_pct": 200}]
        return p

    PLUS = line("MEM-PLUS", "membership", 1, 4900)

    def test_bought_extended_and_refunded(self):
        self.setup_terminal(self.program())
        self.enroll()
        self.assertIsNone(self.balance()["membership"])
        # 2 x 7.00 of beans: base 14 (1 point per 100 in the example), and
        # with Plus bought on the same receipt its part as much again.
        b = self.basket("M-1", "2026-11-23T09:00:00+01:00",
                        [line("BEAN-1K", "beans", 2, 700), self.PLUS])
        res = self.checkout(CARD, b)
        self.assertEqual(res["membership"], {"id": "plus", "until": "2026-12-23"})
        parts = breakdown(res)
        self.assertEqual(parts["membership:plus"], parts["base"], str(res))
        self.assertEqual(res["eligible_spend"], 1400)  # the membership line counts for nothing
        self.assertEqual(self.balance()["membership"], {"id": "plus", "until": "2026-12-23"})
        # Its last day still runs; `until` is exclusive.
        last = self.checkout(CARD, self.basket("M-2", "2026-12-22T20:00:00+01:00",
                                               [line("BEAN-1K", "beans", 1, 700)]))
        self.assertIn("membership:plus", breakdown(last))
        over = self.checkout(CARD, self.basket("M-3", "2026-12-23T08:00:00+01:00",
                                               [line("BEAN-1K", "beans", 1, 700)]))
        self.assertNotIn("membership:plus", breakdown(over))
        # Bought again while running (on its last day): from its end.
        again = self.checkout(CARD, self.basket("M-4", "2026-12-22T21:00:00+01:00", [self.PLUS]))
        self.assertEqual(again["membership"], {"id": "plus", "until": "2027-01-22"})
        # The retried receipt answers the same.
        self.assertEqual(self.checkout(CARD, self.basket("M-4", "2026-12-22T21:00:00+01:00",
                                                         [self.PLUS]))["membership"], again["membership"])
        # Refunded: 30 days off; M-1's membership unit back takes its part too.
        self.ok("refund", "--receipt", "M-4")
        self.assertEqual(self.balance()["membership"], {"id": "plus", "until": "2026-12-23"})
        r = self.ok("refund", "--receipt", "M-1", "--line", "MEM-PLUS=1")
        self.assertEqual(r["points_reversed"], parts["membership:plus"])
        self.assertEqual(self.balance()["membership"], {"id": "plus", "until": "2026-11-23"})
        self.assertTrue(self.ok("verify")["ok"])
        con = sqlite3.connect(os.path.join(self.data, "ledger.db"))
        con.execute("UPDATE membership_changes SET days = days + 1")
        con.commit()
        con.close()
        r = self.run_cli("verify")
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("membership_changes", r.out + r.err)

    def test_an_unknown_card_buys_one(self):
        # (A card blocked at the centre is declined: tests/e2e MembershipTest.)
        self.setup_terminal(self.program())
        other = "4539578763621486"
        self.secrets.add(other)
        res = self.checkout(other, self.basket("U-1", "2026-11-23T09:00:00+01:00", [self.PLUS, self.PLUS]))
        self.assertEqual(res["membership"], {"id": "plus", "until": "2027-01-22"})
        self.assertIsNone(self.balance(other)["membership"])  # not known here: nothing shown


class ReferrerTest(TerminalCase):
    """`enroll --referrer SCAN` (cli.md v2): the enrolment's entry names the
    referrer by its token and masked card (never the number), with the
    enrolment's local day; the centre decides the referral."""

    def test_enroll_with_a_referrer(self):
        self.setup_terminal()
        friend = "4539578763621486"
        self.secrets.add(friend)
        res = self.ok("enroll", "--card", CARD, "--referrer", friend)
        self.assertEqual(res["enrolled"], True)
        (data,) = self.journal("SELECT json_extract(body, '$.data') FROM journal WHERE kind = 'enroll'")[0:1]
        d = json.loads(data[0])
        self.assertEqual(d["referrer_masked"], "****" + friend[-4:])
        self.assertEqual(len(d["referrer"]), 64)
        self.assertIsInstance(d["local_date"], int)
        # Known here already: not enrolled again, the referral still recorded
        # (for the centre to refuse, naming why).
        again = self.ok("enroll", "--card", CARD, "--referrer", friend)
        self.assertEqual(again["enrolled"], False)
        self.assertEqual(len(self.journal("SELECT seq FROM journal WHERE kind = 'enroll'")), 2)
        self.assertEqual(self.ok("enroll", "--card", CARD)["enrolled"], False)
        self.assertEqual(len(self.journal("SELECT seq FROM journal WHERE kind = 'enroll'")), 2)
        msg = self.refused(2, "bad_card", "enroll", "--card", "4000000000000002", "--referrer", "1234")
        self.assertIn("--referrer", msg)
        self.assertTrue(self.ok("verify")["ok"])


class HostileInputTest(TerminalCase):
    """Input meant to break the program, or that would break it by accident:
    each is refused with exit 2, one error line, its limit or problem named,
    and nothing recorded."""

    @staticmethod
    def read_bytes(path):
        with open(path, "rb") as f:
            return f.read()

    def write_bytes(self, data, name):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_numbers_beyond_range_are_bad_input(self):
        self.setup_terminal()
        self.enroll()
        for text, code in (("1e400", "bad_basket"), ("-1e400", "bad_basket"), ("9" * 5000, "bad_basket"),
                           ("18446744073709551616", "overflow")):
            doc = '{"receipt_id": "H-1", "at": "2026-11-23T10:00:00+01:00", "lines": [{"sku": "A", ' \
                  '"category": "c", "qty": 1, "unit_price": %s}]}' % text
            msg = self.refused(2, code, "checkout", "--card", CARD, "--basket",
                               self.write_bytes(doc.encode(), "big.json"))
            self.assertLess(len(msg), 400, "a long number quoted whole: %r" % msg)
            program = self.read_bytes(self.program_path()).decode().replace('"version": 7',
                                                                             '"version": %s' % text)
            self.refused(2, code.replace("basket", "program"), "program", "load",
                         self.write_bytes(program.encode(), "p.json"))

    def test_a_nul_byte_or_a_key_given_twice_is_refused(self):
        self.setup_terminal()
        self.enroll()
        program = self.read_bytes(self.program_path())
        msg = self.refused(2, "bad_program", "program", "load", self.write_bytes(program + b"\0", "nul.json"))
        self.assertIn("a NUL byte at offset %d" % len(program), msg)
        doc = ('{"receipt_id": "D-1", "at": "2026-11-23T10:00:00+01:00", "lines": [{"sku": "A", '
               '"category": "c", "qty": 1, "qty": 1000, "unit_price": 100}]}')
        msg = self.refused(2, "bad_basket", "checkout", "--card", CARD, "--basket",
                           self.write_bytes(doc.encode(), "dup.json"))
        self.assertIn('the key "qty" is given twice', msg)
        # The same key in two objects is no repeat.
        doc = ('{"receipt_id": "D-2", "at": "2026-11-23T10:00:00+01:00", "lines": [{"sku": "A", '
               '"category": "c", "qty": 1, "unit_price": 100}, {"sku": "B", "category": "c", "qty": 2, '
               '"unit_price": 100}]}')
        self.ok("checkout", "--card", CARD, "--basket", self.write_bytes(doc.encode(), "two.json"))

    def test_a_program_version_past_its_limit_is_refused(self):
        self.setup_terminal()
        for version, ok in ((2 ** 53 - 1, True), (2 ** 53, False), (10 ** 18, False)):
            p = load_program()
            p["version"] = version
            path = self.write_json(p)
            if ok:
                self.assertEqual(self.ok("program", "load", path)["version"], version)
            else:
                msg = self.refused(2, "bad_program", "program", "load", path)
                self.assertIn("version must be at most 9007199254740991", msg)
        # The terminal still works, and a good program still loads.
        self.assertEqual(self.ok("status")["program"]["version"], 2 ** 53 - 1)
        self.ok("checkout", "--card", CARD, "--basket", self.example_basket("saturday-big.json"))

    def test_amounts_that_would_overflow_later_are_refused(self):
        """A basket past the receipt's bounds is refused at the till, exit 2,
        the bound named; so is a checkout that would take a member's points
        past what a member may hold. Nothing wraps, and the ledger verifies."""
        p = load_program()
        p["earn"] = {"points": 1, "per": 1}
        p["campaigns"] = []
        p["tiers"] = [{"name": "Member", "spend": 0, "multiplier_pct": 100}]
        p["redeem"]["max_pct"] = 100
        self.setup_terminal(p)
        self.enroll()
        huge = self.basket("O-1", "2026-11-23T10:00:00+01:00", [line("A", "food", 1, 5 * 10 ** 18)])
        msg = self.refused(2, "bad_basket", "checkout", "--card", CARD, "--basket", huge)
        self.assertIn("unit_price is 5000000000000000000, at most 1000000000000000", msg)
        # The most a receipt may hold, a hundred times: 10^17 points, the
        # most a member may hold. The next point is refused.
        for i in range(100):
            res = self.checkout(CARD, self.basket("M-%d" % i, "2026-11-%02dT10:00:00+01:00" % (1 + i % 28),
                                                  [line("A", "food", 1, 10 ** 15)]))
            self.assertEqual(res["earned"], 10 ** 15)
        self.assertEqual(res["balance"], 10 ** 17)
        msg = self.refused(2, "bad_basket", "checkout", "--card", CARD, "--basket",
                           self.basket("M-100", "2026-11-30T10:00:00+01:00", [line("A", "food", 1, 1)]))
        self.assertIn("past the 100000000000000000 a member may hold", msg)
        self.assertEqual(self.balance()["balance"], 10 ** 17)
        self.assertIs(self.ok("verify")["ok"], True)

    def test_not_utf8_is_bad_input(self):
        self.setup_terminal()
        self.enroll()
        # An argument (os.fsencode turns the surrogate into the byte 0xff).
        msg = self.refused(2, "bad_argument", "refund", "--receipt", "R-\udcff")
        self.assertIn("not valid UTF-8", msg)
        # A basket and a program holding a byte that is not UTF-8.
        bad = ('{"receipt_id": "R-\xff", "at": "2026-11-23T10:00:00+01:00", "lines": []}'
               .encode("latin-1"))
        self.refused(2, "bad_basket", "checkout", "--card", CARD, "--basket", self.write_bytes(bad, "b.json"))
        program = self.read_bytes(self.program_path()).replace(b"cafe-rewards", b"caf\xe9")
        self.refused(2, "bad_program", "program", "load", self.write_bytes(program, "p.json"))

    def test_a_newline_in_an_input_stays_on_one_error_line(self):
        self.setup_terminal()
        self.refused(2, None, "refund", "--receipt", "R-1\nerror: forged: line")

    def test_endless_input_is_refused_past_the_limit(self):
        """/dev/zero and an endless pipe: refused past the documents' 4 MiB,
        promptly and in bounded memory (before: read until the OOM killer)."""
        self.setup_terminal()
        for args in (("checkout", "--card", CARD, "--basket", "/dev/zero"),
                     ("program", "load", "/dev/zero")):
            msg = self.refused(2, "bad_argument", *args)
            self.assertIn("larger than 4194304 bytes", msg)
        cmd = EMULATOR + [TERMINAL, "--data-dir", self.data, "checkout", "--card", CARD, "--basket", "-",
                          "--json"]
        yes = subprocess.Popen(["yes", "{"], stdout=subprocess.PIPE)
        try:
            r = subprocess.run(cmd, stdin=yes.stdout, capture_output=True, text=True, timeout=TIMEOUT)
        finally:
            yes.kill()
            yes.wait()
            yes.stdout.close()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("standard input is larger than 4194304 bytes", r.stderr)


class RetryTest(TerminalCase):

    def test_same_checkout_twice_is_a_replay(self):
        self.setup_terminal()
        self.enroll()
        basket = self.example_basket("saturday-big.json")
        first = self.checkout(CARD, basket)
        entries = self.entries()
        second = self.checkout(CARD, basket)
        self.assertIs(first["replayed"], False)
        self.assertIs(second["replayed"], True)
        a, b = dict(first), dict(second)
        a.pop("replayed")
        b.pop("replayed")
        self.assertEqual(a, b)
        # Another scan of the same card, and the basket from stdin: a replay.
        third = self.checkout(";6280001234567895=2812?", basket)
        self.assertIs(third["replayed"], True)
        with open(basket) as f:
            fourth = self.checkout("LOYALTY:6280001234567895", "-", stdin=f.read())
        self.assertIs(fourth["replayed"], True)
        self.assertEqual(self.entries(), entries)
        self.assertEqual(self.balance()["balance"], 161)
        self.assertIn("****7895", self.human("checkout", "--card", CARD, "--basket", basket))
        self.assertEqual(self.balance()["balance"], 161)

    def test_replay_with_a_redemption(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())
        basket = self.example_basket("saturday-big.json")
        first = self.checkout(CARD, basket, "--redeem", "150")
        second = self.checkout(CARD, basket, "--redeem", "150")
        self.assertIs(second["replayed"], True)
        self.assertEqual(first["balance"], second["balance"])
        self.assertEqual(self.balance()["balance"], first["balance"])

    def test_receipt_id_reused_differently(self):
        self.setup_terminal()
        self.enroll()
        basket = self.example_basket("tuesday-coffee.json")
        self.checkout(CARD, basket)
        with open(basket) as f:
            doc = json.load(f)
        doc["lines"][0]["qty"] = 3
        other = luhn_complete("628000555555555")
        self.secrets.add(other)
        self.refused(2, "receipt_conflict", "checkout", "--card", CARD, "--basket",
                     self.write_json(doc))
        self.refused(2, "receipt_conflict", "checkout", "--card", other, "--basket", basket)
        self.refused(2, "receipt_conflict", "checkout", "--card", CARD, "--basket", basket,
                     "--redeem", "100")
        self.assertEqual(self.balance()["balance"], 42)


class RefundTest(TerminalCase):

    def test_partial_then_full_refund(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("saturday-big.json"))  # 161
        res = self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1")
        for key in ("receipt_id", "points_reversed", "points_returned", "balance"):
            self.assertIn(key, res)
        # Without the cake: 39.40 eligible, base 39 + big-basket 50 = 89 stay.
        self.assertEqual(res["receipt_id"], "R-1002")
        self.assertEqual((res["points_reversed"], res["points_returned"]), (72, 0))
        self.assertEqual(res["balance"], 89)
        res = self.ok("refund", "--receipt", "R-1002")
        self.assertEqual((res["points_reversed"], res["points_returned"]), (89, 0))
        self.assertEqual(res["balance"], 0)
        self.assertEqual(self.balance()["balance"], 0)
        self.refused(3, "already_refunded", "refund", "--receipt", "R-1002")
        self.refused(3, "already_refunded", "refund", "--receipt", "R-1002", "--line",
                     "COF-01=1")
        self.ok("verify")

    def test_refund_id_makes_a_retry_safe(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("saturday-big.json"))  # 161
        first = self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1", "--refund-id", "RET-7")
        self.assertEqual((first["points_reversed"], first["refund_id"], first["replayed"]), (72, "RET-7", False))
        entries = self.entries()
        again = self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1", "--refund-id", "RET-7")
        self.assertIs(again["replayed"], True)
        self.assertEqual((again["points_reversed"], again["balance"]), (72, 89))
        self.assertEqual(self.entries(), entries)
        self.assertIn("recorded before", self.human("refund", "--receipt", "R-1002", "--line",
                                                    "CAKE-05=1", "--refund-id", "RET-7"))
        self.refused(2, "receipt_conflict", "refund", "--receipt", "R-1002", "--line", "COF-01=1",
                     "--refund-id", "RET-7")
        self.refused(2, "bad_argument", "refund", "--receipt", "R-1002", "--refund-id", "")
        self.refused(2, "bad_argument", "refund", "--receipt", "R-1002", "--refund-id", "a b")
        self.assertEqual(self.balance()["balance"], 89)
        self.ok("verify")

    def test_repeated_lines(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))  # 42
        res = self.ok("refund", "--receipt", "R-1001", "--line", "COF-01=1", "--line",
                      "CRS-02=1")
        # Left: 1 coffee 3.50 + 2 croissants 5.00 - 0.33 = 8.17 on Tuesday:
        # base 8, double-tuesday 8, pastry-x3 9 = 25 of 42.
        self.assertEqual((res["points_reversed"], res["points_returned"]), (17, 0))
        self.assertEqual(res["balance"], 25)
        # The same sku twice adds up.
        res = self.ok("refund", "--receipt", "R-1001", "--line", "CRS-02=1", "--line", "CRS-02=1")
        self.assertEqual(res["balance"], self.balance()["balance"])
        self.refused(3, "already_refunded", "refund", "--receipt", "R-1001", "--line",
                     "CRS-02=1")
        out = self.human("refund", "--receipt", "R-1001", "--line", "COF-01=1")
        self.assertIn("R-1001", out)
        self.ok("verify")

    def test_refund_returns_redeemed_points(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())  # 1050, then Gold
        self.checkout(CARD, self.basket("F-1", "2026-11-27T09:00:00+01:00", [
            line("BEAN-1K", "beans", 1, 1890), line("COF-01", "coffee", 1, 350)]),
            "--redeem", "200")  # earned 35, balance 885
        res = self.ok("refund", "--receipt", "F-1", "--line", "COF-01=1")
        # The coffee is 3.50 of 22.40 before the redemption: floor(200 *
        # 350 / 2240) = 31 points come back. Left: 18.90 - 1.69 = 17.21 for
        # Gold: base 17 + tier 8 = 25 of 35 stay.
        self.assertEqual((res["points_reversed"], res["points_returned"]), (10, 31))
        self.assertEqual(res["balance"], 885 - 10 + 31)
        res = self.ok("refund", "--receipt", "F-1")
        # A full refund gives back every redeemed point.
        self.assertEqual((res["points_reversed"], res["points_returned"]), (25, 169))
        self.assertEqual(res["balance"], 1050)
        self.assertEqual(self.balance()["balance"], 1050)

    def test_refund_errors(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.refused(2, "unknown_receipt", "refund", "--receipt", "R-404")
        self.refused(2, None, "refund", "--receipt", "R-1001", "--line", "NOPE-1=1")
        self.refused(2, None, "refund", "--receipt", "R-1001", "--line", "COF-01=3")
        # All or nothing: a good line with a bad one records nothing.
        self.refused(2, None, "refund", "--receipt", "R-1001", "--line", "COF-01=1", "--line",
                     "NOPE-1=1")
        for spec in ("COF-01", "COF-01=0", "COF-01=-1", "=1", "COF-01=x"):
            with self.subTest(spec=spec):
                self.refused(2, None, "refund", "--receipt", "R-1001", "--line", spec)
        self.refused(2, None, "refund")
        # Both coffees back: 7.00 of pastry stay, base 7 + double-tuesday 7 +
        # pastry-x3 14 = 28 of 42.
        self.assertEqual(self.ok("refund", "--receipt", "R-1001", "--line", "COF-01=2")
                         ["points_reversed"], 14)
        self.ok("verify")

    def test_refund_of_unknown_card_receipt(self):
        self.setup_terminal()
        other = luhn_complete("628000777777777")
        self.secrets.add(other)
        self.checkout(other, self.example_basket("tuesday-coffee.json"))
        res = self.ok("refund", "--receipt", "R-1001")
        self.assertEqual(res["points_reversed"], 42)
        self.assertIsNone(res["balance"])


class StatusBalanceVerifyTest(TerminalCase):

    def test_balance_json(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        bal = self.balance()
        for key, types in (("card", str), ("known", bool), ("tier", str), ("balance", int),
                           ("pending", int), ("unsynced", int), ("redeemable_today", int)):
            self.assertIn(key, bal)
            self.assertIsInstance(bal[key], types, key)
        self.assertEqual(bal["card"], "****7895")
        self.assertEqual((bal["known"], bal["tier"], bal["balance"]), (True, "Member", 42))
        self.assertEqual((bal["pending"], bal["unsynced"]), (0, 42))
        self.assertEqual(bal["redeemable_today"], 42)  # under the daily cap
        out = self.human("balance", "--card", CARD)
        self.assertIn("****7895", out)
        self.assertIn("42", out)

    def test_status_json(self):
        self.setup_terminal()
        st = self.ok("status")
        for key in ("terminal_id", "store", "program", "entries", "unsynced", "last_sync"):
            self.assertIn(key, st)
        self.assertEqual(st["program"], {"id": "cafe-rewards", "version": 7})
        self.assertEqual((st["entries"], st["unsynced"]), (0, 0))
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.ok("refund", "--receipt", "R-1001", "--line", "COF-01=1")
        st = self.ok("status")
        self.assertEqual((st["entries"], st["unsynced"]), (3, 3))
        self.assertIsNone(st["last_sync"])
        out = self.human("status")
        self.assertIn("T1", out)

    def test_verify(self):
        self.setup_terminal()
        res = self.ok("verify")
        self.assertEqual((res["ok"], res["entries"]), (True, 0))
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.checkout(CARD, self.example_basket("saturday-big.json"))
        self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1")
        res = self.ok("verify")
        self.assertIs(res["ok"], True)
        self.assertEqual(res["entries"], 4)
        self.assertEqual(res["entries"], self.entries())
        self.assertTrue(self.human("verify"))

    def test_tampered_ledger_fails_verify(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.checkout(CARD, self.example_basket("saturday-big.json"))
        self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1")
        pristine = os.path.join(self.tmp, "pristine")
        shutil.copytree(self.data, pristine)
        tampering = {
            "points": "UPDATE journal SET points = points + 1000 WHERE seq = 2",
            "text": "UPDATE journal SET {col} = replace({col}, '\"earned\":42,', "
                    "'\"earned\":420,') WHERE seq = 2".format(col=self.journal_text_column()),
            "gap": "DELETE FROM journal WHERE seq = 3",
            "last": "DELETE FROM journal WHERE seq = 4",
            "member": "UPDATE members SET local_points = local_points + 500",
            "receipt": "UPDATE receipts SET earned = earned + 1 WHERE receipt_id = 'R-1001'",
            "swap-mac": "UPDATE journal SET mac = (SELECT mac FROM journal WHERE seq = 1) "
                        "WHERE seq = 2",
        }
        for name, sql in tampering.items():
            with self.subTest(tamper=name):
                shutil.rmtree(self.data)
                shutil.copytree(pristine, self.data)
                self.assertGreater(self.tamper(sql), 0, "tampering changed nothing: " + sql)
                r = self.run_cli("verify")
                self.check_error(r, 4, "storage")
                obj = self.one_json(r)
                self.assertIn("error", obj, str(r))
                self.assertEqual(obj["error"].get("code"), "storage")
                self.assertTrue(obj["error"].get("message"))
                self.assertIs(obj.get("ok"), False, str(r))
                self.assertIsInstance(obj.get("first_bad"), int, str(r))
                h = self.run_cli("verify", json_out=False)
                self.check_error(h, 4, "storage")
        shutil.rmtree(self.data)
        shutil.copytree(pristine, self.data)
        self.ok("verify")

    def test_wrong_mac_key_fails_verify(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        key = os.path.join(self.data, "ledger.key")
        if not os.path.exists(key):
            self.skipTest("no ledger.key in the data dir")
        with open(key) as f:
            old = f.read()
        with open(key, "w") as f:
            f.write(("0" if old[0] != "0" else "1") + old[1:])
        r = self.run_cli("verify")
        self.check_error(r, 4, "storage")
        self.assertIs(self.one_json(r).get("ok"), False)

    def test_unreadable_ledger_is_a_storage_failure(self):
        self.setup_terminal()
        self.enroll()
        with open(os.path.join(self.data, "ledger.db"), "r+b") as f:
            f.write(b"not a ledger at all" * 256)
        for args in (("status",), ("balance", "--card", CARD),
                     ("checkout", "--card", CARD, "--basket",
                      self.example_basket("tuesday-coffee.json"))):
            with self.subTest(command=args[0]):
                self.refused(4, "storage", *args, check_entries=False)
        # verify answers in its own shape too: the ledger failed, before its
        # first entry.
        r = self.run_cli("verify")
        self.check_error(r, 4, "storage")
        res = self.one_json(r)
        self.assertEqual((res["ok"], res["first_bad"], res["error"]["code"]), (False, 0, "storage"), str(r))

    def test_card_never_in_clear_in_the_data_dir(self):
        self.setup_terminal()
        self.enroll("6280 0012-3456 7895")
        self.checkout(";6280001234567895=2812?", self.example_basket("tuesday-coffee.json"))
        self.ok("refund", "--receipt", "R-1001")
        for name in os.listdir(self.data):
            path = os.path.join(self.data, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(CARD.encode(), f.read(), name)


class ArgumentTest(TerminalCase):

    def test_bad_arguments(self):
        self.setup_terminal()
        self.enroll()
        basket = self.example_basket("tuesday-coffee.json")
        cases = {
            "unknown option": ("checkout", "--card", CARD, "--basket", basket, "--tip", "5"),
            "unknown command": ("teleport",),
            "missing --card": ("checkout", "--basket", basket),
            "missing --basket": ("checkout", "--card", CARD),
            "redeem and reward": ("checkout", "--card", CARD, "--basket", basket, "--redeem",
                                  "100", "--reward", "free-coffee"),
            "redeem 0": ("checkout", "--card", CARD, "--basket", basket, "--redeem", "0"),
            "redeem negative": ("checkout", "--card", CARD, "--basket", basket, "--redeem",
                                "-100"),
            "redeem not a number": ("checkout", "--card", CARD, "--basket", basket, "--redeem",
                                    "lots"),
            "basket file missing": ("checkout", "--card", CARD, "--basket",
                                    os.path.join(self.tmp, "nope.json")),
            "balance without card": ("balance",),
            "enroll without card": ("enroll",),
            "status option": ("status", "--verbose", "yes"),
            "program usage": ("program", "show"),
        }
        for name, args in cases.items():
            with self.subTest(case=name):
                self.refused(2, None, *args)
        self.assertEqual(self.balance()["balance"], 0)

    def test_option_value_does_not_swallow_json(self):
        # An unknown option, or one whose value is missing, followed by --json:
        # --json still asks for the JSON error object on stdout.
        self.setup_terminal()
        self.enroll()
        basket = self.example_basket("tuesday-coffee.json")
        cases = {
            "unknown option": ("status", "--verbose"),
            "--basket without value": ("checkout", "--card", CARD, "--basket"),
            "--redeem without value": ("checkout", "--card", CARD, "--basket", basket,
                                       "--redeem"),
        }
        for name, args in cases.items():
            with self.subTest(case=name):
                r = self.run_cli(*args)  # --json comes last
                self.check_error(r, 2, "bad_argument")
                self.assertIn("error", self.one_json(r))
        self.assertEqual(self.entries(), 1)

    def test_no_command_one_error_line(self):
        self.init()
        r = self.run_cli()
        self.check_error(r, 2, None)
        self.assertIn("error", self.one_json(r))

    def test_malformed_baskets(self):
        self.setup_terminal()
        self.enroll()
        path = os.path.join(self.tmp, "broken.json")
        with open(path, "w") as f:
            f.write('{"receipt_id": "X-1", "at": ')
        self.refused(2, None, "checkout", "--card", CARD, "--basket", path)
        good = [line("COF-01", "coffee", 1, 350)]
        bad = {
            "no receipt id": {"at": "2026-11-23T10:00:00+01:00", "lines": good},
            "no lines": {"receipt_id": "X-2", "at": "2026-11-23T10:00:00+01:00", "lines": []},
            "bad at": {"receipt_id": "X-3", "at": "yesterday", "lines": good},
            "qty 0": {"receipt_id": "X-4", "at": "2026-11-23T10:00:00+01:00",
                      "lines": [line("COF-01", "coffee", 0, 350)]},
            "negative price": {"receipt_id": "X-5", "at": "2026-11-23T10:00:00+01:00",
                               "lines": [line("COF-01", "coffee", 1, -350)]},
            "negative net": {"receipt_id": "X-6", "at": "2026-11-23T10:00:00+01:00",
                             "lines": [line("COF-01", "coffee", 1, 350, 400)]},
            "not an object": ["COF-01"],
        }
        for name, doc in bad.items():
            with self.subTest(case=name):
                self.refused(2, None, "checkout", "--card", CARD, "--basket", self.write_json(doc))
        self.assertEqual(self.entries(), 1)


class HumanOutputTest(TerminalCase):

    def test_checkout_for_a_cashier(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())
        out = self.human("checkout", "--card", ";6280001234567895=2812?", "--basket",
                         self.example_basket("saturday-big.json"), "--redeem", "100")
        self.assertIn("****7895", out)
        self.assertIn("EUR 1.00", out)  # the redemption's money
        self.assertIn("R-1002", out)
        res = self.checkout(CARD, self.example_basket("saturday-big.json"), "--redeem", "100")
        self.assertIs(res["replayed"], True)
        self.assertIn(str(res["earned"]), out)
        self.assertIn(str(res["balance"]), out)

    def test_other_currencies(self):
        for currency, exponent_text in (("HUF", "HUF 2.50"), ("JPY", "JPY 250")):
            with self.subTest(currency=currency):
                shutil.rmtree(self.data, True)
                p = load_program()
                p["currency"] = currency
                self.setup_terminal(p)
                self.enroll()
                self.checkout(CARD, self.big_basket())
                out = self.human("checkout", "--card", CARD, "--basket",
                                 self.example_basket("saturday-big.json"), "--redeem", "250")
                self.assertIn(exponent_text, out)

    def test_human_errors(self):
        self.setup_terminal()
        r = self.run_cli("balance", "--card", BAD_LUHN, json_out=False)
        m = self.check_error(r, 2, "bad_card")
        self.assertIn("****7897", m.group(2))


class RulesTest(TerminalCase):
    """spec/program.md's rules as the terminal applies them, with figures
    worked out by hand from the spec."""

    def earn(self, receipt_id, at, lines, *extra, card=CARD):
        return self.checkout(card, self.basket(receipt_id, at, lines), *extra)

    def test_campaign_dates_and_weekdays_in_the_basket_offset(self):
        self.setup_terminal()
        coffee = [line("COF-01", "coffee", 2, 500)]  # 10.00 EUR: base 10
        cases = [
            ("2026-11-24T10:00:00+01:00", 20),  # a Tuesday in the window: doubled
            ("2026-11-24T00:30:00+01:00", 20),  # Tuesday there (Monday in UTC)
            ("2026-11-23T23:30:00-01:00", 10),  # Monday there (Tuesday in UTC)
            ("2025-12-30T10:00:00+01:00", 10),  # a Tuesday before "from"
            ("2026-12-29T10:00:00+01:00", 20),  # the last Tuesday before "until"
            ("2027-01-05T10:00:00+01:00", 10),  # a Tuesday after "until"
        ]
        for i, (at, earned) in enumerate(cases):
            with self.subTest(at=at):
                other = luhn_complete("6280004444%05d" % i)  # each a fresh Member
                self.secrets.add(other)
                res = self.earn("W-%d" % i, at, coffee, card=other)
                self.assertEqual(res["earned"], earned, res["breakdown"])

    def test_campaign_cap_and_spend_bonus_threshold(self):
        self.setup_terminal()
        cards = iter(luhn_complete("6280005555%05d" % i) for i in range(10))
        # 12 cakes, 288.00 EUR on a Monday: pastry-x3 would add 576, capped at 500.
        c = next(cards)
        self.secrets.add(c)
        res = self.earn("CAP-1", "2026-11-23T10:00:00+01:00",
                        [line("CAKE-05", "pastry", 12, 2400)], card=c)
        self.assertEqual(breakdown(res), {"base": 288, "pastry-x3": 500, "big-basket": 50})
        # big-basket from exactly 30.00 EUR of eligible spend, not below.
        for spend, bonus in ((3000, 50), (2999, 0)):
            c = next(cards)
            self.secrets.add(c)
            res = self.earn("BB-%d" % spend, "2026-11-23T10:00:00+01:00",
                            [line("BEAN-1K", "beans", 1, spend),
                             line("TAB-07", "tobacco", 1, 5000)], card=c)
            self.assertEqual(breakdown(res).get("big-basket", 0), bonus)
            self.assertEqual(res["earned"], spend // 100 + bonus)

    def test_redemption_boundaries(self):
        p = load_program()
        p["redeem"]["offline_daily_cap"] = 100000
        self.setup_terminal(p)
        self.enroll()
        self.checkout(CARD, self.big_basket(qty=30))  # 3050 points
        big = self.example_basket("saturday-big.json")  # at most 3170 points
        self.refused(3, "insufficient_points", "checkout", "--card", CARD, "--basket", big,
                     "--redeem", "3051")
        res = self.checkout(CARD, big, "--redeem", "3050")  # the whole balance
        self.assertEqual((res["redeemed"], res["discount"]), (3050, 3050))
        self.assertEqual(res["balance"], res["earned"])
        self.checkout(CARD, self.big_basket("BIG-2", qty=40))
        with open(big) as f:
            doc = json.load(f)
        doc["receipt_id"] = "R-2002"
        big2 = self.write_json(doc)
        self.refused(3, "over_max_pct", "checkout", "--card", CARD, "--basket", big2,
                     "--redeem", "3171")
        self.assertEqual(self.checkout(CARD, big2, "--redeem", "3170")["discount"], 3170)
        doc["receipt_id"] = "R-3002"
        self.assertEqual(self.checkout(CARD, self.write_json(doc), "--redeem", "100")
                         ["redeemed"], 100)  # exactly min_points

    def test_refund_takes_back_a_spend_bonus_no_longer_met(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("saturday-big.json"))  # 161
        res = self.ok("refund", "--receipt", "R-1002", "--line", "BEAN-1K=2")
        # Left: cake 24.00 + coffee 3.50 = 27.50 < 30.00: base 27 + pastry-x3
        # 48 = 75 stay; big-basket goes.
        self.assertEqual((res["points_reversed"], res["points_returned"]), (86, 0))
        self.assertEqual(res["balance"], 75)

    def test_refund_of_a_reward(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.big_basket())  # 1050
        self.checkout(CARD, self.basket("C-1", "2026-11-27T10:00:00+01:00",
                                        [line("COF-01", "coffee", 2, 350)]),
                      "--reward", "free-coffee")  # earned 9, redeemed 300: 759
        res = self.ok("refund", "--receipt", "C-1", "--line", "COF-01=1")
        # The unit left is the one given: it earns nothing, so all 9 go back;
        # half the eligible spend before the reward is refunded: 150 of 300.
        self.assertEqual((res["points_reversed"], res["points_returned"]), (9, 150))
        res = self.ok("refund", "--receipt", "C-1")
        self.assertEqual((res["points_reversed"], res["points_returned"]), (0, 150))
        self.assertEqual(res["balance"], 1050)

    def test_refund_may_go_below_zero(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("tuesday-coffee.json"))  # 42
        self.checkout(CARD, self.example_basket("saturday-big.json"))  # 161: 203
        self.checkout(CARD, self.example_basket("discounted-only.json"), "--redeem", "100")
        self.assertEqual(self.balance()["balance"], 105)  # 203 + 2 - 100
        res = self.ok("refund", "--receipt", "R-1002")
        self.assertEqual(res["balance"], 105 - 161)
        self.assertEqual(self.balance()["balance"], -56)
        self.assertEqual(self.balance()["redeemable_today"], 0)
        self.refused(3, "insufficient_points", "checkout", "--card", CARD, "--basket",
                     self.big_basket("B-9"), "--redeem", "100")
        self.ok("verify")

    def test_refund_uses_the_receipts_program_version(self):
        self.setup_terminal()
        self.enroll()
        self.checkout(CARD, self.example_basket("saturday-big.json"))  # 161 under v7
        v8 = load_program()
        v8["version"] = 8
        v8["earn"]["per"] = 10  # ten times the points from now on
        v8["campaigns"] = []
        self.ok("program", "load", self.write_json(v8))
        # A retry of the old receipt gives the recorded result.
        again = self.checkout(CARD, self.example_basket("saturday-big.json"))
        self.assertEqual((again["earned"], again["replayed"]), (161, True))
        res = self.ok("refund", "--receipt", "R-1002", "--line", "CAKE-05=1")
        self.assertEqual(res["points_reversed"], 72)  # as under v7
        res = self.checkout(CARD, self.example_basket("tuesday-coffee.json"))
        self.assertEqual(breakdown(res), {"base": 140})


class OfflineDayTest(TerminalCase):
    """A full day offline: members, checkouts with redemptions and rewards,
    partial and full refunds; the balances are the sums of the outputs."""

    def test_full_offline_day(self):
        seed = int(os.environ.get("LOY_TEST_SEED", "20261124"))
        rnd = random.Random(seed)
        print("offline day seed %d" % seed, file=sys.stderr)
        program = load_program()
        excluded_cats = set(program["exclude"]["categories"])
        excluded_skus = set(program["exclude"]["skus"])
        self.setup_terminal()
        members = [luhn_complete("62800012345%04d" % i) for i in (11, 22, 33)]
        unknown = luhn_complete("628000999000111")
        self.secrets |= set(members) | {unknown}
        for card in members:
            self.enroll(card)
        scans = {}
        for card in members + [unknown]:
            scans[card] = [card, ";%s=2812?" % card, "LOYALTY:" + card,
                           " ".join(card[i:i + 4] for i in range(0, len(card), 4))]
            self.secrets.add(scans[card][3])
        catalogue = [("COF-01", "coffee", 350), ("CRS-02", "pastry", 250),
                     ("CAKE-05", "pastry", 2400), ("BEAN-1K", "beans", 1890),
                     ("TAB-07", "tobacco", 890), ("GIFT-50", "giftcard", 5000),
                     ("BAG-01", "bags", 20), ("TEA-03", "tea", 300)]
        expected = {c: 0 for c in members + [unknown]}
        redeemed_today = {c: 0 for c in members}
        receipts = {}  # id -> (card, {sku: units left}, redeemed)
        entries = len(members)

        for n in range(1, 21):
            card = (members + [unknown])[n % 4]
            rid = "DAY-%03d" % n
            picks = rnd.sample(catalogue, rnd.randint(1, 4))
            if n <= 4:
                picks = [("BEAN-1K", "beans", 1890), ("CAKE-05", "pastry", 2400)]
            if n % 5 == 0 and ("COF-01", "coffee", 350) not in picks:
                picks.append(("COF-01", "coffee", 350))
            lines = []
            for sku, cat, price in picks:
                qty = rnd.randint(1, 3) if n > 4 else 6
                discount = rnd.choice([0, 0, 10, 50]) if qty * price > 50 else 0
                lines.append(line(sku, cat, qty, price, discount))
            at = "2026-11-24T%02d:%02d:00+01:00" % (8 + n // 3, (n * 7) % 60)
            path = self.basket(rid, at, lines)
            eligible = sum(l["qty"] * l["unit_price"] - l["discount"] for l in lines
                           if l["category"] not in excluded_cats and l["sku"] not in excluded_skus)
            extra = []
            if card in members:
                bal = expected[card]
                has_coffee = any(l["sku"] == "COF-01" for l in lines)
                room = 1000 - redeemed_today[card]
                if n % 5 == 0 and has_coffee and bal >= 300 and room >= 300:
                    extra = ["--reward", "free-coffee"]
                elif n % 2 == 0:
                    pts = min(bal, eligible // 2, room, rnd.choice([100, 150, 250, 400]))
                    if pts >= 100:
                        extra = ["--redeem", str(pts)]
            scan = rnd.choice(scans[card])
            res = self.assert_checkout_shape(self.checkout(scan, path, *extra), card=card)
            entries += 1
            self.assertIs(res["replayed"], False)
            if extra:
                self.assertGreater(res["redeemed"], 0)
            expected[card] += res["earned"] - res["redeemed"]
            if card in members:
                redeemed_today[card] += res["redeemed"]
                self.assertEqual(res["balance"], expected[card], rid)
            else:
                self.assertIsNone(res["balance"])
            receipts[rid] = (card, {l["sku"]: l["qty"] for l in lines})

            # Now and then a retry of the receipt just recorded.
            if n % 7 == 0:
                again = self.checkout(scan, path, *extra)
                self.assertIs(again["replayed"], True)

            # Refunds: a unit of an earlier receipt, or all of one.
            if n % 3 == 0:
                target = rnd.choice(sorted(receipts))
                tcard, left = receipts[target]
                skus = [s for s, q in left.items() if q > 0]
                if not skus:
                    continue
                if rnd.random() < 0.5:
                    sku = rnd.choice(skus)
                    ref = self.ok("refund", "--receipt", target, "--line", "%s=1" % sku)
                    left[sku] -= 1
                else:
                    ref = self.ok("refund", "--receipt", target)
                    for s in left:
                        left[s] = 0
                entries += 1
                expected[tcard] += ref["points_returned"] - ref["points_reversed"]
                if tcard in members:
                    redeemed_today[tcard] -= ref["points_returned"]
                    self.assertEqual(ref["balance"], expected[tcard], target)
                else:
                    self.assertIsNone(ref["balance"])

        # A full refund of what is left of one receipt, and once more: declined.
        target = "DAY-001"
        tcard, left = receipts[target]
        if any(left.values()):
            ref = self.ok("refund", "--receipt", target)
            entries += 1
            expected[tcard] += ref["points_returned"] - ref["points_reversed"]
        self.refused(3, "already_refunded", "refund", "--receipt", target)

        for card in members:
            bal = self.balance(rnd.choice(scans[card]))
            self.assertIs(bal["known"], True)
            self.assertEqual(bal["balance"], expected[card], "balance of ****%s" % card[-4:])
            self.assertEqual(bal["unsynced"], expected[card])
            self.assertLessEqual(bal["redeemable_today"], max(bal["balance"], 0))
        bal = self.balance(unknown)
        self.assertIs(bal["known"], False)
        self.assertIsNone(bal["balance"])
        st = self.ok("status")
        self.assertEqual(st["entries"], entries)
        self.assertEqual(st["unsynced"], entries)
        res = self.ok("verify")
        self.assertIs(res["ok"], True)
        self.assertEqual(res["entries"], entries)
        # The journal says the same: per member token, the points column adds
        # up to the balance.
        rows = self.journal("SELECT count(*), coalesce(sum(points), 0) FROM journal")
        self.assertEqual(rows[0][0], entries)
        self.assertEqual(rows[0][1], sum(expected.values()))


class RunTest(TerminalCase):
    """`loyalty-terminal --data-dir D run`, as cli.md writes it: no
    configuration file, so the defaults: the POS socket in the data dir,
    receipts on stdout. The loop's own behaviour is tested through the
    simulators (tests/firmware/test_till.cpp); here, the program around it."""

    def start(self, *extra):
        cmd = EMULATOR + [TERMINAL, "--data-dir", self.data, "run"] + list(extra)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        sock_path = os.path.join(self.data, "pos.sock")
        deadline = time.time() + TIMEOUT
        while not os.path.exists(sock_path):
            if proc.poll() is not None:
                self.fail("run stopped: %s" % proc.stderr.read())
            self.assertLess(time.time(), deadline, "no POS socket")
            time.sleep(0.05)
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.connect(sock_path)
        sock.settimeout(TIMEOUT)
        return proc, sock.makefile("rw")

    def ask(self, f, req):
        f.write(json.dumps(req) + "\n")
        f.flush()
        while True:
            msg = json.loads(f.readline())
            if "event" not in msg:
                return msg

    def test_run_serves_the_pos_and_stops_on_sigterm(self):
        self.setup_terminal()
        proc, f = self.start()
        st = self.ask(f, {"op": "status", "id": "a"})
        self.assertEqual(st["id"], "a")
        self.assertIs(st["ok"], True)
        self.assertEqual(st["result"]["terminal_id"], "T1")
        self.assertEqual(st["result"]["till"]["reader"], "none")
        self.assertEqual(st["result"]["till"]["sync"], "off")
        basket = {"receipt_id": "POS-1", "at": "2026-11-24T10:15:00+01:00",
                  "lines": [line("COF-01", "coffee", 2, 350)]}
        a = self.ask(f, {"op": "checkout", "scan": CARD, "basket": basket})
        self.assertIs(a["ok"], True, a)
        self.assertGreater(a["result"]["earned"], 0)
        self.assertEqual(a["result"]["card"], "****7895")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        # The receipt went to stdout, the card masked; the sale is in the ledger.
        self.assertIn("POS-1", out)
        self.assertIn("****7895", out)
        self.assertNotIn(CARD, out + err)
        self.assertEqual(self.ok("status")["entries"], self.entries())
        self.assertIs(self.ok("verify")["ok"], True)

    def test_run_refuses_a_second_till_on_the_same_socket(self):
        self.setup_terminal()
        proc, _ = self.start()
        r = self.run_cli("run", json_out=False)
        self.check_error(r, 2, "bad_argument")
        self.assertIn("another till", r.err)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0)

    def test_run_refuses_a_second_till_on_the_same_data_dir_with_another_socket(self):
        self.setup_terminal()
        proc, _ = self.start()
        conf = os.path.join(self.tmp, "other.conf")
        with open(conf, "w") as f:
            f.write('[pos]\nsocket = "%s"\n' % os.path.join(self.tmp, "other.sock"))
        r = self.run_cli("run", "--config", conf, json_out=False)
        self.assertIn("another till runs on the data dir",
                      self.check_error(r, 2, "bad_argument").group(2))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "other.sock")))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0)
        # Once it stopped, another till may start.
        proc2, f2 = self.start()
        self.assertIs(self.ask(f2, {"op": "status"})["ok"], True)
        proc2.send_signal(signal.SIGTERM)
        proc2.communicate(timeout=TIMEOUT)

    def test_run_refuses_a_bad_configuration_naming_the_line(self):
        self.setup_terminal()
        with open(os.path.join(self.data, "terminal.conf"), "w") as f:
            f.write("[sync]\nnightly = 25:00\n")
        r = self.run_cli("run", json_out=False)
        msg = self.check_error(r, 2, "bad_argument").group(2)
        self.assertIn("line 2", msg)
        self.assertIn("nightly", msg)
        r = self.run_cli("run", "--config", os.path.join(self.tmp, "missing.conf"), json_out=False)
        self.check_error(r, 2, "bad_argument")

    def test_run_needs_an_initialised_data_dir(self):
        r = self.run_cli("run", json_out=False)
        self.check_error(r, 2, "bad_argument")


def main():
    global TERMINAL, EMULATOR, EXAMPLES
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--terminal", required=True)
    parser.add_argument("--emulator", default="")
    parser.add_argument("--examples", required=True)
    args, rest = parser.parse_known_args()
    TERMINAL = os.path.abspath(args.terminal)
    EMULATOR = emulator_args(args.emulator)
    EXAMPLES = os.path.abspath(args.examples)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
