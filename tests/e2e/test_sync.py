#!/usr/bin/env python3
"""End-to-end tests of the sync between loyalty-terminal and loyalty-central,
both driven exactly as spec/cli.md writes their command lines: a test PKI from
`pki init`, `serve` on 127.0.0.1 with real TLS on a free port, real SQLite
files in temporary dirs, real SIGKILL.

    test_sync.py --terminal PATH --central PATH --examples DIR
                 [--emulator "qemu-aarch64"] [--seed N] [--tmpdir DIR]
                 [unittest options, e.g. -v or a test name]

Only the Python standard library is used. With --emulator, every command is
run under it (cross builds run aarch64 binaries under qemu-user) and the
crash rounds are fewer. LOYALTY_E2E_KEEP=1 keeps the temporary dirs.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import hmac
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sync_harness import (Balancer, Central, Config, CuttingProxy, FakeCentre, SyncCase, at, basket, emulator_args,  # noqa: E402
                          free_port, line, pick_tmpbase, port_open, program_clock)
import postgresql  # noqa: E402  (tests/support, on the path sync_harness set)

SEED = None

A = "6280001234567895"   # enrolled at the centre before the first sync
B = "4539578763621486"   # enrolled on both terminals, offline
C = "79927398713"        # never enrolled anywhere: earns, cannot redeem
D = "4111111111111111"
E = "5500005555555559"
F = "340000000000009"


def luhn_complete(prefix):
    """prefix + its Luhn check digit."""
    for d in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(prefix + d)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return prefix + d
    raise AssertionError("unreachable")


def mask(card):
    return "****" + card[-4:]


class Expect:
    """What the centre must end up with, summed from the terminals' own
    outputs: per card earned - redeemed - reversed + returned; per store the
    points issued (earned - reversed) and redeemed (redeemed - returned)."""

    def __init__(self):
        self.cards = defaultdict(int)
        self.stores = defaultdict(lambda: {"issued": 0, "redeemed": 0})
        self.receipts = {}  # (terminal, receipt) -> card

    def checkout(self, term, card, res):
        self.assert_shape(res, ("earned", "redeemed", "replayed"))
        assert res["replayed"] is False, res
        self.receipts[(term.id, res["receipt_id"])] = card
        self.cards[card] += res["earned"] - res["redeemed"]
        s = self.stores[term.store]
        s["issued"] += res["earned"]
        s["redeemed"] += res["redeemed"]

    def refund(self, term, res):
        self.assert_shape(res, ("points_reversed", "points_returned"))
        card = self.receipts[(term.id, res["receipt_id"])]
        self.cards[card] += res["points_returned"] - res["points_reversed"]
        s = self.stores[term.store]
        s["issued"] -= res["points_reversed"]
        s["redeemed"] -= res["points_returned"]

    @staticmethod
    def assert_shape(res, keys):
        for k in keys:
            assert k in res, "%s missing in %r" % (k, res)

    def issued(self):
        return sum(s["issued"] for s in self.stores.values())

    def redeemed(self):
        return sum(s["redeemed"] for s in self.stores.values())


def example(case, name, receipt_id=None, when=None):
    """An example basket, restamped to now (so its points neither wait nor
    expire whatever the machine's date) and written to the test's dir."""
    with open(case.example_basket(name)) as f:
        doc = json.load(f)
    doc["at"] = when or at(45)
    if receipt_id:
        doc["receipt_id"] = receipt_id
    return case.write_json(doc, "basket-%s" % name)


def store_sums(report):
    """report --json's per-store sums, keyed by store."""
    stores = report.get("stores")
    assert isinstance(stores, list), "report --json has no per-store array: %r" % report
    return {s["store"]: s for s in stores}


def terminals_acked(report):
    return {t["terminal_id"]: t["acked_through"] for t in report["terminals"]}


# ---------------------------------------------------------------------------


class TwoStoresTest(SyncCase):
    """Two terminals in two stores, an offline day on each, then sync."""

    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others

    def test_offline_day_in_two_stores(self):
        c = self.new_central()
        srv = self.new_server(c)
        # A is known to the chain before the terminals first sync.
        res = c.ok("enroll", "--card", A)
        self.assertEqual(res["card"], mask(A))
        t1 = self.new_terminal("T1", "S1")
        t2 = self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            self.assertIsNone(t.status()["program"])
            res = t.sync()
            self.assertEqual(res["pushed"], 0)
            self.assertEqual(res["program_version"], 7)
            self.assertGreaterEqual(res["members"], 1)
            st = t.status()
            self.assertEqual(st["program"], {"id": "cafe-rewards", "version": 7})
            self.assertEqual((st["entries"], st["unsynced"]), (0, 0))
            self.assertIsNotNone(st["last_sync"])
            bal = t.balance(A)
            self.assertIs(bal["known"], True, "A came in the sync: %r" % bal)
            self.assertEqual(bal["balance"], 0)

        # The day: the centre is down, the terminals work alone.
        srv.stop()
        x = Expect()

        # --- store S1 ---
        t1.enroll(B)
        x.checkout(t1, A, t1.checkout(A, basket("T1-001", [
            line("BEAN-1K", "beans", 30, 1890), line("CAKE-05", "pastry", 1, 2400)], at(300))))
        res = t1.checkout(A, basket("T1-002", [
            line("COF-01", "coffee", 2, 350), line("BEAN-1K", "beans", 1, 1890)], at(290)),
            redeem=200)
        self.assertEqual(res["redeemed"], 200, str(res))
        x.checkout(t1, A, res)
        res = t1.checkout(A, basket("T1-003", [
            line("COF-01", "coffee", 1, 350), line("CRS-02", "pastry", 2, 250)], at(280)),
            reward="free-coffee")
        self.assertEqual(res["redeemed"], 300, str(res))
        x.checkout(t1, A, res)
        x.checkout(t1, B, t1.checkout_file(B, example(self, "tuesday-coffee.json", when=at(270))))
        doc5 = basket("T1-005", [line("COF-01", "coffee", 3, 350), line("CAKE-05", "pastry", 1, 2400)],
                      at(260))
        first = t1.checkout(C, doc5)
        self.assertIsNone(first["balance"], "C is unknown: it earns but has no balance")
        x.checkout(t1, C, first)
        again = t1.checkout(C, doc5)  # a retry of the same receipt: a replay
        self.assertIs(again["replayed"], True, str(again))
        self.assertEqual(again["earned"], first["earned"])
        x.checkout(t1, B, t1.checkout(B, basket("T1-006", [
            line("BEAN-1K", "beans", 2, 1890, 100), line("TAB-07", "tobacco", 1, 890)], at(250))))
        x.refund(t1, t1.refund("T1-001", "BEAN-1K=5"))
        res = t1.refund("T1-002")
        self.assertEqual(res["points_returned"], 200, "a full refund returns all redeemed points")
        x.refund(t1, res)
        x.refund(t1, t1.refund("R-1001"))
        x.refund(t1, t1.refund("T1-003", "CRS-02=1"))
        x.refund(t1, t1.refund("T1-001", "BEAN-1K=2"))
        res = t1.checkout(A, basket("T1-007", [
            line("COF-01", "coffee", 1, 350), line("BEAN-1K", "beans", 1, 1890)], at(200)),
            redeem=150)
        self.assertEqual(res["redeemed"], 150, str(res))
        x.checkout(t1, A, res)

        # --- store S2: A and B again, and others ---
        for card in (B, D, E):
            t2.enroll(card)
        x.checkout(t2, A, t2.checkout_file(A, example(self, "saturday-big.json", when=at(240))))
        res = t2.checkout(A, basket("T2-002", [
            line("COF-01", "coffee", 1, 350), line("BEAN-1K", "beans", 1, 1890)], at(230)), redeem=100)
        self.assertEqual(res["redeemed"], 100, str(res))
        x.checkout(t2, A, res)
        x.checkout(t2, B, t2.checkout(B, basket("T2-003", [line("BEAN-1K", "beans", 20, 1890)], at(220))))
        res = t2.checkout(B, basket("T2-004", [
            line("COF-01", "coffee", 2, 350), line("CRS-02", "pastry", 1, 250)], at(210)),
            reward="free-coffee")
        self.assertEqual(res["redeemed"], 300, str(res))
        x.checkout(t2, B, res)
        x.checkout(t2, D, t2.checkout(D, basket("T2-005", [
            line("BEAN-1K", "beans", 5, 1890), line("CRS-02", "pastry", 4, 250, 100)], at(200))))
        x.checkout(t2, C, t2.checkout(C, basket("T2-006", [
            line("COF-01", "coffee", 1, 350), line("BEAN-1K", "beans", 3, 1890)], at(190))))
        x.checkout(t2, F, t2.checkout(F, basket("T2-007", [
            line("COF-01", "coffee", 2, 350), line("CAKE-05", "pastry", 1, 2400)], at(180))))
        x.refund(t2, t2.refund("T2-007"))
        res = t2.refund("T2-004")
        self.assertEqual(res["points_returned"], 300)
        x.refund(t2, res)
        x.refund(t2, t2.refund("T2-005", "CRS-02=2"))
        x.refund(t2, t2.refund("T2-005", "BEAN-1K=1"))
        x.refund(t2, t2.refund("R-1002", "GIFT-50=1"))
        # A receipt id T1 used too: receipts are the terminal's own.
        x.checkout(t2, C, t2.checkout_file(C, example(self, "tuesday-coffee.json", when=at(170))))
        x.refund(t2, t2.refund("R-1001", "COF-01=1"))

        cards = [A, B, C, D, E, F]
        srv.start()
        central = self.settle(c, (t1, t2), cards, x)

        # Day 2, offline again: both terminals spend A's synced balance (more
        # than it holds between them: the overspend the daily cap bounds), and
        # refund receipts the centre already has.
        srv.stop()
        have = central[A]["balance"]
        self.assertGreaterEqual(have, 200, "A's balance after day 1")
        spend = [line("BEAN-1K", "beans", 4, 1890)]
        for t, rid in ((t1, "T1-101"), (t2, "T2-101")):
            self.assertEqual(t.balance(A)["balance"], have)
            res = t.checkout(A, basket(rid, spend, at(2)), redeem=have // 2 + 50)
            self.assertEqual(res["redeemed"], have // 2 + 50, str(res))
            x.checkout(t, A, res)
        x.refund(t1, t1.refund("T1-006"))
        x.refund(t2, t2.refund("T2-003", "BEAN-1K=7"))
        x.refund(t2, t2.refund("T2-101", "BEAN-1K=1"))
        x.checkout(t1, D, t1.checkout(D, basket("T1-102", [line("COF-01", "coffee", 2, 350)], at(1))))
        srv.start()
        self.settle(c, (t1, t2), cards, x)
        srv.stop()

    def settle(self, c, terms, cards, x):
        """Syncs every terminal twice; then the centre holds what the
        terminals' outputs add up to, and every terminal shows the centre's
        balances. Returns the centre's balances."""
        entries = {}
        for t in terms:
            t.verify()
            st = t.status()
            entries[t.id] = st["entries"]
            unsynced = st["unsynced"]
            res = t.sync()
            self.assertEqual(res["pushed"], unsynced, "%s pushes what it had not synced: %r" % (t.id, res))
            self.assertEqual(res["acked_through"], entries[t.id])
            self.assertEqual(t.status()["unsynced"], 0)
        print("\n  entries %s; expected balances %s" %
              (entries, {mask(k): v for k, v in sorted(x.cards.items())}))
        central = {}
        for card in cards:
            bal = c.balance(card)
            for k in ("card", "balance", "tier", "qualifying_spend", "blocked"):
                self.assertIn(k, bal, "cli.md: central balance --json has %s: %r" % (k, bal))
            self.assertEqual(bal["card"], mask(card))
            self.assertEqual(bal["balance"], x.cards[card],
                             "centre's balance of %s after every terminal synced" % mask(card))
            self.assertIs(bal["blocked"], False)
            central[card] = bal

        # Every terminal again: each learns what the others did.
        for t in terms:
            res = t.sync()
            self.assertEqual(res["pushed"], 0, "%s: nothing new to push: %r" % (t.id, res))
        for t in terms:
            for card in cards:
                bal = t.balance(card)
                self.assertIs(bal["known"], True, "%s on %s: %r" % (mask(card), t.id, bal))
                self.assertEqual(bal["balance"], central[card]["balance"],
                                 "%s on %s vs the centre" % (mask(card), t.id))
                self.assertEqual(bal["unsynced"], 0, "%s on %s: %r" % (mask(card), t.id, bal))
                self.assertEqual(bal["tier"], central[card]["tier"],
                                 "tier of %s on %s vs the centre" % (mask(card), t.id))

        rep = c.report()
        self.assertEqual(rep["members"], len(cards), str(rep))
        self.assertEqual(rep["points_issued"], x.issued(), str(rep))
        self.assertEqual(rep["points_redeemed"], x.redeemed(), str(rep))
        self.assertEqual(rep["points_outstanding"], x.issued() - x.redeemed(), str(rep))
        self.assertEqual(rep["points_outstanding"], sum(x.cards.values()))
        per_store = store_sums(rep)
        self.assertEqual(set(per_store), set(x.stores))
        for name, want in x.stores.items():
            got = per_store[name]
            self.assertEqual((got["points_issued"], got["points_redeemed"], got["points_outstanding"]),
                             (want["issued"], want["redeemed"], want["issued"] - want["redeemed"]),
                             "store %s in %r" % (name, got))
        self.assertEqual(terminals_acked(rep), entries)

        # One more sync pushes nothing and changes nothing.
        for t in terms:
            res = t.sync()
            self.assertEqual(res["pushed"], 0, str(res))
            self.assertEqual(res["acked_through"], entries[t.id])
            t.verify()
        for card in cards:
            self.assertEqual(c.balance(card)["balance"], central[card]["balance"])
            for t in terms:
                self.assertEqual(t.balance(card)["balance"], central[card]["balance"])
        rep2 = c.report()
        for k in ("members", "points_issued", "points_redeemed", "points_outstanding"):
            self.assertEqual(rep2[k], rep[k], k)
        self.assertEqual(terminals_acked(rep2), terminals_acked(rep))
        return central


# ---------------------------------------------------------------------------


class ExactlyOnceTest(SyncCase):
    """Many offline entries; syncs interrupted by SIGKILL (mostly of the
    server, sometimes of the terminal's sync) and by SIGTERM; then a clean
    sync: every entry counts once."""

    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others

    def test_sync_interrupted_by_kills(self):
        rnd = random.Random(SEED)
        total = 600 if Config.emulated else 1500
        rounds = 3 if Config.emulated else 6
        print("\n  seed %d: %d entries, %d rounds" % (SEED, total, rounds))
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        state = {"n": 0, "earned": 0, "entries": 1}
        # Most receipts go to A; on the host the first 1100 others go to
        # cards seen nowhere else, so that the members pulled after the push
        # take more than one page (at most 1000 a page).
        fresh = 1100 if not Config.emulated else 100
        earned = defaultdict(int)

        def add(count):
            t0 = time.monotonic()
            for _ in range(count):
                state["n"] += 1
                if len(earned) <= fresh and rnd.random() < 0.8:
                    card = luhn_complete("70%012d" % len(earned))
                else:
                    card = A
                lines = [line("COF-01", "coffee", rnd.randint(1, 3), 350)]
                if rnd.random() < 0.7:
                    lines.append(line("BEAN-1K", "beans", rnd.randint(1, 4), 1890, rnd.choice([0, 0, 90])))
                if rnd.random() < 0.3:
                    lines.append(line("CRS-02", "pastry", rnd.randint(1, 2), 250))
                res = t.checkout(card, basket("K-%05d" % state["n"], lines, at(rnd.randint(1, 600))))
                state["earned"] += res["earned"]
                state["entries"] += 1
                earned[card] += res["earned"]
            return time.monotonic() - t0

        took = add(total - 1)
        print("  %d offline checkouts in %.1f s (%.1f ms each)" % (total - 1, took, 1000 * took / (total - 1)))

        def held():
            rows = c.query("SELECT acked_through FROM terminals WHERE terminal_id = ?", ("T1",))
            return rows[0][0] if rows else 0

        def check_central():
            # One statement, one snapshot: a batch of a terminal killed
            # mid-push may still commit at the centre between two reads.
            n, distinct, lo, hi, acked = c.query(
                "SELECT count(*), count(DISTINCT seq), coalesce(min(seq), 0), coalesce(max(seq), 0), "
                "(SELECT coalesce(max(acked_through), 0) FROM terminals WHERE terminal_id = ?) "
                "FROM entries WHERE terminal_id = ?", ("T1", "T1"))[0]
            self.assertEqual(n, distinct, "an entry stored twice")
            self.assertEqual(hi - lo + 1 if n else 0, n, "a gap in the entries held")
            self.assertEqual(acked, n, "acked_through is not the count of entries held")
            self.assertLessEqual(n, state["entries"])
            return n

        # Where each round kills: during the TLS handshake, after k of the
        # batches (mid-push), once the centre holds everything but before the
        # terminal heard it (the lost acknowledgement), or after a random time.
        # Who dies: the server (SIGKILL), the server (SIGTERM), or the
        # terminal's sync (SIGKILL).
        if Config.emulated:
            points = ["mid", "all-held", "time"]
        else:
            points = ["handshake", "mid", "mid", "all-held", "time", "time"]
        points = (points * rounds)[:rounds]
        victims = (["kill"] * max(1, rounds - 2) + ["term", "terminal"])[:rounds]
        rnd.shuffle(points)
        rnd.shuffle(victims)
        per_entry = 0.0008 * Config.slow  # s per entry pushed; learnt below
        interrupted = 0
        for r, (point, victim) in enumerate(zip(points, victims)):
            if not srv.running():
                srv.start()
            h0 = held()
            need = 600 if point == "mid" else 100
            if state["entries"] - h0 < need:
                add(need - (state["entries"] - h0) + rnd.randint(0, 100))
            t_acked = t.status()["entries"] - t.status()["unsynced"]
            to_push = state["entries"] - t_acked   # re-pushes included
            p = t.popen_sync()
            t0 = time.monotonic()
            if point == "handshake":
                d = rnd.uniform(0, 0.05)
                time.sleep(d)
                how = "after %.3f s" % d
            elif point == "time":
                d = rnd.uniform(0, 0.05 + per_entry * to_push)
                time.sleep(d)
                how = "after %.3f s" % d
            else:
                batches = math.ceil((state["entries"] - h0) / 500)
                target = state["entries"] if point == "all-held" else h0 + 500 * rnd.randint(1, batches - 1)
                deadline = time.monotonic() + 60 * Config.slow
                while held() < target and p.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
                reached = time.monotonic() - t0
                if held() >= target and target > t_acked:
                    per_entry = reached / (target - t_acked)
                d = rnd.uniform(0, 0.02)
                time.sleep(d)
                how = "centre held %d (+%.3f s)" % (target, d)
            finished_before = p.poll() is not None
            if victim == "kill":
                srv.kill()
            elif victim == "term":
                took = srv.stop(signal.SIGTERM)
                how += ", serve stopped in %.2f s" % took
            else:
                p.send_signal(signal.SIGKILL)
            try:
                out, err = p.communicate(timeout=60 * Config.slow)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                self.fail("round %d: the sync did not end within %d s of the %s" %
                          (r, 60 * Config.slow, victim))
            elapsed = time.monotonic() - t0
            if victim == "terminal":
                self.assertIn(p.returncode, (0, -signal.SIGKILL),
                              "round %d: sync\nstdout %r\nstderr %r" % (r, out, err))
            else:
                self.assertIn(p.returncode, (0, 5), "round %d: sync exit %s (want 0 or 5)\nstdout %r\nstderr %r"
                              % (r, p.returncode, out, err))
                if p.returncode == 5:
                    self.assertIn("error: network:", err)
            if p.returncode != 0:
                interrupted += 1
            n = check_central()
            t.verify()
            print("  round %d: %-8s %-9s %s -> sync exit %s in %.2f s%s; terminal had %d to push, "
                  "centre holds %d/%d" %
                  (r, victim, point, how, p.returncode, elapsed,
                   " (had finished)" if finished_before else "", to_push, n, state["entries"]))
        if interrupted == 0:
            print("  warning: no round interrupted a sync")

        if not srv.running():
            srv.start()
        res = t.sync()
        self.assertEqual(res["acked_through"], state["entries"], str(res))
        print("  clean sync: %r" % res)
        res2 = t.sync()
        self.assertEqual(res2["pushed"], 0, str(res2))
        st = t.status()
        self.assertEqual(st["unsynced"], 0, str(st))
        self.assertEqual(st["entries"], state["entries"])
        t.verify()
        n, distinct = c.query("SELECT count(*), count(DISTINCT seq) FROM entries WHERE terminal_id = ?",
                              ("T1",))[0]
        self.assertEqual((n, distinct), (state["entries"], state["entries"]),
                         "central.db holds each entry of T1 exactly once")
        rep = c.report()
        self.assertEqual(rep["points_issued"], state["earned"],
                         "points issued at the centre vs earned on the terminal")
        self.assertEqual(rep["points_redeemed"], 0)
        self.assertEqual(terminals_acked(rep), {"T1": state["entries"]})
        self.assertEqual(rep["members"], len(earned | {A: 0}), "members at the centre")
        sample = [A] + rnd.sample(sorted(earned), min(8, len(earned)))
        for card in sample:
            self.assertEqual(c.balance(card)["balance"], earned[card], "centre, ****%s" % card[-4:])
            bal = t.balance(card)
            self.assertIs(bal["known"], True, "the terminal pulled every member: %r" % bal)
            self.assertEqual((bal["balance"], bal["unsynced"]), (earned[card], 0), str(bal))
        srv.stop()


# ---------------------------------------------------------------------------


def in_parallel(fns):
    """Runs each function in its own thread; re-raises the first failure."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: B902 - handed to the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


class ConcurrentSyncTest(SyncCase):
    """Three terminals (two in the same store) push at the same time while
    administrative commands run on the centre's data dir."""

    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others

    def test_concurrent_pushes_and_admin_commands(self):
        rnd = random.Random(SEED + 1)
        n = 80 if Config.emulated else 300
        c = self.new_central(terminals=("T1", "T2", "T3"))
        srv = self.new_server(c)
        terms = [self.new_terminal("T1", "S1"), self.new_terminal("T2", "S1"),
                 self.new_terminal("T3", "S2")]
        for t in terms:
            t.init(c, srv.port)
            t.sync()
        x = Expect()
        lock = threading.Lock()
        plans = {t.id: [(rnd.choice([A, B, B, D]), rnd.randint(1, 5)) for _ in range(n)] for t in terms}

        def day(t):
            for i, (card, qty) in enumerate(plans[t.id]):
                res = t.checkout(card, basket("%s-%04d" % (t.id, i), [line("BEAN-1K", "beans", qty, 1890)]))
                with lock:
                    x.checkout(t, card, res)

        t0 = time.monotonic()
        in_parallel([lambda t=t: day(t) for t in terms])
        print("\n  %d checkouts on 3 terminals in %.1f s" % (3 * n, time.monotonic() - t0))

        procs = [(t, t.popen_sync()) for t in terms]
        admin = 0
        enrolled = False
        while any(p.poll() is None for _, p in procs):
            c.report()
            c.balance(A)
            if not enrolled:
                c.ok("enroll", "--card", E)
                enrolled = True
            admin += 1
        for t, p in procs:
            out, err = p.communicate(timeout=60 * Config.slow)
            self.assertEqual(p.returncode, 0, "concurrent sync of %s\nstdout %r\nstderr %r\n%s"
                             % (t.id, out, err, srv.log()))
            self.assertEqual(json.loads(out)["pushed"], n, out)
        print("  3 concurrent syncs, %d rounds of report+balance meanwhile" % admin)
        for t in terms:
            t.sync()
        rep = c.report()
        self.assertEqual((rep["points_issued"], rep["points_redeemed"]), (x.issued(), x.redeemed()))
        self.assertEqual(terminals_acked(rep), {t.id: n for t in terms})
        per_store = store_sums(rep)
        for name, want in x.stores.items():
            self.assertEqual(per_store[name]["points_issued"], want["issued"], name)
        for card in (A, B, D):
            bal = c.balance(card)["balance"]
            self.assertEqual(bal, x.cards[card], "centre, %s" % mask(card))
            for t in terms:
                self.assertEqual(t.balance(card)["balance"], bal, "%s on %s" % (mask(card), t.id))
        rows = c.query("SELECT terminal_id, count(*), count(DISTINCT seq) FROM entries GROUP BY terminal_id")
        self.assertEqual(sorted(rows), [(t.id, n, n) for t in terms])
        srv.stop()


# ---------------------------------------------------------------------------


class IdentityTest(SyncCase):
    """A terminal pushes only its own ledger, with a certificate of the
    chain's CA, to a server it trusts."""

    def test_identity(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        foreign = self.new_central(terminals=("T1", "T2"), name="foreign", publish=False)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        t1.sync()
        t1.enroll(A)
        t1.checkout(A, basket("G-1", [line("BEAN-1K", "beans", 3, 1890)]))
        t1.sync()

        def snapshot():
            rep = c.report()
            rows = c.query("SELECT terminal_id, count(*), max(seq) FROM entries GROUP BY terminal_id")
            return ({k: rep[k] for k in ("members", "points_issued", "points_redeemed")},
                    terminals_acked(rep), sorted(rows),
                    [c.balance(card)["balance"] for card in (A, B, D, E)])

        before = snapshot()
        self.assertEqual(before[1], {"T1": 2})

        def refused(t, what):
            st = t.status()
            r = t.sync_run()
            self.check_error(r, 5, "network")
            after = t.status()
            self.assertEqual((after["entries"], after["unsynced"], after["last_sync"]),
                             (st["entries"], st["unsynced"], st["last_sync"]),
                             "%s: a refused sync records nothing" % what)
            self.assertEqual(snapshot(), before, "%s: the centre changed" % what)
            print("\n  %s: %s" % (what, r.err.strip()))

        def offline_day(t, card):
            t.ok("program", "load", self.program_path())
            t.enroll(card)
            t.checkout(card, basket("X-1", [line("BEAN-1K", "beans", 2, 1890)]))

        # T2's data dir with T1's certificate, or with T2's certificate and
        # T1's key: refused at init, naming the problem (it would be a 403
        # at every sync; HostileRequestTest pushes as another terminal).
        impostor = self.new_terminal("T2", "S2")
        for cert, key, problem in ((c.pki("T1.pem"), c.pki("T1.key"), 'is for terminal "T1"'),
                                   (c.pki("T2.pem"), c.pki("T1.key"), "does not belong to the certificate")):
            r = impostor.run("init", "--terminal-id", "T2", "--store", "S2", "--server",
                             "https://127.0.0.1:%d" % srv.port, "--ca", c.pki("ca.pem"), "--cert", cert,
                             "--key", key, "--token-key", c.pki("token.key"))
            self.assertIn(problem, self.check_error(r, 2, "bad_argument").group(2))
            self.check_error(impostor.run("status"), 2, None)  # not a terminal yet
        impostor.init(c, srv.port)  # with its own files: a refused init is run again

        # A second data dir claiming to be T1 (a cloned identity): its ledger
        # does not continue T1's chain.
        clone = self.new_terminal("T1", "S1")
        clone.init(c, srv.port)
        offline_day(clone, D)
        refused(clone, "a second T1 ledger")

        # A client certificate from a foreign CA.
        alien = self.new_terminal("T1", "S1")
        alien.init(c, srv.port, cert=foreign.pki("T1.pem"), key=foreign.pki("T1.key"))
        offline_day(alien, E)
        refused(alien, "a certificate of a foreign CA")

        # A terminal that trusts another CA than the server's.
        wary = self.new_terminal("T1", "S1")
        wary.init(c, srv.port, ca=foreign.pki("ca.pem"))
        offline_day(wary, E)
        refused(wary, "a terminal that does not trust the server")

        # A server whose certificate does not name the address dialled: the
        # test certificate is for localhost and 127.0.0.1, not 127.0.0.2.
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.2", 0))
            other_ok = True
        except OSError:
            other_ok = False
        finally:
            probe.close()
        if other_ok:
            c2 = Central(self, os.path.join(self.tmp, "hq2"), pki_dir=c.pki_dir)
            os.makedirs(c2.root)
            srv2 = self.new_server(c2, host="127.0.0.2")
            port2 = srv2.port
            named = self.new_terminal("T1", "S1")
            named.ok("init", "--terminal-id", "T1", "--store", "S1",
                      "--server", "https://127.0.0.2:%d" % port2, "--ca", c.pki("ca.pem"),
                      "--cert", c.pki("T1.pem"), "--key", c.pki("T1.key"),
                      "--token-key", c.pki("token.key"))
            r = named.sync_run()
            self.check_error(r, 5, "network")
            print("  server certificate without 127.0.0.2: %s" % r.err.strip())
            self.assertEqual(c2.query("SELECT count(*) FROM entries")[0][0], 0)
            srv2.stop()

        # The genuine T1 still syncs, and nothing of the others arrived.
        res = t1.sync()
        self.assertEqual(res["pushed"], 0)
        self.assertEqual(snapshot(), before)
        srv.stop()


# ---------------------------------------------------------------------------


class DeadServerTest(SyncCase):
    """A dead or stalled server fails the sync with exit 5 within a bounded
    time; nothing is lost."""

    def test_dead_and_stalled_server(self):
        c = self.new_central(terminals=("T1",))
        port = free_port()
        srv = self.new_server(c, port=port, start=False)
        t = self.new_terminal("T1", "S1")
        t.init(c, port)
        t.ok("program", "load", self.program_path())
        x = Expect()
        t.enroll(A)
        for i in range(4):
            x.checkout(t, A, t.checkout(A, basket("D-%d" % i, [line("BEAN-1K", "beans", i + 1, 1890),
                                                               line("COF-01", "coffee", 1, 350)])))
        x.refund(t, t.refund("D-2", "BEAN-1K=1"))
        st0 = t.status()
        env = dict(os.environ, LOYALTY_SYNC_TIMEOUT_MS="1000")
        limit = 15 if not Config.emulated else 30
        timings = []

        def fails(what):
            r = t.sync_run(env=env)
            self.check_error(r, 5, "network")
            self.assertLess(r.elapsed, limit, "%s: the sync took too long\n%s" % (what, r))
            st = t.status()
            self.assertEqual((st["entries"], st["unsynced"], st["last_sync"]),
                             (st0["entries"], st0["unsynced"], st0["last_sync"]), what)
            timings.append("%s %.2f s" % (what, r.elapsed))

        self.assertFalse(port_open(port))
        fails("port closed")
        for mode in ("accept", "backlog", "close", "garbage", "trickle"):
            stall = self.stall_server(port, mode)
            fails("server " + mode)
            stall.close()
        print("\n  sync failures: " + ", ".join(timings))
        t.verify()

        srv.start()
        res = t.sync()
        self.assertEqual(res["pushed"], st0["entries"], str(res))
        self.assertEqual(t.status()["unsynced"], 0)
        self.assertEqual(c.balance(A)["balance"], x.cards[A])
        self.assertEqual(t.balance(A)["balance"], x.cards[A])
        rep = c.report()
        self.assertEqual((rep["points_issued"], rep["points_redeemed"]), (x.issued(), x.redeemed()))
        srv.stop()


# ---------------------------------------------------------------------------


class BlockedCardTest(SyncCase):
    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others


    def test_blocked_card(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        t1 = self.new_terminal("T1", "S1")
        t2 = self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(E)
        t1.enroll(D)
        earned = t1.checkout(E, basket("B-1", [line("BEAN-1K", "beans", 30, 1890)]))["earned"]
        self.assertGreater(earned, 400)
        t1.sync()
        self.assertEqual(c.balance(E)["balance"], earned)

        res = c.ok("block", "--card", E)
        self.assertEqual(res.get("card"), mask(E))
        self.assertIs(c.balance(E)["blocked"], True)
        for t in (t1, t2):
            t.sync()
            bal = t.balance(E)
            self.assertIs(bal.get("blocked"), True, "%s: %r" % (t.id, bal))

        entries = t1.status()["entries"]
        r = t1.run("checkout", "--card", E, "--basket", "-", "--redeem", 100,
                   stdin=self.basket_json("B-2"))
        self.check_error(r, 3, "blocked_card")
        r = t1.run("checkout", "--card", E, "--basket", "-", "--reward", "free-coffee",
                   stdin=self.basket_json("B-3"))
        self.check_error(r, 3, "blocked_card")
        self.assertEqual(t1.status()["entries"], entries, "a declined checkout records nothing")
        for t, rid in ((t1, "B-4"), (t2, "B-5")):
            res = t.ok("checkout", "--card", E, "--basket", "-", stdin=self.basket_json(rid))
            self.assertEqual(res["earned"], 0, "%s: a blocked card earns nothing: %r" % (t.id, res))
            self.assertEqual(res["redeemed"], 0)
        # Another card on the same terminal still earns.
        self.assertGreater(t1.ok("checkout", "--card", D, "--basket", "-",
                                 stdin=self.basket_json("B-6"))["earned"], 0)
        for t in (t1, t2):
            t.sync()
        bal = c.balance(E)
        self.assertEqual((bal["balance"], bal["blocked"]), (earned, True), str(bal))
        self.assertEqual(t1.balance(E)["balance"], earned)
        srv.stop()

    @staticmethod
    def basket_json(receipt_id):
        return json.dumps(basket(receipt_id, [line("COF-01", "coffee", 2, 350),
                                              line("BEAN-1K", "beans", 2, 1890)]))


class TargetingTest(SyncCase):
    """Specification 2 at the till: a tier's member price and a campaign for
    one segment, which the back office gives and takes; a refund recomputes
    the receipt with the segments it was sold with."""

    def test_member_price_and_segments(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["tiers"][0]["discount_pct"] = 10
        v8["campaigns"] = [{"id": "vip-bonus", "kind": "spend_bonus", "min_spend": 1500, "points": 25,
                            "segments": ["vip"]}]
        self.assertEqual(c.publish(self.write_json(v8, "v8.json"))["version"], 8)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        self.assertEqual(t1.sync()["program_version"], 8)
        t1.enroll(A)
        t1.sync()

        res = c.ok("segment", "--card", A, "--add", "vip")
        self.assertEqual((res["card"], res["segments"]), (mask(A), ["vip"]), str(res))
        self.assertEqual(c.ok("segment", "--card", A, "--add", "vip")["segments"], ["vip"], "twice is once")
        for bad in (("--card", A), ("--card", A, "--add", "x", "--remove", "y"), ("--card", A, "--add", ""),
                    ("--card", A, "--add", "two\nlines"), ("--card", A, "--add", "n" * 65)):
            c.fails(2, None, "segment", *bad)
        self.assertEqual(c.balance(A)["segments"], ["vip"])
        t1.sync()
        self.assertEqual(t1.balance(A)["segments"], ["vip"])

        # 2 × 18.90 less 10 %: 34.02 eligible, base 34, and the segment's 25.
        beans = [line("BEAN-1K", "beans", 2, 1890)]
        res = t1.checkout(A, basket("V-1", beans))
        self.assertEqual(res["member_discount"], 378, str(res))
        self.assertEqual(res["eligible_spend"], 3402)
        self.assertEqual(dict((p["rule"], p["points"]) for p in res["breakdown"]), {"base": 34, "vip-bonus": 25})
        # A card the terminal never saw pays the member price, in no segment.
        res = t1.checkout(B, basket("V-2", beans))
        self.assertEqual((res["member_discount"], res["earned"]), (378, 34), str(res))
        self.assertEqual(t1.balance(B)["segments"], [])

        c.ok("segment", "--card", A, "--remove", "vip")
        t1.sync()
        self.assertEqual(t1.balance(A)["segments"], [])
        self.assertEqual(t1.checkout(A, basket("V-3", beans))["earned"], 34)
        # One unit back from V-1: 1701 left, still past 1500, and the receipt
        # was sold to a vip: the bonus stays, only base goes down (34 - 17).
        res = t1.refund("V-1", "BEAN-1K=1")
        self.assertEqual(res["points_reversed"], 17, str(res))
        t1.sync()
        self.assertEqual(c.balance(A)["balance"], t1.balance(A)["balance"])
        self.assertEqual(c.balance(A)["balance"], 59 - 17 + 34)
        srv.stop()


class DonationTest(SyncCase):
    """Donations given offline at two terminals of two stores reach the
    centre once each: the member's balance, and the report's points per
    charity with their money value (points × point_value)."""

    def test_donations_at_two_stores_reach_the_report(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["redeem"]["point_value"] = 2
        v8["charities"] = [{"id": "red-cross", "name": "Red Cross"}, {"id": "food-bank", "name": "Food Bank"}]
        c.publish(self.write_json(v8, "v8.json"))
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        earned = t1.checkout(A, basket("D-1", [line("BEAN-1K", "beans", 10, 1890)]))["earned"]
        t1.sync()
        t2.sync()
        self.assertEqual(t2.balance(A)["balance"], earned)
        # Offline at both stores (neither syncs).
        res = t1.ok("donate", "--card", A, "--charity", "red-cross", "--points", "100")
        self.assertEqual(res, {"card": mask(A), "charity": "red-cross", "points": 100, "balance": earned - 100})
        t2.ok("donate", "--card", A, "--charity", "food-bank", "--points", "30")
        t2.ok("donate", "--card", A, "--charity", "red-cross", "--points", "20")
        for t in (t1, t2):
            t.sync()
            t.sync()  # a second sync moves nothing again
        self.assertEqual(c.balance(A)["balance"], earned - 150)
        t1.sync()
        self.assertEqual(t1.balance(A)["balance"], earned - 150)
        rep = c.report()
        self.assertEqual(rep["donations"], [{"charity": "food-bank", "points": 30, "value": 60},
                                            {"charity": "red-cross", "points": 120, "value": 240}], str(rep))
        self.assertEqual(rep["points_donated"], 150)
        self.assertEqual(rep["points_outstanding"], rep["points_issued"] - rep["points_redeemed"] -
                         rep["points_expired"] - 150)
        stores = {s["store"]: s["points_donated"] for s in rep["stores"]}
        self.assertEqual(stores, {"S1": 100, "S2": 50})
        for t in (t1, t2):
            t.verify()
        srv.stop()


class StampTest(SyncCase):
    """Stamp cards across terminals: stamps earned at one till are spent at
    another after a sync; a reward taken offline at two terminals drives the
    centre's count below zero, the next stamps pay that back, a refund gives
    a reward's stamps back, and every terminal ends on the centre's count."""

    def stamp_checkout(self, t, card, doc):
        return t.ok("checkout", "--card", card, "--basket", "-", "--stamp-card", "coffee-card",
                    stdin=json.dumps(doc))

    def test_stamps_offline_at_two_terminals_go_below_zero_and_are_paid_back(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["stamp_cards"] = [{"id": "coffee-card", "sku": "COF-01", "stamps": 3, "reward_sku": "COF-01"}]
        c.publish(self.write_json(v8, "v8.json"))
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        coffee = lambda rid, qty: basket(rid, [line("COF-01", "coffee", qty, 350)])  # noqa: E731
        self.assertEqual(t1.checkout(A, coffee("C-1", 4))["stamps"],
                         [{"id": "coffee-card", "earned": 4, "used": 0, "balance": 4}])
        t1.sync()
        self.assertEqual(c.balance(A)["stamps"], {"coffee-card": 4})
        t2.sync()
        self.assertEqual(t2.balance(A)["stamps"], {"coffee-card": 4})
        # Offline at both: each till sees 4 and gives the reward.
        r1 = self.stamp_checkout(t1, A, coffee("C-2", 1))
        r2 = self.stamp_checkout(t2, A, coffee("C-3", 1))
        for r in (r1, r2):
            self.assertEqual(r["stamps"], [{"id": "coffee-card", "earned": 0, "used": 3, "balance": 1}])
        for t in (t1, t2):
            t.sync()
            t.sync()  # a retried sync moves nothing twice
        self.assertEqual(c.balance(A)["stamps"], {"coffee-card": -2})
        t1.sync()
        self.assertEqual(t1.balance(A)["stamps"], {"coffee-card": -2})
        fails = t1.run("checkout", "--card", A, "--basket", "-", "--stamp-card", "coffee-card",
                       stdin=json.dumps(coffee("C-4", 1)))
        self.check_error(fails, 3, "insufficient_stamps")
        # The next stamps pay the debt back first.
        self.assertEqual(t1.checkout(A, coffee("C-5", 3))["stamps"][0]["balance"], 1)
        # A refund of T2's reward receipt gives its 3 stamps back.
        t2.refund("C-3")
        for t in (t1, t2, t1):
            t.sync()
        self.assertEqual(c.balance(A)["stamps"], {"coffee-card": 4})
        for t in (t1, t2):
            self.assertEqual(t.balance(A)["stamps"], {"coffee-card": 4})
            t.verify()
        # Every stamp accounted for in the centre's lots and debts.
        lots = c.query("SELECT sum(stamps), sum(remaining) FROM stamp_lots")
        self.assertEqual(lots, [(4 + 3 + 3, 4)])
        self.assertEqual(c.query("SELECT coalesce(sum(debt), 0) FROM stamp_debts"), [(0,)])
        # The stamps spent twice offline were flagged, once.
        self.assertEqual([(f["card"], f["rule"]) for f in c.ok("fraud")["flags"]], [(mask(A), "negative_balance")])
        srv.stop()


class MembershipTest(SyncCase):
    """A membership bought at one store runs at every store after a sync; a
    blocked card cannot buy one; a refund at the store that sold it shortens
    it at the centre and, from their next sync, at every terminal."""

    def test_bought_at_one_store_runs_at_the_other(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["memberships"] = [{"id": "plus", "sku": "MEM-PLUS", "days": 365, "multiplier_pct": 200}]
        c.publish(self.write_json(v8, "v8.json"))
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        plus = line("MEM-PLUS", "membership", 1, 4900)
        day = at(30)[:10]
        bought = t1.checkout(A, basket("M-1", [plus, line("BEAN-1K", "beans", 1, 1890)]))
        until = bought["membership"]["until"]
        self.assertEqual(bought["membership"]["id"], "plus")
        self.assertGreater(until, day)
        t1.sync()
        self.assertEqual(c.balance(A)["membership"], {"id": "plus", "until": until})
        t2.sync()
        self.assertEqual(t2.balance(A)["membership"], {"id": "plus", "until": until})
        res = t2.checkout(A, basket("N-1", [line("BEAN-1K", "beans", 1, 1890)]))
        self.assertIn("membership:plus", {p["rule"] for p in res["breakdown"]}, str(res))
        # Bought again at T2 while it runs: 365 days more, from its end.
        again = t2.checkout(A, basket("N-2", [plus]))["membership"]["until"]
        self.assertGreater(again, until)
        t2.sync()
        self.assertEqual(c.balance(A)["membership"]["until"], again)
        # T1's refund of its unit takes 365 days off at the centre.
        t1.refund("M-1")
        t1.sync()
        self.assertEqual(c.balance(A)["membership"]["until"], until)
        t2.sync()
        self.assertEqual(t2.balance(A)["membership"]["until"], until)
        # A card blocked at the centre cannot buy one at the till.
        c.ok("block", "--card", A)
        t2.sync()
        r = t2.run("checkout", "--card", A, "--basket", "-", stdin=json.dumps(basket("N-3", [plus])))
        self.check_error(r, 3, "blocked_card")
        for t in (t1, t2):
            t.sync()
            t.verify()
        srv.stop()


class ReferralTest(SyncCase):
    """Referrals decided by the centre (program.md v2, "Referral"): a card
    enrolled at one store with a referrer who shops at another; the first
    receipt of S >= min_spend in the window pays both bonuses; a refund
    below min_spend takes them back and the next qualifying receipt pays
    them; a self-referral, a known card and the referrer's limit are refused
    with their reasons; nothing paid twice on retried syncs."""

    def test_referral_across_stores(self):
        # The window counts local days from the enrolment's: every receipt
        # and the tills' enrolments fall on the programs' today at noon UTC
        # (13:00 at the Budapest tills), whatever the hour the test runs.
        noon = program_clock.now().replace(hour=12, minute=0, second=0, microsecond=0)
        env = dict(os.environ, **{program_clock.ENV: str(int(noon.timestamp() - time.time()))})

        def when(minutes):
            return program_clock.rfc3339(noon + datetime.timedelta(minutes=minutes))

        def basket(rid, lines):
            return {"receipt_id": rid, "at": when(len(rid) + int(rid[2:])), "lines": lines}

        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8, "pending_days": 0})
        v8["referral"] = {"referrer_points": 200, "referee_points": 100, "min_spend": 2000,
                          "window_days": 30, "max_per_referrer": 2}
        c.publish(self.write_json(v8, "v8.json"))
        c.ok("enroll", "--card", A)
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        res = t2.ok("enroll", "--card", B, "--referrer", A, env=env)
        self.assertEqual(res["enrolled"], True)
        small = t2.checkout(B, basket("B-1", [line("BEAN-1K", "beans", 1, 1000)]))  # S 1000 < 2000
        big = t2.checkout(B, basket("B-2", [line("BEAN-1K", "beans", 2, 1500)]))    # S 3000
        for _ in range(2):
            t2.sync()  # retried: paid once
        b = c.balance(B)
        self.assertEqual(b["referral"]["referrer"], mask(A))
        self.assertEqual(b["referral"]["status"], "rewarded", str(b))
        self.assertEqual(b["balance"], small["earned"] + big["earned"] + 100)
        self.assertEqual(c.balance(A)["balance"], 200)
        self.assertIsNone(c.balance(A)["referral"])
        t1.sync()
        self.assertEqual(t1.balance(A)["balance"], 200)  # the referrer's bonus reached the other store
        # The qualifying receipt refunded below min_spend: both bonuses back.
        back = t2.refund("B-2", "BEAN-1K=1")
        t2.sync()
        b = c.balance(B)
        self.assertEqual(b["referral"]["status"], "pending", str(b))
        self.assertEqual(b["balance"], small["earned"] + big["earned"] - back["points_reversed"])
        self.assertEqual(c.balance(A)["balance"], 0)
        # The next qualifying receipt earns them instead.
        again = t2.checkout(B, basket("B-3", [line("BEAN-1K", "beans", 3, 1000)]))
        t2.sync()
        b = c.balance(B)
        self.assertEqual(b["referral"]["status"], "rewarded", str(b))
        self.assertIn("B-3", b["referral"]["reason"])
        self.assertEqual(c.balance(A)["balance"], 200)
        # Refused, each with its reason.
        t1.enroll(D)
        t1.ok("enroll", "--card", D, "--referrer", A, env=env)    # D was known already
        t1.ok("enroll", "--card", E, "--referrer", E, env=env)    # itself
        t1.ok("enroll", "--card", F, "--referrer", C, env=env)    # C is no member
        t1.sync()
        reasons = {card: c.balance(card)["referral"] for card in (D, E, F)}
        for card, words in ((D, "known"), (E, "itself"), (F, "not a known member")):
            self.assertEqual(reasons[card]["status"], "rejected", str(reasons))
            self.assertIn(words, reasons[card]["reason"])
        self.assertFalse(c.balance(C)["known"])  # named as a referrer only: still no member
        # At the centre: referred once more (its 2nd), then the limit.
        g, h = luhn_complete("400000000000000"), luhn_complete("400000000000001")
        self.assertEqual(c.balance(g)["known"], False)
        c.ok("enroll", "--card", g, "--referrer", A)
        t1.sync()
        t1.checkout(g, basket("G-1", [line("BEAN-1K", "beans", 2, 1500)]))
        t1.sync()
        self.assertEqual(c.balance(g)["referral"]["status"], "rewarded")
        self.assertEqual(c.balance(A)["balance"], 400)
        c.ok("enroll", "--card", h, "--referrer", A)
        self.assertEqual(c.balance(h)["referral"]["status"], "rejected")
        self.assertIn("rewarded referrals", c.balance(h)["referral"]["reason"])
        # The window's edge: window_days (30) after the enrolment is outside,
        # the day before it the last day in.
        k = luhn_complete("400000000000002")
        t1.ok("enroll", "--card", k, "--referrer", B, env=env)
        late = {"receipt_id": "K-1", "lines": [line("BEAN-1K", "beans", 2, 1500)],
                "at": program_clock.rfc3339(noon + datetime.timedelta(days=30))}
        t1.checkout(k, late)
        t1.sync()
        self.assertEqual(c.balance(k)["referral"]["status"], "pending")
        last = dict(late, receipt_id="K-2", at=program_clock.rfc3339(noon + datetime.timedelta(days=29)))
        t1.checkout(k, last)
        t1.sync()
        self.assertEqual(c.balance(k)["referral"]["status"], "rewarded")
        self.assertIn("K-2", c.balance(k)["referral"]["reason"])
        # Every point the members hold was issued: the report counts the bonuses.
        rep = c.report()
        held = sum(c.balance(x)["balance"] for x in (A, B, D, E, F, g, h, k))
        self.assertEqual(rep["points_outstanding"], held, str(rep))
        for t in (t1, t2):
            t.verify()
        srv.stop()


class SettlementTest(SyncCase):
    """Coalition partners (program.md v2): points issued and redeemed at a
    partner's stores, net of refunds, settled at its rates for a range of
    local dates; the stores of no partner are the owner's."""

    def test_settlement_across_partners(self):
        noon = program_clock.now().replace(hour=12, minute=0, second=0, microsecond=0)
        today = noon.date()

        def basket(rid, lines, minutes=0):
            return {"receipt_id": rid, "lines": lines,
                    "at": program_clock.rfc3339(noon + datetime.timedelta(minutes=minutes))}

        c = self.new_central(terminals=("T1", "T2", "T3"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8, "pending_days": 0})
        v8["partners"] = [{"id": "bakery-co", "name": "Bakery & Co", "stores": ["S2", "S3"],
                           "issue_cost": 1, "redeem_credit": 2}]
        v8["referral"] = {"referrer_points": 50, "referee_points": 50, "window_days": 30}
        c.publish(self.write_json(v8, "v8.json"))
        c.ok("enroll", "--card", A)
        t1, t2, t3 = (self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2"),
                      self.new_terminal("T3", "S3"))
        for t in (t1, t2, t3):
            t.init(c, srv.port)
            t.sync()
        owner = t1.checkout(A, basket("O-1", [line("BEAN-1K", "beans", 10, 1890)]))
        b1 = t2.checkout(A, basket("P-1", [line("BEAN-1K", "beans", 5, 1890)], 5))
        for t in (t1, t2):
            t.sync()
        t3.sync()
        spent = t3.checkout(A, basket("P-2", [line("BEAN-1K", "beans", 4, 1890)], 10), redeem=200)
        back = t2.refund("P-1", "BEAN-1K=2")
        # A referral's bonus is the centre's, no partner's issue.
        # (enrolled at the receipts' noon: the referral's window counts days)
        at_noon = dict(os.environ, **{program_clock.ENV: str(int(noon.timestamp() - time.time()))})
        t3.ok("enroll", "--card", B, "--referrer", A, env=at_noon)
        friend = t3.checkout(B, basket("P-3", [line("BEAN-1K", "beans", 1, 1890)], 15))
        for t in (t1, t2, t3):
            t.sync()
        self.assertEqual(c.balance(B)["referral"]["status"], "rewarded")
        day = today.isoformat()
        after = (today + datetime.timedelta(days=1)).isoformat()
        res = c.ok("settlement", "--from", day, "--until", after)
        bakery_issued = b1["earned"] - back["points_reversed"] + spent["earned"] + friend["earned"]
        bakery_redeemed = spent["redeemed"]
        self.assertEqual(res, {"from": day, "until": after, "partners": [
            {"partner": "bakery-co", "issued": bakery_issued, "redeemed": bakery_redeemed,
             "owes": bakery_issued, "credit": 2 * bakery_redeemed, "net": 2 * bakery_redeemed - bakery_issued},
            {"partner": "owner", "issued": owner["earned"], "redeemed": 0, "owes": 0, "credit": 0, "net": 0}]})
        # A range without those days settles nothing.
        before = (today - datetime.timedelta(days=3)).isoformat()
        empty = c.ok("settlement", "--from", before, "--until", day)
        self.assertEqual([p["issued"] for p in empty["partners"]], [0, 0])
        c.fails(2, "bad_argument", "settlement", "--from", after, "--until", day)
        c.fails(2, "bad_argument", "settlement", "--from", day)
        c.fails(2, "bad_argument", "settlement", "--from", "2026-02-30", "--until", after)
        srv.stop()


class ReportTest(SyncCase):
    """The back office's KPIs (cli.md, "The back office"): `report` over
    local dates [from, until) and one store, every figure computed here from
    what the tills answered; the same sums on both stores."""
    DATED = True  # local dates: tests/run-dates.sh runs it on other days

    def test_kpis_over_dates_and_stores(self):
        noon = program_clock.now().replace(hour=12, minute=0, second=0, microsecond=0)
        day = lambda k: (noon + datetime.timedelta(days=k)).date().isoformat()  # noqa: E731

        def basket(rid, k, lines):
            return {"receipt_id": rid, "lines": lines,
                    "at": program_clock.rfc3339(noon + datetime.timedelta(days=k))}

        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        for card in (A, B):
            c.ok("enroll", "--card", card)
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        pastry = lambda n: line("CRS-02", "pastry", n, 250)  # noqa: E731 (pastry-x3 every day)
        beans = lambda n: line("BEAN-1K", "beans", n, 1890)  # noqa: E731 (big-basket from 30.00)
        sales = {
            "K-1": (t1, A, -2, t1.checkout(A, basket("K-1", -2, [pastry(2)]))),
            "K-2": (t1, A, -1, t1.checkout(A, basket("K-2", -1, [beans(2), pastry(1)]))),
            "K-3": (t2, B, -1, t2.checkout(B, basket("K-3", -1, [beans(1)]))),
        }
        for t in (t1, t2):
            t.sync()

        def expected(keep):
            chosen = {rid: x for rid, x in sales.items() if keep(x)}
            issued = sum(x[3]["earned"] for x in chosen.values())
            redeemed = sum(x[3]["redeemed"] for x in chosen.values())
            campaigns = {}
            for x in chosen.values():
                for part in x[3]["breakdown"]:
                    if part["rule"] != "base" and not part["rule"].startswith("tier:") and part["points"]:
                        got = campaigns.setdefault(part["rule"], {"id": part["rule"], "points": 0, "spend": 0})
                        got["points"] += part["points"]
                        got["spend"] += x[3]["eligible_spend"]
            cards = [x[1] for x in chosen.values()]
            active = len(set(cards))
            repeat = len([k for k in set(cards) if cards.count(k) >= 2])
            spend = sum(x[3]["eligible_spend"] for x in chosen.values())
            return {"points_issued": issued, "points_redeemed": redeemed,
                    "points_outstanding": issued - redeemed, "liability": issued - redeemed,
                    "active_members": active, "repeat_members": repeat, "receipts": len(chosen),
                    "spend": spend, "average_basket": spend // len(chosen) if chosen else 0,
                    "redemption_rate_bp": redeemed * 10000 // issued if issued else 0,
                    "repeat_rate_bp": repeat * 10000 // active if active else 0,
                    "campaigns": sorted(campaigns.values(), key=lambda x: x["id"])}

        def check(res, keep):
            want = expected(keep)
            self.assertEqual({k: res[k] for k in want}, want)
            self.assertEqual(res["members"], 2)
            self.assertEqual(res["breakage_bp"], 0)

        check(c.report(), lambda x: True)
        res = c.ok("report", "--from", day(-1), "--until", day(0))
        check(res, lambda x: x[2] == -1)
        self.assertEqual(res["new_members"], 1)   # B; A's first receipt was the day before
        self.assertEqual([d["date"] for d in res["days"]], [day(-1)])
        self.assertEqual(res["days"][0]["receipts"], 2)
        self.assertEqual(res["days"][0]["members"], 2)
        res = c.ok("report", "--store", "S1")
        check(res, lambda x: x[0] is t1)
        self.assertEqual([s["store"] for s in res["stores"]], ["S1"])
        check(c.ok("report", "--from", day(-2), "--until", day(-1), "--store", "S2"), lambda x: False)
        # The human report prints the same figures.
        text = c.run("report", "--from", day(-1), "--until", day(0), json_out=False)
        self.assertEqual(text.rc, 0, str(text))
        self.assertIn("Active members", text.out)
        c.fails(2, "bad_argument", "report", "--from", day(0), "--until", day(-1))
        c.fails(2, "bad_argument", "report", "--from", "2026-02-30")
        c.fails(2, "bad_argument", "report", "--store", "")
        c.fails(2, "bad_argument", "report", "--region", "EU")
        srv.stop()


class FraudTest(SyncCase):
    """Fraud signals (cli.md v2, `fraud`) through both programs: points spent
    offline at two tills drive a balance below zero, three purchases
    refunded in full make a loop; each flagged once with the card masked,
    the rule blocked by the centre's configuration reaching the tills; a
    clean history flags nothing; a bad configuration is named."""

    def test_flags_from_the_tills_and_a_block_by_configuration(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        t1.enroll(B)
        beans = lambda rid, n: basket(rid, [line("BEAN-1K", "beans", n, 1890)])  # noqa: E731
        earned = t1.checkout(A, beans("F-1", 16))["earned"]
        t1.checkout(B, beans("F-2", 2))
        for t in (t1, t2):
            t.sync()
        self.assertEqual(c.ok("fraud"), {"flags": []})
        # Offline at both tills, each spends most of A's points.
        spend = earned - 50
        t1.checkout(A, beans("F-3", 1), redeem=spend)
        t2.checkout(A, beans("F-4", 1), redeem=spend)
        # B buys and refunds in full, three times.
        for k in range(3):
            t1.checkout(B, beans("L-%d" % k, 1))
            t1.refund("L-%d" % k)
        for t in (t1, t2):
            t.sync()
        self.assertLess(c.balance(A)["balance"], 0)
        flags = c.ok("fraud")["flags"]
        self.assertEqual(sorted((f["card"], f["rule"]) for f in flags),
                         sorted([(mask(A), "negative_balance"), (mask(B), "refund_loop")]))
        for f in flags:
            self.assertRegex(f["first_seen"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertTrue(f["detail"])
        self.assertNotIn(A, json.dumps(flags))
        self.assertEqual(c.ok("fraud"), {"flags": flags})  # the same, first seen as before
        self.assertFalse(c.balance(A)["blocked"])
        # The configuration blocks the loop's card; the tills learn it.
        with open(os.path.join(c.data, "central.json"), "w") as f:
            json.dump({"fraud": {"refund_loop": {"block": True}}}, f)
        self.assertEqual(c.ok("fraud"), {"flags": flags})
        self.assertTrue(c.balance(B)["blocked"])
        self.assertFalse(c.balance(A)["blocked"])
        t2.sync()
        self.assertTrue(t2.balance(B)["blocked"])
        text = c.run("fraud", json_out=False)
        self.assertEqual(text.rc, 0, str(text))
        self.assertIn("refund_loop", text.out)
        # A configuration that is not one is named, and changes nothing.
        with open(os.path.join(c.data, "central.json"), "w") as f:
            f.write('{"fraud": {"refund_loop": {"days": 0}}}')
        r = c.fails(2, "bad_argument", "fraud")
        self.assertIn("refund_loop.days", r.out + r.err)
        c.fails(2, "bad_argument", "fraud", "--card", A)
        srv.stop()


class StatementTest(SyncCase):
    """A member's data export (cli.md, "The back office": `statement`): the
    balance object, the history whose points add up to the balance, the
    lots with points left and their expiry; a card never seen answers
    known: false with nothing in it."""

    def test_statement_of_a_member(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["charities"] = [{"id": "red-cross", "name": "Red Cross"}]
        c.publish(self.write_json(v8, "v8.json"))
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        first = t1.checkout(A, basket("H-1", [line("BEAN-1K", "beans", 10, 1890)]))
        t2.checkout(A, basket("H-2", [line("BEAN-1K", "beans", 2, 1890)]))
        back = t2.refund("H-2", "BEAN-1K=1")
        t1.ok("donate", "--card", A, "--charity", "red-cross", "--points", "40")
        for t in (t1, t2):
            t.sync()
        st = c.ok("statement", "--card", A)
        bal = c.balance(A)
        self.assertEqual({k: st[k] for k in bal}, bal)
        self.assertEqual(list(st)[-2:], ["history", "lots"])
        kinds = [(h["terminal"], h["receipt"], h["kind"]) for h in st["history"]]
        self.assertIn(("T1", "H-1", "checkout"), kinds)
        self.assertIn(("T2", "H-2", "refund"), kinds)
        self.assertIn(("T1", "red-cross", "donation"), kinds)
        self.assertEqual(sum(h["points"] for h in st["history"]), bal["balance"])
        refund = [h for h in st["history"] if h["kind"] == "refund"][0]
        self.assertEqual(refund["points"], -back["points_reversed"])
        self.assertEqual(sum(l["points"] for l in st["lots"]), bal["balance"])
        for l in st["lots"]:
            self.assertRegex(l["earned_at"], r"^\d{4}-\d\d-\d\dT")
            self.assertRegex(l["expires"], r"^\d{4}-\d\d-\d\d$")  # the example's points expire
        self.assertEqual(st["history"][0]["points"], first["earned"])
        self.assertNotIn(A, json.dumps(st))
        unknown = c.ok("statement", "--card", B)
        self.assertEqual((unknown["known"], unknown["history"], unknown["lots"]), (False, [], []))
        text = c.run("statement", "--card", A, json_out=False)
        self.assertEqual(text.rc, 0, str(text))
        self.assertIn("H-1", text.out)
        c.fails(2, "bad_argument", "statement")
        c.fails(2, "bad_card", "statement", "--card", "1234")
        srv.stop()


class AdminTest(SyncCase):
    """The back office's accounts (cli.md, "The back office": `admin`): the
    password read from standard input and kept only as a salted hash, the
    otpauth:// URI whose secret gives RFC 6238 codes, each change in the
    audit log; bad input named, nothing half-done."""

    def admin_add(self, c, user, role, password):
        cmd = [Config.central] + c.store_args() + ["admin", "add", "--user", user, "--role", role, "--json"]
        return self.run_cmd(cmd, stdin=password)

    def test_add_and_remove_accounts(self):
        c = self.new_central(terminals=("T1",), publish=False)
        r = self.admin_add(c, "anna", "manager", "correct horse battery\n")
        self.assertEqual(r.rc, 0, str(r))
        res = self.one_json(r)
        self.assertEqual(list(res), ["user", "role", "totp_uri"])
        self.assertEqual((res["user"], res["role"]), ("anna", "manager"))
        uri = urllib.parse.urlparse(res["totp_uri"])
        self.assertEqual((uri.scheme, uri.netloc, uri.path), ("otpauth", "totp", "/loyalty:anna"))
        q = dict(urllib.parse.parse_qsl(uri.query))
        self.assertEqual((q["algorithm"], q["digits"], q["period"]), ("SHA1", "6", "30"))
        secret = base64.b32decode(q["secret"] + "=" * (-len(q["secret"]) % 8))
        self.assertEqual(len(secret), 20)
        # The secret drives RFC 6238 codes (checked against its vectors in
        # tests/central/test_admin.cpp; here, that it is the secret stored).
        stored = c.query("SELECT totp_secret, password_hash, role FROM admins WHERE name = ?", ("anna",))
        self.assertEqual(stored[0][0], q["secret"])
        self.assertTrue(stored[0][1].startswith("pbkdf2-sha256$600000$"), stored)
        self.assertEqual(stored[0][2], "manager")
        for root, _, files in os.walk(c.data):  # the database and its WAL, on SQLite
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(b"correct horse battery", f.read(), name)
        viewer = self.admin_add(c, "bela", "viewer", "another long one")
        self.assertEqual(viewer.rc, 0, str(viewer))
        # Bad input, each named; nothing added.
        for user, role, password, why in (("anna", "viewer", "long enough pass", "exists already"),
                                          ("carl", "root", "long enough pass", "--role"),
                                          ("carl", "viewer", "short\n", "password"),
                                          ("carl x", "viewer", "long enough pass", "--user")):
            r = self.admin_add(c, user, role, password)
            self.check_error(r, 2, "bad_argument")
            self.assertIn(why, r.err)
        self.assertEqual(c.query("SELECT count(*) FROM admins"), [(2,)])
        c.ok("admin", "remove", "--user", "bela")
        c.fails(2, "bad_argument", "admin", "remove", "--user", "bela")
        c.fails(2, "bad_argument", "admin", "add", "--user", "dora")
        c.fails(2, "bad_argument", "admin", "rename", "--user", "anna")
        self.assertEqual(c.query("SELECT action, detail FROM audit ORDER BY id"),
                         [("admin add", "user anna as manager"), ("admin add", "user bela as viewer"),
                          ("admin remove", "user bela")])


def totp(secret_b32, at):
    """RFC 6238 (SHA-1, 6 digits, 30 s), written here apart from the centre's."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    o = mac[19] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)


class DashboardCase(SyncCase):
    """What the dashboard's tests share: HTTPS calls, accounts, sign-in."""

    def call(self, port, method, path, body=None, cookie=None, csrf=None):
        ctx = ssl.create_default_context(cafile=self.central.pki("ca.pem"))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("https://localhost:%d%s" % (port, path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if cookie:
            req.add_header("Cookie", cookie)
        if csrf:
            req.add_header("X-CSRF-Token", csrf)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def add_admin(self, user, role, password):
        cmd = [Config.central] + self.central.store_args() + ["admin", "add", "--user", user, "--role", role,
                                                                "--json"]
        r = self.run_cmd(cmd, stdin=password + "\n")
        self.assertEqual(r.rc, 0, str(r))
        uri = urllib.parse.urlparse(self.one_json(r)["totp_uri"])
        return dict(urllib.parse.parse_qsl(uri.query))["secret"]

    def sign_in(self, port, user, password, secret, at=None):
        code = totp(secret, at if at is not None else program_clock.now().timestamp())
        return self.call(port, "POST", "/api/login", {"user": user, "password": password, "totp": code})

    def session(self, port, user, password, secret):
        """A signed-in user's (cookie, CSRF token)."""
        status, headers, body = self.sign_in(port, user, password, secret)
        self.assertEqual(status, 200, body)
        return headers["Set-Cookie"].split(";")[0], json.loads(body)["csrf"]

    def serve_with_dashboard(self, c):
        srv = self.new_server(c, start=False)
        admin_port = free_port("127.0.0.1")
        srv.extra_args = ["--admin-listen", "127.0.0.1:%d" % admin_port]
        srv.start()
        deadline = time.monotonic() + 20 * Config.slow
        while not port_open(admin_port, "127.0.0.1") and time.monotonic() < deadline:
            time.sleep(0.02)
        return srv, admin_port


class DashboardApiTest(DashboardCase):
    """The dashboard's JSON API (cli.md, "The back office") over HTTPS on
    serve's --admin-listen: sign-in with password and TOTP (any failure the
    same 401, a code spent once, bounded attempts), the session cookie's
    flags, every call but login 401 without it; the report and a member as
    the command line gives them; a block refused without the CSRF header
    and for a viewer, done for a manager, audited and reaching a till."""

    def test_sign_in_report_member_and_block(self):
        c = self.central = self.new_central(terminals=("T1",))
        srv, admin_port = self.serve_with_dashboard(c)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        t.checkout(A, basket("W-1", [line("BEAN-1K", "beans", 3, 1890)]))
        t.sync()
        anna = self.add_admin("anna", "manager", "anna's long password")
        bela = self.add_admin("bela", "viewer", "bela's long password")
        carl = self.add_admin("carl", "viewer", "carl's long password")

        # Without a session: 401 for every call but login.
        for path in ("/api/report", "/api/member?card=" + A, "/api/fraud", "/api/audit"):
            self.assertEqual(self.call(admin_port, "GET", path)[0], 401, path)
        self.assertEqual(self.call(admin_port, "POST", "/api/block", {"card": A})[0], 401)
        # Any failure is the same 401.
        now = program_clock.now().timestamp()
        wrong = [self.call(admin_port, "POST", "/api/login", b) for b in (
            {"user": "anna", "password": "anna's long password", "totp": "%06d" % ((int(totp(anna, now)) + 1) % 10 ** 6)},
            {"user": "anna", "password": "not hers at all", "totp": totp(anna, now)},
            {"user": "nobody", "password": "anna's long password", "totp": totp(anna, now)},
            {"user": "anna"})]
        for status, _, body in wrong:
            self.assertEqual((status, body), (401, wrong[0][2]))
        code = totp(anna, program_clock.now().timestamp())
        signed = {"user": "anna", "password": "anna's long password", "totp": code}
        status, headers, body = self.call(admin_port, "POST", "/api/login", signed)
        self.assertEqual(status, 200, body)
        csrf = json.loads(body)["csrf"]
        cookie_header = headers["Set-Cookie"]
        for flag in ("Secure", "HttpOnly", "SameSite=Strict"):
            self.assertIn(flag, cookie_header)
        cookie = cookie_header.split(";")[0]
        # The same code again is spent.
        self.assertEqual(self.call(admin_port, "POST", "/api/login", signed)[0], 401)

        status, _, body = self.call(admin_port, "GET", "/api/report", cookie=cookie)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), c.report())
        status, _, body = self.call(admin_port, "GET", "/api/report?from=2026-13-01", cookie=cookie)
        self.assertEqual(status, 400, body)
        status, _, body = self.call(admin_port, "GET", "/api/member?card=" + A, cookie=cookie)
        self.assertEqual((status, json.loads(body)), (200, c.ok("statement", "--card", A)))
        self.assertEqual(json.loads(self.call(admin_port, "GET", "/api/fraud", cookie=cookie)[2]), c.ok("fraud"))

        # A block: no CSRF header, 403; a viewer, 403; a manager, done.
        self.assertEqual(self.call(admin_port, "POST", "/api/block", {"card": A}, cookie=cookie)[0], 403)
        self.assertEqual(self.call(admin_port, "POST", "/api/block", {"card": A}, cookie=cookie,
                                   csrf="0" * 64)[0], 403)
        viewer = self.session(admin_port, "bela", "bela's long password", bela)
        self.assertEqual(self.call(admin_port, "POST", "/api/block", {"card": A}, cookie=viewer[0],
                                   csrf=viewer[1])[0], 403)
        self.assertFalse(c.balance(A)["blocked"])
        status, _, body = self.call(admin_port, "POST", "/api/block", {"card": A}, cookie=cookie, csrf=csrf)
        self.assertEqual((status, json.loads(body)), (200, {"card": mask(A), "blocked": True}))
        self.assertTrue(c.balance(A)["blocked"])
        t.sync()
        self.assertTrue(t.balance(A)["blocked"])
        audit = json.loads(self.call(admin_port, "GET", "/api/audit", cookie=viewer[0])[2])["entries"]
        self.assertEqual((audit[0]["user"], audit[0]["action"], audit[0]["detail"]), ("anna", "block", "card " + mask(A)))
        self.assertNotIn(A, json.dumps(audit))

        # Segments and a program version, by a manager, validated and audited.
        seg = {"card": A, "segment": "vip", "action": "add"}
        self.assertEqual(self.call(admin_port, "POST", "/api/segment", seg, cookie=viewer[0], csrf=viewer[1])[0], 403)
        status, _, body = self.call(admin_port, "POST", "/api/segment", seg, cookie=cookie, csrf=csrf)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["segments"], ["vip"])
        self.assertEqual(c.balance(A)["segments"], ["vip"])
        self.assertEqual(self.call(admin_port, "POST", "/api/segment", dict(seg, action="toggle"), cookie=cookie,
                                   csrf=csrf)[0], 400)
        v9 = self.load_program()
        v9["version"] = 9
        status, _, body = self.call(admin_port, "POST", "/api/program", {"document": v9}, cookie=cookie, csrf=csrf)
        self.assertEqual((status, json.loads(body)), (200, {"program": v9["program"], "version": 9, "published": True}))
        bad_doc = dict(v9, version=10, earn={"points": -1, "per": 100})
        status, _, body = self.call(admin_port, "POST", "/api/program", {"document": bad_doc}, cookie=cookie,
                                    csrf=csrf)
        self.assertEqual(status, 400, body)
        self.assertIn("earn.points", json.loads(body)["error"]["message"])
        t.sync()
        self.assertEqual(t.status()["program"]["version"], 9)
        actions = [e["action"] for e in json.loads(self.call(admin_port, "GET", "/api/audit", cookie=cookie)[2])["entries"]]
        self.assertEqual(actions[:2], ["program publish", "segment add"])

        # Bounded attempts: five failures, then even the right code waits.
        for _ in range(5):
            self.assertEqual(self.call(admin_port, "POST", "/api/login",
                                       {"user": "carl", "password": "a wrong password", "totp": "000000"})[0], 401)
        self.assertEqual(self.sign_in(admin_port, "carl", "carl's long password", carl)[0], 401)
        # The page and its scripts, from the centre itself.
        status, headers, body = self.call(admin_port, "GET", "/")
        self.assertEqual(status, 200)
        self.assertIn(b"<canvas", body)
        self.assertIn("default-src 'self'", headers["Content-Security-Policy"])
        self.assertEqual(self.call(admin_port, "GET", "/dashboard.js")[0], 200)
        srv.stop()


class DashboardHostileTest(DashboardCase):
    """The dashboard's listener against clients no browser is: malformed
    requests and a body past the bound answered 4xx, connections held
    silent or stalled mid-request dropped within their bounds; a good
    request is answered meanwhile and after."""

    def raw(self, port, data):
        ctx = ssl.create_default_context(cafile=self.central.pki("ca.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as tcp:
            with ctx.wrap_socket(tcp, server_hostname="localhost") as s:
                s.sendall(data)
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    if b"\r\n\r\n" in got:
                        head, _, body = got.partition(b"\r\n\r\n")
                        m = re.search(rb"(?i)content-length: *(\d+)", head)
                        if m and len(body) >= int(m.group(1)):
                            break
                return int(got.split()[1]) if got else None

    def test_malformed_huge_idle_and_slow_clients(self):
        c = self.central = self.new_central(terminals=("T1",))
        srv, port = self.serve_with_dashboard(c)
        self.assertEqual(self.raw(port, b"NOT HTTP AT ALL\r\n\r\n"), 400)
        self.assertEqual(self.raw(port, b"GET /api/report HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 20000 +
                                  b"\r\n\r\n"), 431)
        body = json.dumps({"user": "anna", "password": "x" * 20000, "totp": "000000"}).encode()
        self.assertEqual(self.raw(port, b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                  % len(body) + body), 413)
        self.assertEqual(self.raw(port, b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                                  b"[1,2]"), 401)
        self.assertEqual(self.raw(port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), 404)
        # Twelve clients: silent TCP, and TLS stalled halfway through a request.
        ctx = ssl.create_default_context(cafile=c.pki("ca.pem"))
        held = []
        for k in range(12):
            tcp = socket.create_connection(("127.0.0.1", port), timeout=30)
            if k % 2:
                tls = ctx.wrap_socket(tcp, server_hostname="localhost")
                tls.sendall(b"GET /api/report HTTP/1.1\r\nHost: x\r\n")
                held.append(tls)
            else:
                held.append(tcp)
        self.addCleanup(lambda: [h.close() for h in held])
        t0 = time.monotonic()
        status = self.call(port, "GET", "/api/report")[0]
        waited = time.monotonic() - t0
        self.assertEqual(status, 401)
        print("  a good request answered in %.1f s beside 12 held connections" % waited)
        self.assertLess(waited, 30)
        for h in held:
            h.close()
        self.assertEqual(self.call(port, "GET", "/api/report")[0], 401)
        self.assertTrue(srv.running())
        srv.stop()


class NoCardInClearTest(DashboardCase):
    """cli.md and the issue: card numbers are never stored or logged in
    clear. After a day of everything the programs do with a card (enrol with
    a referrer, checkouts, a refund, a donation, a sync both ways, the
    centre's balance, statement, report and fraud, a dashboard sign-in and
    look-up, a block), every file both programs wrote (the ledgers and the
    centre's database with their WAL and journals, the servers' logs, the
    PostgreSQL cluster's files when the centre is there) is read whole: no
    card number of the day in any of them, as digits."""

    def test_no_file_holds_a_card_number(self):
        c = self.central = self.new_central(terminals=("T1", "T2"))
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["charities"] = [{"id": "red-cross", "name": "Red Cross"}]
        v8["referral"] = {"referrer_points": 10, "referee_points": 10, "window_days": 30}
        c.publish(self.write_json(v8, "v8.json"))
        srv, admin_port = self.serve_with_dashboard(c)
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        t1.enroll(A)
        t1.ok("enroll", "--card", B, "--referrer", A)
        t1.checkout(A, basket("N-1", [line("BEAN-1K", "beans", 10, 1890)]))
        t2.checkout(B, basket("N-2", [line("BEAN-1K", "beans", 2, 1890)]))
        t2.refund("N-2", "BEAN-1K=1")
        for t in (t1, t2):
            t.sync()
        t1.ok("donate", "--card", A, "--charity", "red-cross", "--points", "20")
        for t in (t1, t2, t1):
            t.sync()
        for cmd in (("balance", "--card", A), ("statement", "--card", B), ("report",), ("fraud",)):
            c.ok(*cmd)
        secret = self.add_admin("anna", "manager", "anna's long password")
        cookie, csrf = self.session(admin_port, "anna", "anna's long password", secret)
        self.assertEqual(self.call(admin_port, "GET", "/api/member?card=" + A, cookie=cookie)[0], 200)
        self.assertEqual(self.call(admin_port, "POST", "/api/block", {"card": B}, cookie=cookie, csrf=csrf)[0], 200)
        t2.sync()
        srv.stop()
        # The test's temp dir holds the centre, both terminals, the PKI and
        # the servers' logs.
        roots = [self.tmp] + ([Config.postgres.root] if Config.postgres is not None else [])
        cards = [card.encode() for card in (A, B)]
        read = 0
        for root in roots:
            for where, _, files in os.walk(root):
                for name in files:
                    path = os.path.join(where, name)
                    if not os.path.isfile(path) or os.path.islink(path):
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                    read += 1
                    for card in cards:
                        self.assertNotIn(card, data, "%s holds a card number in clear" % path)
        self.assertGreater(read, 10)
        print("  %d files read, no card number in any" % read)


class DashboardBrowserTest(DashboardCase):
    """The dashboard in a real browser (Debian's Chromium, headless, driven
    by tests/dashboard/browser.cjs through playwright-core): a wrong TOTP
    refused, sign-in with the right one, the KPIs the page shows equal to
    `report --json`, a POST without the CSRF header refused, a card blocked
    from the page reaching a till at its next sync; the screenshot kept in
    the build dir as the test's artefact."""
    BROWSER = True

    def test_sign_in_kpis_and_block_in_chromium(self):
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        self.assertTrue(os.path.exists(chromium), "Debian's chromium is missing: toolchains/install-deps.sh browser")
        self.assertTrue(os.path.isdir(os.path.join(Config.node_modules, "playwright-core")),
                        "playwright-core is missing from %s: toolchains/install-deps.sh browser" % Config.node_modules)
        c = self.central = self.new_central(terminals=("T1",))
        srv, admin_port = self.serve_with_dashboard(c)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        t.checkout(A, basket("B-1", [line("BEAN-1K", "beans", 3, 1890), line("CRS-02", "pastry", 2, 250)]))
        t.sync()
        secret = self.add_admin("anna", "manager", "anna's long password")
        shot = os.path.join(os.path.dirname(Config.node_modules), "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)
        env = dict(os.environ, NODE_PATH=Config.node_modules, CHROMIUM=chromium)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboard", "browser.cjs")
        p = subprocess.run(["node", script, "https://localhost:%d/" % admin_port, "anna", "anna's long password",
                            secret, A, shot], capture_output=True, text=True, timeout=180, env=env)
        self.assertEqual(p.returncode, 0, "browser.cjs failed:\n%s\n%s" % (p.stdout, p.stderr))
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(seen["wrong_totp"], "sign-in refused")
        self.assertTrue(seen["app_hidden_after_wrong"])
        rep = c.report()
        self.assertEqual(seen["kpis"]["Points issued"], str(rep["points_issued"]))
        self.assertEqual(seen["kpis"]["Points outstanding"], str(rep["points_outstanding"]))
        self.assertEqual(seen["kpis"]["Active members"], str(rep["active_members"]))
        self.assertEqual(seen["kpis"]["Liability"], "%.2f" % (rep["liability"] / 100))
        self.assertTrue(seen["chart"], "the days' chart was not drawn (Chart.js from libjs-chart.js)")
        self.assertEqual(seen["csrf_less"], 403)
        self.assertNotIn("BLOCKED", seen["member_before"])
        self.assertIn("BLOCKED", seen["member_after"])
        self.assertIn("block", seen["audit_first"])
        self.assertTrue(c.balance(A)["blocked"])
        t.sync()
        self.assertTrue(t.balance(A)["blocked"])
        self.assertGreater(os.path.getsize(shot), 10000)
        print("  screenshot: %s" % shot)
        srv.stop()


class ChallengeTest(SyncCase):
    """Challenges decided by the centre (program.md v2): visits on distinct
    local days at two stores complete a window and pay its points once, a
    refund that undoes it gives them back, the next visit completes it
    again; a categories challenge counts distinct categories; until is
    exclusive; retried syncs pay nothing twice."""

    @staticmethod
    def noon_and_days():
        """Noon of the programs' today, and the local date k days from it."""
        noon = program_clock.now().replace(hour=12, minute=0, second=0, microsecond=0)
        return noon, lambda k: (noon + datetime.timedelta(days=k)).date().isoformat()

    def one_till(self, challenges):
        """A centre publishing version 8 with `challenges` (no pending days),
        member A enrolled there, terminal T1 of store S1 synced with it."""
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8, "pending_days": 0})
        v8["challenges"] = challenges
        c.publish(self.write_json(v8, "v8.json"))
        c.ok("enroll", "--card", A)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        return c, srv, t, v8

    def test_visits_and_categories(self):
        noon = program_clock.now().replace(hour=12, minute=0, second=0, microsecond=0)
        day = lambda k: (noon + datetime.timedelta(days=k)).date().isoformat()  # noqa: E731

        def basket(rid, k, lines):
            return {"receipt_id": rid, "lines": lines,
                    "at": program_clock.rfc3339(noon + datetime.timedelta(days=k))}

        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8, "pending_days": 0})
        v8["challenges"] = [
            # One window of 7 days: [-6, +1); the day after is outside.
            {"id": "three-visits", "kind": "visits", "count": 3, "points": 100, "min_spend": 500,
             "from": day(-6), "until": day(1), "window_days": 7},
            {"id": "two-kinds", "kind": "categories", "count": 2, "points": 40,
             "from": day(-6), "until": day(1)}]
        c.publish(self.write_json(v8, "v8.json"))
        c.ok("enroll", "--card", A)
        t1, t2 = self.new_terminal("T1", "S1"), self.new_terminal("T2", "S2")
        for t in (t1, t2):
            t.init(c, srv.port)
            t.sync()
        beans = lambda n: line("BEAN-1K", "beans", n, 1890)  # noqa: E731
        earned = 0
        earned += t1.checkout(A, basket("V-1", -5, [beans(1)]))["earned"]
        earned += t1.checkout(A, basket("V-2", -5, [beans(1)]))["earned"]   # the same day: one visit
        earned += t2.checkout(A, basket("V-3", -4, [line("CRS-02", "pastry", 1, 250)]))["earned"]  # S < 500
        self.assertEqual(c.balance(A)["balance"], 0)
        for t in (t1, t2):
            t.sync()
        # Two kinds (beans, pastry): the categories challenge is done; 1 visit.
        self.assertEqual(c.balance(A)["balance"], earned + 40)
        third = t2.checkout(A, basket("V-4", -3, [beans(1)]))
        earned += third["earned"]
        earned += t1.checkout(A, basket("V-5", -2, [beans(1)]))["earned"]   # the 3rd visit
        for t in (t1, t2, t1, t2):
            t.sync()
        self.assertEqual(c.balance(A)["balance"], earned + 40 + 100)
        # V-4 refunded: two visits left, the window's points go back.
        back = t2.refund("V-4")
        t2.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"] + 40)
        # A visit after until (day +1) does not count; one on day 0 does.
        earned += t1.checkout(A, basket("V-6", 1, [beans(1)]))["earned"]
        t1.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"] + 40)
        earned += t1.checkout(A, basket("V-7", 0, [beans(1)]))["earned"]
        t1.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"] + 40 + 100)
        t1.sync()
        self.assertEqual(t1.balance(A)["balance"], c.balance(A)["balance"])
        rep = c.report()
        self.assertEqual(rep["points_outstanding"], c.balance(A)["balance"])
        # The partners' settlement leaves the centre's bonuses out.
        s = c.ok("settlement", "--from", day(-7), "--until", day(2))
        self.assertEqual(s["partners"][-1]["issued"], earned - back["points_reversed"])
        srv.stop()

    def test_spend_in_windows_each_paid_once(self):
        noon, day = self.noon_and_days()
        # Windows of 2 days: [-6, -4), [-4, -2), [-2, 0); day 0 is after until.
        c, srv, t, v8 = self.one_till([{"id": "spend-30", "kind": "spend", "count": 3000, "points": 50,
                                          "from": day(-6), "until": day(0), "window_days": 2}])
        earned = 0
        receipts = {}
        for rid, k, qty in (("W-1", -6, 1), ("W-2", -5, 1), ("W-3", -4, 2), ("W-4", -1, 1), ("W-5", 0, 5)):
            b = {"receipt_id": rid, "lines": [line("BEAN-1K", "beans", qty, 1890)],
                 "at": program_clock.rfc3339(noon + datetime.timedelta(days=k))}
            receipts[rid] = t.checkout(A, b)
            earned += receipts[rid]["earned"]
        t.sync()
        t.sync()
        # 18.90 + 18.90 in the first window, 37.80 in the second: 50 each;
        # 18.90 in the third and day 0's outside: nothing.
        self.assertEqual(c.balance(A)["balance"], earned + 100)
        back = t.refund("W-2")
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"] + 50)
        srv.stop()

    def test_categories_undone_by_a_partial_refund(self):
        """Two categories on one receipt complete the challenge; the pastry
        line refunded leaves one category with spend: undone, its points
        back; the beans line alone refunded later changes nothing more."""
        noon, day = self.noon_and_days()
        c, srv, t, v8 = self.one_till([{"id": "two-kinds", "kind": "categories", "count": 2, "points": 40,
                                          "from": day(-3), "until": day(1)}])
        b = {"receipt_id": "K-1", "at": program_clock.rfc3339(noon - datetime.timedelta(days=1)),
             "lines": [line("BEAN-1K", "beans", 2, 1890), line("CRS-02", "pastry", 1, 250)]}
        earned = t.checkout(A, b)["earned"]
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned + 40)
        back = t.refund("K-1", "CRS-02=1")
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"])
        self.assertEqual(c.query("SELECT status FROM challenge_awards"), [("undone",)])
        again = t.refund("K-1", "BEAN-1K=1")
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"] - again["points_reversed"])
        self.assertEqual(c.report()["points_outstanding"], c.balance(A)["balance"])
        srv.stop()

    def test_undone_after_a_new_program_takes_back_what_it_paid(self):
        """A challenge paid 50 under version 8; version 9 makes it 500. Its
        undoing then takes back the 50 it paid, not what it pays now."""
        noon, day = self.noon_and_days()
        c, srv, t, v8 = self.one_till([{"id": "spend-30", "kind": "spend", "count": 3000, "points": 50,
                                          "from": day(-6), "until": day(1)}])
        earned = 0
        for rid, k in (("U-1", -3), ("U-2", -2)):
            b = {"receipt_id": rid, "lines": [line("BEAN-1K", "beans", 1, 1890)],
                 "at": program_clock.rfc3339(noon + datetime.timedelta(days=k))}
            earned += t.checkout(A, b)["earned"]
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned + 50)
        v9 = dict(v8, version=9)
        v9["challenges"] = [dict(v8["challenges"][0], points=500)]
        c.publish(self.write_json(v9, "v9.json"))
        t.sync()
        back = t.refund("U-2")
        t.sync()
        self.assertEqual(c.balance(A)["balance"], earned - back["points_reversed"])
        self.assertEqual(c.report()["points_outstanding"], earned - back["points_reversed"])
        srv.stop()


class ClockTest(SyncCase):
    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others


    def test_a_terminal_two_hours_ahead_is_flagged(self):
        """Both programs follow LOYALTY_CLOCK_OFFSET_S (what tests/run-dates.sh
        uses): a terminal run two hours ahead of the centre is reported
        'skewed' by those two hours, and the sale it stamped then as from
        the centre's future; the centre's balance counts it all the same."""
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        t1.sync()  # the program, on time
        t1.enroll(A)
        ahead = dict(os.environ, LOYALTY_CLOCK_OFFSET_S=str(program_clock.offset_s() + 7200))
        res = t1.ok("checkout", "--card", A, "--basket", "-",
                    stdin=json.dumps(basket("K-1", [line("BEAN-1K", "beans", 2, 1890)])), env=ahead)
        t1.sync(env=ahead)
        terminal = c.report()["terminals"][0]
        self.assertEqual(terminal["terminal_id"], "T1")
        self.assertLessEqual(abs(terminal["clock_skew_s"] - 7200), 60, str(terminal))
        self.assertIn("skewed", terminal["clock_flags"], str(terminal))
        self.assertIn("future_entries", terminal["clock_flags"], str(terminal))
        self.assertEqual(c.balance(A)["balance"], res["earned"])
        srv.stop()


CARDS_FOR_LOAD = ["6280001234567895", "4539578763621486", "79927398713"]


class ChainTest(SyncCase):
    """A chain's centre on PostgreSQL: two servers on one database, a
    balancer in front, and what fails at night. One server SIGKILLed in the
    middle of a terminal's push while the other serves; PostgreSQL stopped
    with -m immediate in the middle of the ingest and started again; the
    servers' connections to it cut. After each, the terminals' syncs are
    retried until they succeed; then every entry is held once, none lost,
    and every balance at the centre is what the tills recorded."""

    POSTGRESQL_ONLY = True

    def fill(self, t, n, cards, tag):
        for i in range(n):
            card = cards[i % len(cards)]
            t.checkout(card, basket("%s-%05d" % (tag, i), [line("COF-01", "coffee", 1 + i % 3, 350)],
                                    at(30)))

    def held(self, c, terminal):
        rows = c.query("SELECT acked_through FROM terminals WHERE terminal_id = ?", (terminal,))
        return rows[0][0] if rows else 0

    def during_push(self, c, procs, terminal, fault):
        """Runs `fault` once the centre holds part of `terminal`'s push
        (or, had the push ended first, after it: noted)."""
        h0 = self.held(c, terminal)
        deadline = time.monotonic() + 30 * Config.slow
        while self.held(c, terminal) == h0 and time.monotonic() < deadline and \
                any(p.poll() is None for p in procs):
            time.sleep(0.005)
        mid = any(p.poll() is None for p in procs)
        fault()
        print("  %s %s" % (fault.__name__, "in the middle of the push" if mid else "after the push ended"))
        return [p.communicate(timeout=120 * Config.slow) + (p.returncode,) for p in procs]

    def settle(self, terminals):
        """Each terminal's sync, retried as its scheduler would, until it
        succeeds; a failure in between must be a network one (exit 5)."""
        for t in terminals:
            deadline = time.monotonic() + 60 * Config.slow
            while True:
                r = t.sync_run()
                if r.rc == 0:
                    break
                self.assertEqual(r.rc, 5, str(r))
                self.assertLess(time.monotonic(), deadline, "the sync never succeeded again: %s" % r)
                time.sleep(0.3)

    def check_exact(self, c, terminals, cards):
        for t in terminals:
            n, distinct, hi = c.query("SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) FROM entries "
                                      "WHERE terminal_id = ?", (t.id,))[0]
            st = t.status()
            self.assertEqual((n, distinct, hi), (st["entries"], st["entries"], st["entries"]), t.id)
            self.assertEqual(st["unsynced"], 0, t.id)
        for card in cards:
            at_centre = c.balance(card)["balance"]
            for t in terminals:
                self.assertEqual(t.balance(card)["balance"], at_centre, "%s at %s" % (mask(card), t.id))

    def test_two_servers_one_database_and_the_night_failing(self):
        c = self.new_central(terminals=("T1", "T2", "T3"))
        a = self.new_server(c)
        b = self.new_server(c)
        lb = Balancer([a.port, b.port])
        self.addCleanup(lb.close)
        cards = [A, B, "79927398713", "4111111111111111"]
        for card in cards:
            c.ok("enroll", "--card", card)
        t1, t2, t3 = (self.new_terminal(i, "S%d" % (k + 1)) for k, i in enumerate(("T1", "T2", "T3")))
        t1.init(c, a.port)
        t2.init(c, b.port)
        t3.init(c, lb.port)
        for t in (t1, t2, t3):
            t.sync()
            self.fill(t, 60, cards, "W" + t.id)
        for t in (t1, t2, t3):
            t.sync()
        # While the servers run, the admin commands see one chain.
        self.assertEqual(sorted(x["terminal_id"] for x in c.report()["terminals"]), ["T1", "T2", "T3"])
        self.settle((t1, t2, t3))
        self.check_exact(c, (t1, t2, t3), cards)

        # Server A SIGKILLed in the middle of T1's push; B serves T2 and T3.
        self.fill(t1, 700, cards, "K1")
        self.fill(t2, 100, cards, "K2")

        def kill_server_a():
            a.kill()
        out = self.during_push(c, [t1.popen_sync()], "T1", kill_server_a)
        self.assertEqual(out[0][2], 5, out)
        self.assertEqual(t2.sync()["pushed"], 100)
        self.fill(t3, 50, cards, "K3")
        self.assertEqual(t3.sync()["pushed"], 50)  # the balancer passes A over
        a.start()
        self.settle((t1, t2, t3))
        self.check_exact(c, (t1, t2, t3), cards)

        # PostgreSQL stopped as by a crash in the middle of the ingest.
        self.fill(t1, 700, cards, "P1")
        self.fill(t2, 200, cards, "P2")

        def stop_postgresql_immediately():
            Config.postgres.stop("immediate")
            time.sleep(0.5)
            Config.postgres.start()
        self.during_push(c, [t1.popen_sync(), t2.popen_sync()], "T1", stop_postgresql_immediately)
        self.settle((t1, t2, t3))
        self.check_exact(c, (t1, t2, t3), cards)

        # The servers' connections to the database cut.
        self.fill(t1, 700, cards, "C1")

        def cut_database_connections():
            Config.postgres.kill_connections(c.database)
        self.during_push(c, [t1.popen_sync()], "T1", cut_database_connections)
        self.settle((t1, t2, t3))
        self.check_exact(c, (t1, t2, t3), cards)
        self.assertTrue(a.running() and b.running(), "a server did not outlive its database's faults")
        a.stop()
        b.stop()


class BusyTest(SyncCase):
    """A server past the work it takes on (sync/PROTOCOL.md, "Busy"): a
    connection beyond its workers and its queue is answered 503 with a
    Retry-After, the terminal's sync fails with what the server said, loses
    nothing, and succeeds once the server has room again."""

    def tls(self, c, port, terminal):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.pki("ca.pem"))
        ctx.load_cert_chain(c.pki("%s.pem" % terminal), c.pki("%s.key" % terminal))
        tcp = socket.create_connection(("127.0.0.1", port), timeout=30 * Config.slow)
        return ctx.wrap_socket(tcp, server_hostname="127.0.0.1")

    @staticmethod
    def read_answer(s):
        """(status, headers as a dict with lower-case names, body)."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("closed without an answer")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("answer cut short")
            body += chunk
        return int(lines[0].split()[1]), headers, json.loads(body)

    def test_past_its_workers_and_queue_a_server_answers_503_with_retry_after(self):
        c = self.new_central(terminals=("T1", "T2"))
        c.ok("enroll", "--card", A)
        srv = self.new_server(c, start=False)
        srv.extra_args = ["--workers", "1", "--waiting", "0"]
        srv.start()
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        t1.sync()
        t1.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 2, 1890)], at(5)))
        # An idle worker takes a connection at once, even with no queue.
        self.assertEqual(t1.sync()["pushed"], 1)
        t1.checkout(A, basket("R-2", [line("BEAN-1K", "beans", 1, 1890)], at(4)))

        # T2 holds the one worker: a request, then the connection kept.
        holder = self.tls(c, srv.port, "T2")
        get = b"GET /v1/members?after=0&limit=1 HTTP/1.1\r\nHost: x\r\nX-Loyalty-Protocol: 1\r\n\r\n"
        holder.sendall(get)
        self.assertEqual(self.read_answer(holder)[0], 200)

        probe = self.tls(c, srv.port, "T1")
        probe.sendall(get)
        status, headers, body = self.read_answer(probe)
        probe.close()
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "busy", body)
        wait = int(headers.get("retry-after", "-1"))
        self.assertTrue(5 <= wait <= 10, "Retry-After %r, not 5 to 10 s" % headers.get("retry-after"))

        r = t1.sync_run()
        self.check_error(r, 5, "network")
        self.assertIn("503", r.err)
        self.assertIn("busy", r.err)
        self.assertEqual(t1.status()["unsynced"], 1)

        # Room again: the sync pushes what waited, once.
        holder.close()
        deadline = time.monotonic() + 10 * Config.slow
        while True:
            r = t1.sync_run()
            if r.rc == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(t1.status()["unsynced"], 0)
        self.assertEqual(c.query("SELECT count(*) FROM entries WHERE terminal_id = 'T1'")[0][0], 2)
        self.assertEqual(c.balance(A)["balance"], t1.balance(A)["balance"])
        self.assertIn("connections answered 503", srv.log())
        srv.stop()


class HostileRequestTest(SyncCase):
    """Requests no terminal of ours sends, from a client holding a valid
    terminal certificate: each gets its 4xx answer, and the server goes on
    serving the good terminal."""

    def request(self, c, port, raw, terminal="T1"):
        """Sends `raw` bytes over mutual TLS as `terminal`; (status, body)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.pki("ca.pem"))
        ctx.load_cert_chain(c.pki("%s.pem" % terminal), c.pki("%s.key" % terminal))
        with socket.create_connection(("127.0.0.1", port), timeout=30 * Config.slow) as tcp:
            with ctx.wrap_socket(tcp, server_hostname="127.0.0.1") as s:
                s.sendall(raw)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "the server closed without an answer to %r" % raw[:80])
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(body) < length:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "answer cut short")
                    body += chunk
                return int(head.split()[1]), json.loads(body)

    def one_terminal(self):
        """A centre, its server, and terminal T1 set up to sync with it."""
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        return c, srv, t1

    @staticmethod
    def push_request(doc):
        """A POST /v1/push with `doc` (JSON text) as its body."""
        return ("POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Loyalty-Protocol: 1\r\n"
                "Content-Length: %d\r\n\r\n%s" % (len(doc.encode()), doc)).encode()

    def get(self, c, port, target):
        return self.request(c, port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Loyalty-Protocol: 1\r\n"
                                      "Connection: close\r\n\r\n" % target).encode())

    def test_a_good_terminal_syncs_while_500_clients_hold_connections(self):
        """Before authentication: 500 connections from eight addresses,
        silent or sending a ClientHello a byte at a time, renewed as the
        server drops them. The good terminal's syncs go through meanwhile,
        and the server's memory stays bounded."""
        c, srv, t1 = self.one_terminal()
        hello = bytes.fromhex("16030100c8010000c40303") + bytes(64)  # a ClientHello's start
        stop = threading.Event()
        held = []

        def attacker(k):
            conns = []
            while not stop.is_set():
                while len(conns) < 63 and not stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                     source_address=("127.0.0.%d" % (2 + k), 0))
                    except OSError:
                        break
                    s.setblocking(False)
                    conns.append([s, 0])
                held.append(len(conns))
                for conn in list(conns):
                    s, sent = conn
                    try:
                        if k % 2 and sent < len(hello):  # the slow half: a byte now and then
                            s.send(hello[sent:sent + 1])
                            conn[1] += 1
                        elif s.recv(1, socket.MSG_PEEK) == b"":
                            raise OSError("closed by the server")
                    except BlockingIOError:
                        pass
                    except OSError:
                        s.close()
                        conns.remove(conn)
                stop.wait(0.2)
            for s, _ in conns:
                s.close()

        threads = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 30 * Config.slow
            while sum(held[-8:]) < 480 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreaterEqual(sum(held[-8:]), 480, "the attackers could not hold their connections")
            env = dict(os.environ, LOYALTY_SYNC_TIMEOUT_MS=str(20000 * Config.slow))
            self.assertEqual(t1.sync(env=env)["program_version"], 7)
            for i in range(3):
                t1.enroll(CARDS_FOR_LOAD[i])
                self.assertEqual(t1.sync(env=env)["acked_through"], i + 1)
            with open("/proc/%d/status" % srv.proc.pid) as f:
                rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            self.assertLess(rss_kb, 256 * 1024, "the server holds %d kB" % rss_kb)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertTrue(srv.running(), srv.log())
        srv.stop()

    def test_authenticated_clients_that_idle_or_trickle_do_not_hold_the_workers(self):
        """After authentication: 40 connections with T1's certificate that
        send nothing (more than the server's 16 workers) and 4 that send a
        request a byte at a time. The server closes the silent ones after its
        keep-alive idle bound, so the good terminal is served with its
        default time-outs, and memory stays bounded."""
        c, srv, t1 = self.one_terminal()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(c.pki("ca.pem"))
        ctx.load_cert_chain(c.pki("T1.pem"), c.pki("T1.key"))

        def connect():
            tcp = socket.create_connection(("127.0.0.1", srv.port), timeout=30 * Config.slow)
            return ctx.wrap_socket(tcp, server_hostname="127.0.0.1")

        silent = [connect() for _ in range(40)]
        slow = [connect() for _ in range(4)]
        stop = threading.Event()
        head = self.push_request('{"terminal": "T1", "store": "S1", "entries": []}')

        def trickle():
            sent = 0
            while not stop.is_set() and sent < len(head):
                for s in slow:
                    try:
                        s.send(head[sent:sent + 1])
                    except OSError:
                        pass
                sent += 1
                stop.wait(0.5)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            self.assertEqual(t1.sync()["program_version"], 7)
            t1.enroll(CARDS_FOR_LOAD[0])
            self.assertEqual(t1.sync()["acked_through"], 1)
            # Each silent connection is closed by the server, none answered.
            for s in silent:
                s.settimeout(30 * Config.slow)
                try:
                    self.assertEqual(s.recv(1), b"", "a silent client got an answer")
                except (ssl.SSLError, ConnectionResetError):
                    pass  # closed without close_notify: closed all the same
            with open("/proc/%d/status" % srv.proc.pid) as f:
                rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            self.assertLess(rss_kb, 256 * 1024, "the server holds %d kB" % rss_kb)
        finally:
            stop.set()
            trickler.join()
            for s in silent + slow:
                s.close()
        self.assertTrue(srv.running(), srv.log())
        srv.stop()

    def test_malformed_http_is_answered_and_names_the_problem(self):
        c, srv, t1 = self.one_terminal()
        head = "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Loyalty-Protocol: 1\r\n"
        rows = [
            ("a 100 KB header", head + "X-Junk: " + "a" * 100000 + "\r\n\r\n", 431, "head too large"),
            ("chunked", head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "Transfer-Encoding"),
            ("Content-Length -1", head + "Content-Length: -1\r\n\r\n", 400, "Content-Length"),
            ("Content-Length 1 GB", head + "Content-Length: 1000000000\r\n\r\n", 413, "too large"),
            ("Content-Length 2^64", head + "Content-Length: 18446744073709551616\r\n\r\n", 413, "too large"),
            ("Content-Length 8 MiB + 1", head + "Content-Length: 8388609\r\n\r\n", 413, "too large"),
            ("Content-Length twice", head + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400,
             "conflicting"),
        ]

        def push(body):
            text = json.dumps(body) if not isinstance(body, str) else body
            return head + "Content-Length: %d\r\n\r\n%s" % (len(text.encode()), text)

        entry = {"seq": 1, "hash": "0" * 64, "body": "{}"}
        for name, body, problem in (
                ("seq a string", {"terminal": "T1", "store": "S1", "entries": [dict(entry, seq="1")]},
                 "entries[0].seq must be an integer"),
                ("seq 2^63", {"terminal": "T1", "store": "S1", "entries": [dict(entry, seq=2 ** 63)]},
                 "entries[0].seq"),
                ("terminal a number", {"terminal": 7, "store": "S1", "entries": []}, "push.terminal"),
                ("entries an object", {"terminal": "T1", "store": "S1", "entries": {}}, "push.entries"),
                ("not an object", [1, 2], "must be an object"),
                ("a number past a double", '{"terminal": "T1", "store": "S1", "entries": [], "x": 1e400}',
                 "not valid JSON"),
                ("nested 10,000 deep", '{"terminal": ' + "[" * 10000 + "]" * 10000 + "}", "nested deeper")):
            rows.append((name, push(body), 400, problem))
        for name, raw, status, problem in rows:
            got, body = self.request(c, srv.port, raw.encode())
            self.assertEqual(got, status, "%s: %r" % (name, body))
            message = body["error"]["message"]
            self.assertIn(problem, message, name)
            for internal in ("json.exception", "at()", "std::"):
                self.assertNotIn(internal, message, name)
            self.assertTrue(srv.running(), "the server died on %s\n%s" % (name, srv.log()))
        self.assertEqual(t1.sync()["program_version"], 7)
        srv.stop()

    def test_forged_entries_past_the_bounds_stop_only_their_terminal(self):
        """A terminal (or a stolen certificate) pushing amounts no till would
        record: the centre refuses that push, naming the field; the chain's
        other terminals sync, and the centre's answers stay right."""
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        t2 = self.new_terminal("T2", "S2")
        t2.init(c, srv.port)
        t2.sync()
        t2.enroll(A)
        t2.checkout(A, basket("G-1", [line("BEAN-1K", "beans", 2, 1890)]))

        def forged(earned):
            body = json.dumps({"prev": "0" * 64, "seq": 1, "terminal": "T1", "kind": "checkout",
                               "token": "f" * 64, "receipt": "F-1",
                               "data": {"masked": "****0000", "at_utc": 1800000000, "expires_at": None,
                                        "available_at": 0,
                                        "receipt": {"eligible": 100, "earned": earned, "redeemed": 0}}})
            doc = json.dumps({"terminal": "T1", "store": "S1", "entries": [
                {"seq": 1, "hash": hashlib.sha256(body.encode()).hexdigest(), "body": body}]})
            return self.push_request(doc)

        # T1's certificate cannot push as T2.
        doc = json.dumps({"terminal": "T2", "store": "S2", "entries": []})
        status, body = self.request(c, srv.port, self.push_request(doc))
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        def chain(bodies):
            """Entries 1.. of T1 whose hash chain holds, one per body."""
            prev, entries = "0" * 64, []
            for seq, fields in enumerate(bodies, 1):
                body = json.dumps(dict({"prev": prev, "seq": seq, "terminal": "T1", "receipt": ""}, **fields))
                prev = hashlib.sha256(body.encode()).hexdigest()
                entries.append({"seq": seq, "hash": prev, "body": body})
            return self.push_request(json.dumps({"terminal": "T1", "store": "S1", "entries": entries}))

        token = "f" * 64
        for name, bodies, problem in (
                ("a masked card of 40 bytes",
                 [{"kind": "enroll", "token": token, "data": {"masked": "*" * 40}}], "masked must be 1 to 32"),
                ("an adjustment of no member", [{"kind": "adjust", "token": "", "points": 5, "data": {}}],
                 "not 64 hex digits"),
                ("a token that is no HMAC", [{"kind": "enroll", "token": "T" * 64, "data": {}}],
                 "not 64 hex digits"),
                ("one receipt checked out twice (a storage error before: the push failed for ever with 500)",
                 [{"kind": "checkout", "token": token, "receipt": "F-9",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 1, "redeemed": 0}}}] * 2,
                 "receipt F-9 of terminal T1 was checked out already"),
                ("a refund of a receipt that is another member's (it took that member's points)",
                 [{"kind": "checkout", "token": token, "receipt": "F-8",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 50, "redeemed": 0}}},
                  {"kind": "refund", "token": "e" * 64, "receipt": "F-8",
                   "data": {"reversed": 50, "returned": 0, "spend_reversed": 100}}],
                 "refunds receipt F-8, which is no checkout of this member"),
                ("a donation that gives points to the member",
                 [{"kind": "donate", "token": token, "points": 5,
                   "data": {"masked": "****0000", "charity": "red-cross", "local_date": 20767}}],
                 "points is 5, outside"),
                ("a donation to no charity",
                 [{"kind": "donate", "token": token, "points": -5,
                   "data": {"masked": "****0000", "charity": "", "local_date": 20767}}],
                 "charity must be 1 to 64 bytes"),
                ("a donation without its day",
                 [{"kind": "donate", "token": token, "points": -5,
                   "data": {"masked": "****0000", "charity": "red-cross"}}],
                 "missing or of the wrong type"),
                ("stamps earned below zero",
                 [{"kind": "checkout", "token": token, "receipt": "F-7",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 1, "redeemed": 0,
                                        "stamps": [{"id": "c", "earned": -1, "used": 0}]}}}],
                 "stamps' earned must be 0 to"),
                ("stamps of a card without an id",
                 [{"kind": "checkout", "token": token, "receipt": "F-6",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 1, "redeemed": 0,
                                        "stamps": [{"id": "", "earned": 1, "used": 0}]}}}],
                 "a stamp card id must be 1 to 64 bytes"),
                ("stamps that are no list",
                 [{"kind": "checkout", "token": token, "receipt": "F-5",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 1, "redeemed": 0,
                                        "stamps": {"c": 1}}}}],
                 "stamps must be a list"),
                ("a membership of no days",
                 [{"kind": "checkout", "token": token, "receipt": "F-4",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0, "local_date": 20833,
                            "receipt": {"eligible": 0, "earned": 0, "redeemed": 0},
                            "memberships": [{"id": "plus", "days": 0}]}}],
                 "membership days must be 1 to"),
                ("a membership bought for two centuries",
                 [{"kind": "checkout", "token": token, "receipt": "F-3",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0, "local_date": 20833,
                            "receipt": {"eligible": 0, "earned": 0, "redeemed": 0},
                            "memberships": [{"id": "plus", "days": 36600}, {"id": "plus", "days": 36600}]}}],
                 "would run past"),
                ("a refund of a membership the member never had",
                 [{"kind": "checkout", "token": token, "receipt": "F-2",
                   "data": {"at_utc": 1800000000, "expires_at": None, "available_at": 0,
                            "receipt": {"eligible": 100, "earned": 1, "redeemed": 0}}},
                  {"kind": "refund", "token": token, "receipt": "F-2",
                   "data": {"reversed": 1, "returned": 0, "spend_reversed": 100,
                            "memberships": [{"id": "plus", "days": 30}]}}],
                 "which this member never had"),
                ("101 adjustments of -10^15: a debt past a member's bound",
                 [{"kind": "adjust", "token": token, "points": -10 ** 15, "data": {}}] * 101,
                 "past the 100000000000000000 a member may hold")):
            status, body = self.request(c, srv.port, chain(bodies))
            self.assertEqual(status, 400, "%s: %r" % (name, body))
            self.assertIn(problem, body["error"]["message"], name)
        for earned, problem in ((2 ** 62, "earned is 4611686018427387904, outside 0 to 1000000000000000"),
                                (2 ** 63, "earned must be an integer"),
                                (-5, "earned is -5")):
            status, body = self.request(c, srv.port, forged(earned))
            self.assertEqual(status, 400, str(body))
            self.assertIn(problem, body["error"]["message"])
        self.assertEqual(t2.sync()["acked_through"], 2)
        status, body = self.get(c, srv.port, "/v1/members?after=0")
        self.assertEqual(status, 200, str(body))
        self.assertEqual([m["balance"] for m in body["members"]], [c.balance(A)["balance"]])
        self.assertEqual(c.report()["points_issued"], c.balance(A)["balance"])
        # The report flags the terminal whose pushes were refused, with why.
        rows = {r["terminal_id"]: r for r in c.report()["terminals"]}
        self.assertGreaterEqual(rows["T1"]["refused_pushes"], 12, str(rows["T1"]))
        self.assertIn("earned is -5", rows["T1"]["last_refusal"]["message"])
        self.assertEqual((rows["T2"]["refused_pushes"], rows["T2"]["last_refusal"]), (0, None))
        srv.stop()

    def test_one_address_holds_its_share_and_the_oldest_give_way(self):
        """64 handshakes at most from one address (more are closed at once),
        and past 1,024 in all the oldest are dropped: 100 silent connections
        from one address, then 1,100 from twenty; the terminal still syncs."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 2048:
            self.skipTest("RLIMIT_NOFILE %d is too low to hold 1,100 connections" % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        c, srv, t1 = self.one_terminal()
        held = []
        self.addCleanup(lambda: [s.close() for s in held])

        def connect(address):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5, source_address=(address, 0))
            s.setblocking(False)
            held.append(s)
            return s

        def closed_by_server(s, wait):
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except BlockingIOError:
                    pass
                except OSError:
                    return True
                time.sleep(0.02)
            return False

        one = [connect("127.0.0.9") for _ in range(100)]
        time.sleep(0.5 * Config.slow)
        closed = sum(closed_by_server(s, 0.05) for s in one)
        self.assertGreaterEqual(closed, 36, "one address held more than its 64")
        self.assertLessEqual(closed, 50, "the server closed more than the share beyond 64")
        for s in one:
            s.close()
        held.clear()
        many = [connect("127.0.1.%d" % (1 + i % 20)) for i in range(1100)]
        time.sleep(0.5 * Config.slow)
        self.assertTrue(closed_by_server(many[0], 2 * Config.slow), "the oldest was not dropped for the newest")
        self.assertFalse(closed_by_server(many[-1], 0.05), "the newest was dropped")
        env = dict(os.environ, LOYALTY_SYNC_TIMEOUT_MS=str(20000 * Config.slow))
        self.assertEqual(t1.sync(env=env)["program_version"], 7)
        self.assertTrue(srv.running(), srv.log())
        srv.stop()

    def test_members_of_a_centre_without_a_program_sync(self):
        """A member enrolled at a centre that has no program yet has no tier:
        the terminal takes the snapshot all the same."""
        c = self.new_central(terminals=("T1",), publish=False)
        c.ok("enroll", "--card", A)
        srv = self.new_server(c)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        self.assertEqual(t1.sync()["members"], 1)
        srv.stop()

    def test_numbers_past_64_bits_in_a_query_are_400(self):
        c, srv, t1 = self.one_terminal()
        for target in ("/v1/members?after=9999999999999999999", "/v1/members?limit=9223372036854775808",
                       "/v1/members?after=-1", "/v1/members?limit=0", "/v1/members?after=1e3",
                       "/v1/program?after=9223372036854775808"):
            status, body = self.get(c, srv.port, target)
            self.assertEqual(status, 400, "%s: %r" % (target, body))
            self.assertEqual(body["error"]["code"], "bad_argument", target)
            self.assertTrue(srv.running(), "the server died on %s\n%s" % (target, srv.log()))
        status, body = self.get(c, srv.port, "/v1/members?after=0&limit=10")
        self.assertEqual(status, 200, str(body))
        self.assertEqual(t1.sync()["program_version"], 7)
        srv.stop()


# ---------------------------------------------------------------------------


class RestoredLedgerCase(SyncCase):
    """Helpers of the tests of a ledger behind the centre."""

    def setup_terminal(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        c.ok("enroll", "--card", A)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        self.srv = srv
        return c, t

    @staticmethod
    def ledger_files(t):
        return [f for f in os.listdir(t.data) if f.startswith("ledger.db")]

    def check_level(self, c, t):
        """The terminal verifies, holds every entry the centre does, and
        shows the centre's balance."""
        t.verify()
        st = t.status()
        self.assertIs(st["behind_centre"], False, str(st))
        held = c.query("SELECT count(*) FROM entries WHERE terminal_id = 'T1'")[0][0]
        self.assertEqual((st["entries"], st["unsynced"]), (held, 0), str(st))
        self.assertEqual(t.balance(A)["balance"], c.balance(A)["balance"])


class RestoredLedgerTest(RestoredLedgerCase):
    """A ledger that lost what the centre acknowledged: an old copy of its
    database put back, a whole data dir restored from a backup, a WAL lost
    after kill -9. Each is found (offline where the anchor in the key store
    can tell, else at the next sync), the terminal takes its own entries back
    from the centre, and nothing is lost or counted twice."""

    def test_an_old_copy_of_the_ledger_put_back_is_found_offline_and_recovered(self):
        c, t = self.setup_terminal()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(30)))
        t.sync()
        self.assertEqual(self.ledger_files(t), ["ledger.db"], "a command's exit checkpoints the WAL")
        old = os.path.join(self.tmp, "ledger-copy.db")
        shutil.copyfile(os.path.join(t.data, "ledger.db"), old)
        t.checkout(A, basket("R-2", [line("BEAN-1K", "beans", 2, 1890)], at(20)))
        t.checkout(A, basket("R-3", [line("COF-01", "coffee", 4, 350)], at(10)))
        t.sync()
        held = c.balance(A)["balance"]

        # The database alone put back (the key store, with its anchor, is
        # the HAL's or was not in the backup).
        for f in self.ledger_files(t):
            os.remove(os.path.join(t.data, f))
        shutil.copyfile(old, os.path.join(t.data, "ledger.db"))

        r = t.run("verify")
        self.assertEqual(r.rc, 4, str(r))
        res = self.one_json(r)
        self.assertIs(res["ok"], False, str(res))
        self.assertEqual(res["first_bad"], 2, str(res))
        self.assertIn("acknowledged entries through 3", res["problem"])
        self.assertIs(t.status()["behind_centre"], True)
        r = t.run("checkout", "--card", A, "--basket", "-",
                  stdin=json.dumps(basket("R-4", [line("COF-01", "coffee", 1, 350)], at(5))))
        self.check_error(r, 4, "storage")
        self.assertIn("sync", r.err)
        r = t.run("refund", "--receipt", "R-1", "--line", "BEAN-1K=1")
        self.check_error(r, 4, "storage")

        res = t.sync()
        self.assertEqual((res["recovered"], res["rebased"], res["dropped"], res["pushed"]), (2, 0, 0, 0), str(res))
        self.assertEqual(res["acked_through"], 3)
        self.check_level(c, t)
        self.assertEqual(t.balance(A)["balance"], held)
        # The receipts came back with their entries: R-2 can be refunded.
        t.refund("R-2", "BEAN-1K=1")
        t.checkout(A, basket("R-4", [line("COF-01", "coffee", 1, 350)], at(5)))
        res = t.sync()
        self.assertEqual(res["pushed"], 2, str(res))
        self.assertNotIn("recovered", res)
        self.check_level(c, t)

    def test_a_data_dir_restored_whole_sells_on_and_its_sales_are_recorded_again(self):
        c, t = self.setup_terminal()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(60)))
        t.sync()
        backup = os.path.join(self.tmp, "backup")
        shutil.copytree(t.data, backup)
        r2 = basket("R-2", [line("BEAN-1K", "beans", 2, 1890)], at(50))
        t.checkout(A, r2)
        t.checkout(A, basket("R-3", [line("COF-01", "coffee", 4, 350)], at(40)))
        t.refund("R-1", "BEAN-1K=3")
        t.sync()
        self.assertEqual(c.query("SELECT count(*) FROM entries WHERE terminal_id = 'T1'")[0][0], 4)

        # Everything put back, keys and anchor too: offline it looks sound.
        shutil.rmtree(t.data)
        shutil.copytree(backup, t.data)
        t.verify()
        self.assertIs(t.status()["behind_centre"], False)
        # It sells on: a new sale, R-2 again (the POS retried it), and two
        # refunds of R-1 that the old copy allows (10 units left) but the
        # centre's receipt (7 left) allows only the first of.
        t.checkout(A, basket("R-5", [line("COF-01", "coffee", 2, 350)], at(30)))
        t.checkout(A, r2)
        t.refund("R-1", "BEAN-1K=2")
        t.refund("R-1", "BEAN-1K=6")

        res = t.sync()
        self.assertEqual((res["recovered"], res["rebased"], res["dropped"]), (3, 2, 2), str(res))
        self.assertEqual((res["acked_through"], res["pushed"]), (6, 2), str(res))
        self.check_level(c, t)
        # Each sale once; R-1 refunded 3 + 2 units of 10.
        rows = c.query("SELECT receipt_id, count(*) FROM entries WHERE terminal_id = 'T1' AND kind = "
                       "'checkout' GROUP BY receipt_id ORDER BY receipt_id")
        self.assertEqual(rows, [("R-1", 1), ("R-2", 1), ("R-3", 1), ("R-5", 1)])
        self.assertEqual(c.query("SELECT eligible FROM receipts WHERE receipt_id = 'R-1'")[0][0], 5 * 1890)
        # What was recorded offline is kept, with what became of it.
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(t.data, "ledger.db"), uri=True)
        try:
            kept = con.execute("SELECT old_seq, new_seq, dropped FROM rebased ORDER BY old_seq").fetchall()
        finally:
            con.close()
        self.assertEqual([(k[0], k[1]) for k in kept], [(2, 5), (3, None), (4, 6), (5, None)], str(kept))
        self.assertIn("R-2 was recorded at the centre already", kept[1][2])
        self.assertIn("no longer applies", kept[3][2])
        res = t.sync()
        self.assertEqual(res["pushed"], 0, str(res))
        self.check_level(c, t)

    def test_a_wal_lost_after_kill_9_is_found_offline_and_recovered(self):
        c, t = self.setup_terminal()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(30)))
        t.sync()
        # A till that never checkpointed: while a process holds the ledger
        # open, the commands' commits stay in ledger.db-wal.
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys, time\n"
             "c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM journal').fetchall()\n"
             "print('open', flush=True); time.sleep(600)", os.path.join(t.data, "ledger.db")],
            stdout=subprocess.PIPE, text=True)
        self.track(holder)
        self.assertEqual(holder.stdout.readline().strip(), "open")
        t.checkout(A, basket("R-2", [line("BEAN-1K", "beans", 2, 1890)], at(20)))
        t.sync()
        t.checkout(A, basket("R-3", [line("COF-01", "coffee", 4, 350)], at(10)))  # never synced
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        self.assertIn("ledger.db-wal", self.ledger_files(t))
        for f in self.ledger_files(t):
            if f != "ledger.db":
                os.remove(os.path.join(t.data, f))
        st = t.status()
        self.assertEqual(st["entries"], 1, "the WAL held entries 2 and 3: %r" % st)
        self.assertIs(st["behind_centre"], True)
        r = t.run("verify")
        self.assertEqual(r.rc, 4, str(r))
        r = t.run("checkout", "--card", A, "--basket", "-",
                  stdin=json.dumps(basket("R-4", [line("COF-01", "coffee", 1, 350)], at(5))))
        self.check_error(r, 4, "storage")
        res = t.sync()
        self.assertEqual((res["recovered"], res["rebased"], res["dropped"]), (1, 0, 0), str(res))
        self.check_level(c, t)
        # R-3 was never synced: it is lost with the WAL (README, "What a
        # terminal can lose"); R-2 is back.
        self.assertEqual(t.status()["entries"], 2)
        t.refund("R-2")
        t.sync()
        self.check_level(c, t)


class RecoveryEdgeTest(RestoredLedgerCase):
    """The recovery where it is easiest to get wrong: cut short, retried
    refunds, a receipt rung again for someone else, a program version the
    copy never had, a centre put back from a backup, a centre that lies,
    two syncs at once."""

    def put_back_ledger(self, t, copy):
        for f in self.ledger_files(t):
            os.remove(os.path.join(t.data, f))
        shutil.copyfile(copy, os.path.join(t.data, "ledger.db"))

    def put_back_dir(self, t, backup):
        shutil.rmtree(t.data)
        shutil.copytree(backup, t.data)

    def copy_ledger(self, t):
        copy = os.path.join(self.tmp, "ledger-copy-%d.db" % len(os.listdir(self.tmp)))
        shutil.copyfile(os.path.join(t.data, "ledger.db"), copy)
        return copy

    def copy_dir(self, t):
        backup = os.path.join(self.tmp, "backup-%d" % len(os.listdir(self.tmp)))
        shutil.copytree(t.data, backup)
        return backup

    @staticmethod
    def last_seq(t):
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(t.data, "ledger.db"), uri=True, timeout=5)
        try:
            return con.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
        finally:
            con.close()

    def test_a_sync_cut_after_the_recovery_leaves_balances_that_hold_each_entry_once(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        c.ok("enroll", "--card", A)
        t = self.new_terminal("T1", "S1")
        armed = {"at": None}
        proxy = CuttingProxy(srv.port, lambda: armed["at"] is not None and self.last_seq(t) != armed["at"])
        self.addCleanup(proxy.close)
        t.init(c, proxy.port)
        t.sync()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(30)))
        t.sync()
        copy = self.copy_ledger(t)
        t.checkout(A, basket("R-2", [line("BEAN-1K", "beans", 2, 1890)], at(20)), redeem=200)
        t.sync()
        held = c.balance(A)["balance"]
        self.put_back_ledger(t, copy)
        # The link goes once the entries are taken back, before the sync ends.
        armed["at"] = self.last_seq(t)
        r = t.sync_run(env=dict(os.environ, LOYALTY_SYNC_TIMEOUT_MS=str(5000 * Config.slow)))
        self.assertEqual(r.rc, 5, str(r))
        self.assertEqual(proxy.cuts, 1)
        self.assertEqual(self.last_seq(t), 2, "the entries were taken back before the cut")
        st = t.status()
        self.assertEqual((st["behind_centre"], st["unsynced"]), (False, 1), str(st))
        t.verify()
        self.assertEqual(t.balance(A)["balance"], held, "R-2 counts once, redemption included")
        r = t.run("checkout", "--card", A, "--basket", "-", "--redeem", str(held + 1),
                  stdin=json.dumps(basket("R-3", [line("BEAN-1K", "beans", 2, 1890)], at(10))))
        self.check_error(r, 3, None)
        self.assertEqual(t.sync()["acked_through"], 2)
        self.check_level(c, t)

    def test_a_named_refund_retried_on_a_restored_copy_moves_nothing_twice(self):
        c, t = self.setup_terminal()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(60)))
        t.sync()
        backup = self.copy_dir(t)
        t.ok("refund", "--receipt", "R-1", "--line", "BEAN-1K=2", "--refund-id", "X")
        t.sync()
        centre = c.query("SELECT eligible, reversed FROM receipts WHERE receipt_id = 'R-1'")
        held = c.balance(A)["balance"]
        self.put_back_dir(t, backup)
        # The POS did not see the answer before the till was restored; it
        # retries a minute later (another entry: its device time differs).
        t.ok("refund", "--receipt", "R-1", "--line", "BEAN-1K=2", "--refund-id", "X",
             env=dict(os.environ, LOYALTY_CLOCK_OFFSET_S="60"))
        res = t.sync()
        self.assertEqual((res["recovered"], res["rebased"], res["dropped"]), (1, 0, 1), str(res))
        self.assertEqual(c.query("SELECT eligible, reversed FROM receipts WHERE receipt_id = 'R-1'"), centre)
        self.assertEqual(c.balance(A)["balance"], held)
        self.check_level(c, t)
        res = t.ok("refund", "--receipt", "R-1", "--line", "BEAN-1K=2", "--refund-id", "X")
        self.assertIs(res["replayed"], True, str(res))

    def test_a_receipt_rung_again_for_another_member_is_left_out_with_its_refund(self):
        c, t = self.setup_terminal()
        c.ok("enroll", "--card", B)
        t.sync()
        t.checkout(A, basket("R-0", [line("COF-01", "coffee", 1, 350)], at(70)))
        t.sync()
        backup = self.copy_dir(t)
        doc = basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(60))
        t.checkout(A, doc)
        t.sync()
        held_a, held_b = c.balance(A)["balance"], c.balance(B)["balance"]
        self.put_back_dir(t, backup)
        t.checkout(B, doc)  # the same receipt id, another card
        t.refund("R-1")
        res = t.sync()
        self.assertEqual((res["recovered"], res["rebased"], res["dropped"]), (1, 0, 2), str(res))
        self.assertEqual((c.balance(A)["balance"], c.balance(B)["balance"]), (held_a, held_b))
        self.check_level(c, t)
        self.assertEqual(t.balance(B)["balance"], held_b)

    def test_receipts_under_a_program_version_the_copy_never_had_can_be_refunded(self):
        c, t = self.setup_terminal()
        copy = self.copy_ledger(t)
        p = self.load_program()
        p["version"] = 8
        c.publish(self.write_json(p, "p8.json"))
        t.sync()
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(30)))
        t.sync()
        p["version"] = 9
        c.publish(self.write_json(p, "p9.json"))
        t.sync()
        self.put_back_ledger(t, copy)
        res = t.sync()
        self.assertEqual((res["recovered"], res["program_version"]), (1, 9), str(res))
        res = t.refund("R-1", "BEAN-1K=1")
        self.assertGreater(res["points_reversed"], 0, str(res))
        t.sync()
        self.check_level(c, t)

    def test_a_centre_put_back_from_a_backup_gets_the_entries_it_lacks_again(self):
        c, t = self.setup_terminal()
        srv = self.srv
        t.checkout(A, basket("R-1", [line("BEAN-1K", "beans", 10, 1890)], at(30)))
        t.sync()
        srv.stop()
        backup = c.backup()
        srv.start()
        t.checkout(A, basket("R-2", [line("BEAN-1K", "beans", 2, 1890)], at(20)))
        t.sync()
        held = c.balance(A)["balance"]
        srv.stop()
        c.restore(backup)
        srv.start()
        self.assertEqual(c.query("SELECT count(*) FROM entries WHERE terminal_id = 'T1'")[0][0], 1)
        res = t.sync()  # nothing new to push: the centre's head says what it lacks
        self.assertEqual((res["pushed"], res["acked_through"]), (1, 2), str(res))
        self.assertEqual(c.balance(A)["balance"], held)
        self.assertEqual(t.sync()["pushed"], 0)

    def test_a_centre_that_lies_cannot_loop_the_terminal_or_stop_its_sales(self):
        """A centre (buggy, or an impostor with the centre's key) that claims
        a head of 10^15 and then sends pages that never get there: the sync
        fails at once, and the claim alone does not stop the till."""
        c = self.new_central(terminals=("T1",))
        lies = {
            "empty pages that say more": lambda after: {"entries": [], "more": True},
            "an entry that does not continue the chain": lambda after: {
                "entries": [{"seq": after + 1, "hash": "cd" * 32, "body": "{}"}], "more": True},
            "no hash of its head": lambda after: {"entries": [], "more": False, "hash": None},
        }
        for name, page in lies.items():
            def handler(method, target, body, page=page):
                if target.startswith("/v1/push"):
                    return 200, {"acked_through": 10 ** 15, "hash": "ab" * 32}
                if target.startswith("/v1/entries"):
                    after = int(re.search(r"after=(\d+)", target).group(1))
                    doc = {"acked_through": 10 ** 15, "hash": "ab" * 32}
                    doc.update(page(after))
                    if doc["hash"] is None:
                        del doc["hash"]
                    return 200, doc
                return 404, {"error": {"code": "not_found", "message": "no"}}
            fake = FakeCentre(c, handler)
            self.addCleanup(fake.close)
            t = self.new_terminal("T1", "S1")
            t.init(c, fake.port)
            t.ok("program", "load", self.program_path())
            r = t.sync_run()
            self.assertEqual(r.rc, 5, "%s: %s" % (name, r))
            self.assertLess(sum(fake.count.values()), 10, "%s: %r" % (name, fake.count))
            self.assertIs(t.status()["behind_centre"], False, "%s: a claim alone must not stop sales" % name)
            t.enroll(A)

    def test_a_centre_of_protocol_1_gets_version_1_pushes(self):
        """A terminal speaks version 2 first; a centre from before it
        answers /v2/push with 404, and the sync goes on in version 1: every
        entry arrives once, as it was hashed."""
        c = self.new_central(terminals=("T1",))
        held = {}

        def handler(method, target, body):
            if target.startswith("/v1/push"):
                doc = json.loads(body)
                for e in doc["entries"]:
                    self.assertEqual(hashlib.sha256(e["body"].encode()).hexdigest(), e["hash"])
                    held.setdefault(e["seq"], e["hash"])
                top = max(held) if held else 0
                return 200, {"acked_through": top, "hash": held.get(top, "0" * 64)}
            if target.startswith("/v1/program"):
                return 200, {"program": None}
            if target.startswith("/v1/members"):
                return 200, {"members": [], "watermark": 0, "more": False}
            return 404, {"error": {"code": "not_found", "message": "no %s %s" % (method, target)}}
        fake = FakeCentre(c, handler)
        self.addCleanup(fake.close)
        t = self.new_terminal("T1", "S1")
        t.init(c, fake.port)
        t.ok("program", "load", self.program_path())
        for i in range(3):
            t.checkout(A, basket("R-%d" % i, [line("COF-01", "coffee", 1, 350)], at(10)))
        self.assertEqual(t.sync()["pushed"], 3)
        self.assertEqual(sorted(held), [1, 2, 3])
        self.assertEqual(fake.count.get("/v2/push"), 1, fake.count)
        self.assertEqual(t.status()["unsynced"], 0)

    def test_two_syncs_recovering_at_once(self):
        c, t = self.setup_terminal()
        copy = self.copy_ledger(t)
        n = 520 if not Config.emulator else 40  # past one page where it is quick
        for i in range(n):
            t.run("checkout", "--card", A, "--basket", "-", json_out=False,
                  stdin=json.dumps(basket("R-%d" % i, [line("COF-01", "coffee", 1, 350)], at(30))))
        t.sync()
        held = c.balance(A)["balance"]
        self.put_back_ledger(t, copy)
        procs = [t.popen_sync() for _ in range(2)]
        outs = [p.communicate(timeout=300 * Config.slow) for p in procs]
        rcs = [p.returncode for p in procs]
        self.assertIn(0, rcs, str(outs))
        for rc, (out, err) in zip(rcs, outs):
            self.assertIn(rc, (0, 5), "%s %s" % (out, err))
        if 5 in rcs:
            t.sync()
        self.check_level(c, t)
        self.assertEqual(t.balance(A)["balance"], held)


class ProgramUpdateTest(SyncCase):
    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others


    def test_program_versions_only_go_up(self):
        c = self.new_central(terminals=("T1", "T2"))
        srv = self.new_server(c)
        t1 = self.new_terminal("T1", "S1")
        t1.init(c, srv.port)
        self.assertEqual(t1.sync()["program_version"], 7)
        enrol = t1.enroll(A)
        self.assertEqual(enrol["card"], mask(A))
        lines = [line("BEAN-1K", "beans", 4, 1890)]
        base7 = dict((p["rule"], p["points"]) for p in
                     t1.checkout(A, basket("P-1", lines))["breakdown"])["base"]

        v8 = self.load_program()
        v8["version"] = 8
        v8["earn"] = {"points": 2, "per": 100}
        p8 = self.write_json(v8, "v8.json")
        res = c.publish(p8)
        self.assertEqual((res["version"], res["published"]), (8, True), str(res))
        res = t1.sync()
        self.assertEqual(res["program_version"], 8, str(res))
        self.assertEqual(t1.status()["program"], {"id": "cafe-rewards", "version": 8})
        base8 = dict((p["rule"], p["points"]) for p in
                     t1.checkout(A, basket("P-2", lines))["breakdown"])["base"]
        spend = 4 * 1890
        self.assertEqual(base7, spend * 1 // 100, "v7 earns 1 point per 1.00")
        self.assertEqual(base8, spend * 2 // 100, "v8 earns 2 points per 1.00")

        # The centre refuses an older version, and a changed document under a
        # version already published.
        c.fails(2, None, "program", "publish", self.program_path())
        v8b = copy.deepcopy(v8)
        v8b["earn"] = {"points": 3, "per": 100}
        c.fails(2, None, "program", "publish", self.write_json(v8b, "v8b.json"))
        # A version past 2^53 - 1 would brick every terminal that took it.
        huge = copy.deepcopy(v8)
        huge["version"] = 10 ** 18
        r = c.fails(2, "bad_program", "program", "publish", self.write_json(huge, "huge.json"))
        self.assertIn("at most 9007199254740991", r.err)
        # The terminal refuses to go back, offline or by sync.
        r = t1.run("program", "load", self.program_path())
        self.check_error(r, 2, None)
        self.assertEqual(t1.sync()["program_version"], 8)
        self.assertEqual(t1.status()["program"], {"id": "cafe-rewards", "version": 8})

        # A new terminal starts on the newest version; one ahead of the centre
        # (v9 loaded offline) stays there.
        t2 = self.new_terminal("T2", "S2")
        t2.init(c, srv.port)
        self.assertEqual(t2.sync()["program_version"], 8)
        v9 = copy.deepcopy(v8)
        v9["version"] = 9
        t2.ok("program", "load", self.write_json(v9, "v9.json"))
        self.assertEqual(t2.sync()["program_version"], 9)
        self.assertEqual(t2.status()["program"], {"id": "cafe-rewards", "version": 9})
        srv.stop()


# ---------------------------------------------------------------------------


class ExpiryTest(SyncCase):
    """Points pushed after they expired: the centre never counts them, and
    its report says so at once."""

    DATED = True  # its expectations depend on the day: tests/run-dates.sh runs it on others

    def test_points_pushed_after_their_expiry(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        old = t.checkout(A, basket("OLD-1", [line("BEAN-1K", "beans", 10, 1890)], at(400 * 24 * 60)))
        new = t.checkout(A, basket("NEW-1", [line("BEAN-1K", "beans", 3, 1890)], at(5)))
        # Start on a fresh second: a report (which sweeps expiry), the sync and
        # the report below then run within the same second of the centre's
        # clock, as they would with a busy chain.
        time.sleep(1.05 - (time.time() % 1.0))
        c.report()
        t.sync()
        rep = c.report()
        bal = c.balance(A)
        self.assertEqual((bal["balance"], bal["pending"]), (new["earned"], 0),
                         "points 400 days old are expired (expiry_days 365): %r" % bal)
        self.assertEqual(t.balance(A)["balance"], new["earned"])
        self.assertEqual(rep["points_issued"], old["earned"] + new["earned"])
        self.assertEqual((rep["points_expired"], rep["points_outstanding"]),
                         (old["earned"], new["earned"]),
                         "report right after the sync: outstanding must be what the members hold "
                         "(%d), the %d expired points counted as expired: %r"
                         % (new["earned"], old["earned"], rep))
        srv.stop()

    def test_stamps_expire_at_the_centre_oldest_first(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        v8 = self.load_program()
        v8.update({"spec": 2, "version": 8})
        v8["stamp_cards"] = [{"id": "coffee-card", "sku": "COF-01", "stamps": 3, "reward_sku": "COF-01",
                              "expiry_days": 180}]
        c.publish(self.write_json(v8, "v8.json"))
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        coffee = lambda rid, qty, when: basket(rid, [line("COF-01", "coffee", qty, 350)], when)  # noqa: E731
        t.checkout(A, coffee("OLD-1", 4, at(200 * 24 * 60)))
        t.checkout(A, coffee("MID-1", 2, at(170 * 24 * 60)))
        # Offline the till knows no expiry: the old stamps buy a reward.
        res = t.ok("checkout", "--card", A, "--basket", "-", "--stamp-card", "coffee-card",
                   stdin=json.dumps(coffee("NEW-1", 1, at(60))))
        self.assertEqual(res["stamps"][0]["balance"], 3)
        t.sync()
        # At the centre the 4 stamps 200 days old are expired (expiry_days
        # 180); the reward took the next oldest, 170 days old, and owes one.
        self.assertEqual(c.balance(A)["stamps"], {"coffee-card": -1})
        t.sync()
        self.assertEqual(t.balance(A)["stamps"], {"coffee-card": -1})
        self.assertEqual(c.query("SELECT sum(expired) FROM stamp_lots"), [(4,)])
        t.verify()
        srv.stop()


# ---------------------------------------------------------------------------


class StopTest(SyncCase):
    """serve stops on SIGTERM or SIGINT within a few seconds, exit 0."""

    def synced_server(self):
        c = self.new_central(terminals=("T1",))
        srv = self.new_server(c)
        t = self.new_terminal("T1", "S1")
        t.init(c, srv.port)
        t.sync()
        t.enroll(A)
        t.sync()
        return c, srv, t

    def test_sigterm_while_serving(self):
        _, srv, _ = self.synced_server()
        took = srv.stop(signal.SIGTERM)
        print("\n  SIGTERM: serve exited 0 in %.2f s" % took)
        self.assertFalse(port_open(srv.port))

    def test_sigint_while_serving(self):
        _, srv, _ = self.synced_server()
        took = srv.stop(signal.SIGINT)
        print("\n  SIGINT: serve exited 0 in %.2f s" % took)

    def test_sigterm_with_a_silent_client_connected(self):
        """A TCP client that connected and never sent a byte (a port scanner,
        a half-open link) is no request in hand: serve must still stop within
        a few seconds."""
        _, srv, _ = self.synced_server()
        s = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(s.close)
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.send(signal.SIGTERM)
        within = Config.stop_within
        how = None
        try:
            rc = srv.proc.wait(within)
        except subprocess.TimeoutExpired:
            try:
                rc = srv.proc.wait(30 * Config.slow)
                how = "exited %s after %.1f s" % (rc, time.monotonic() - t0)
            except subprocess.TimeoutExpired:
                how = "was still running after %.0f s" % (time.monotonic() - t0)
        if how:
            self.fail("serve, SIGTERM with one idle TCP connection open: %s, want exit 0 within %d s\n%s"
                      % (how, within, srv.log()))
        self.assertEqual(rc, 0, srv.log())

    def test_a_silent_client_does_not_block_other_terminals(self):
        """While one TCP client sits silent on a connection, another terminal
        still syncs."""
        _, srv, t = self.synced_server()
        s = socket.create_connection(("127.0.0.1", srv.port))
        self.addCleanup(s.close)
        time.sleep(0.3)
        env = dict(os.environ, LOYALTY_SYNC_TIMEOUT_MS="5000")
        r = t.sync_run(env=env)
        self.assertEqual(r.rc, 0, "sync while another client holds a silent connection\n%s\n%s"
                         % (r, srv.log()))
        s.close()
        srv.stop()


def main():
    global SEED
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminal", required=True)
    parser.add_argument("--central", required=True)
    parser.add_argument("--emulator", default="")
    parser.add_argument("--central-emulator", default=None,
                        help="in front of the centre's commands (default: --emulator; \"\" for a "
                        "centre built for this machine, as a cross build's tests use)")
    parser.add_argument("--examples", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tmpdir", default=None, help="where the temporary dirs go "
                        "(default /dev/shm when writable, else the system's)")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the centre's store: its SQLite file, or a PostgreSQL server this "
                        "script starts (tests/support/postgresql.py), a database per centre")
    parser.add_argument("--group", choices=("dated", "undated", "browser"), default=None,
                        help="only the classes whose expectations depend on the day (DATED), "
                        "which tests/run-dates.sh runs again on other days, only the others, or "
                        "only the dashboard in a browser (BROWSER, with --node-modules)")
    parser.add_argument("--node-modules", default=None,
                        help="playwright-core for the browser classes (toolchains/install-deps.sh browser)")
    args, rest = parser.parse_known_args()
    Config.group = args.group
    Config.node_modules = os.path.abspath(args.node_modules) if args.node_modules else None
    Config.terminal = os.path.abspath(args.terminal)
    Config.central = os.path.abspath(args.central)
    Config.emulator = emulator_args(args.emulator)
    Config.central_emulator = Config.emulator if args.central_emulator is None else \
        emulator_args(args.central_emulator)
    Config.emulated = bool(Config.emulator)
    Config.slow = 4 if Config.emulated else 1
    Config.stop_within = 10 if Config.emulated else 5
    Config.examples = os.path.abspath(args.examples)
    Config.tmpbase = pick_tmpbase(args.tmpdir)
    SEED = args.seed if args.seed is not None else random.randrange(1 << 31)
    if args.store == "postgresql":
        Config.postgres = postgresql.Server().start()
    print("test_sync.py: seed %d (rerun with --seed %d), temp dirs in %s%s" %
          (SEED, SEED, Config.tmpbase, ", emulator %s" % " ".join(Config.emulator)
           if Config.emulated else ""))
    sys.stdout.flush()
    try:
        unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
    finally:
        if Config.postgres is not None:
            Config.postgres.close()


def load_tests(loader, tests, pattern):
    """--group: the dated classes, or the rest."""
    if getattr(Config, "group", None) is None:
        suite = unittest.TestSuite()
        for case in tests:
            for test in (case if isinstance(case, unittest.TestSuite) else [case]):
                if keep(test):
                    suite.addTest(test)
        return suite
    suite = unittest.TestSuite()
    for case in tests:
        for test in (case if isinstance(case, unittest.TestSuite) else [case]):
            browser = bool(getattr(type(test), "BROWSER", False))
            if Config.group == "browser":
                chosen = browser
            else:
                chosen = not browser and bool(getattr(type(test), "DATED", False)) == (Config.group == "dated")
            if chosen and keep(test):
                suite.addTest(test)
    return suite


def keep(test):
    """A class about a chain's database runs where the centre has one; one
    in a browser where playwright-core was given."""
    if getattr(type(test), "BROWSER", False) and not Config.node_modules:
        return False
    return Config.postgres is not None or not getattr(type(test), "POSTGRESQL_ONLY", False)


if __name__ == "__main__":
    main()
