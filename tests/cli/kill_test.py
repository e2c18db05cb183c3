#!/usr/bin/env python3
"""Crash test of the terminal's ledger: checkout_loop runs checkouts through
the public C API and acknowledges each one on stdout; this script SIGKILLs it
after a random delay, again and again, then checks that

  - `loyalty-terminal verify --json` is ok,
  - every acknowledged receipt is in the journal exactly once, with the
    points that were acknowledged,
  - the member's balance is the sum of the points of every checkout entry
    in the journal (acknowledged or not),
  - the terminal still works afterwards.

    kill_test.py --terminal PATH --loop PATH --examples DIR
                 [--emulator "qemu-aarch64"] [--rounds N] [--seed S]
                 [--max-delay-ms MS]

Receipt ids are K-<n>. After each round numbering goes on after the last
acknowledged receipt: sometimes at the very next number (the unacknowledged
receipt may have been committed before the kill: then the retry must be a
replay), sometimes one further (a margin past it). Only the Python standard
library is used.
"""

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

CARD = "6280001234567895"
ACK = re.compile(r"^ack K-(\d+) (-?\d+)$")
TIMEOUT = 120

# Monday 2026-11-23: two coffees and a bag of beans, 25.90 EUR eligible. The
# member's tier rises as the receipts add up, so the points per receipt vary.
BASKET_TEMPLATE = {
    "receipt_id": "@ID@",
    "at": "2026-11-23T10:15:00+01:00",
    "lines": [
        {"sku": "COF-01", "category": "coffee", "qty": 2, "unit_price": 350, "discount": 0},
        {"sku": "BEAN-1K", "category": "beans", "qty": 1, "unit_price": 1890, "discount": 0},
        {"sku": "TAB-07", "category": "tobacco", "qty": 1, "unit_price": 890, "discount": 0},
    ],
}


def emulator_args(text):
    parts = []
    for piece in (text or "").split(";"):
        parts.extend(shlex.split(piece))
    return parts


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminal", required=True)
    parser.add_argument("--loop", required=True, help="the checkout_loop program")
    parser.add_argument("--examples", required=True)
    parser.add_argument("--emulator", default="")
    parser.add_argument("--rounds", type=int, default=None,
                        help="kill rounds (default 300 on the host, 40 under an emulator)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-delay-ms", type=float, default=None,
                        help="longest delay before the kill (default 30 ms on the host, "
                             "400 ms under an emulator, which is slow to start)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args()

    emulator = emulator_args(args.emulator)
    rounds = args.rounds if args.rounds is not None else (40 if emulator else 300)
    max_delay = (args.max_delay_ms if args.max_delay_ms is not None
                 else (400.0 if emulator else 30.0)) / 1000.0
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print("kill_test: seed %d, %d rounds, delays 0-%.0f ms%s" % (
        seed, rounds, max_delay * 1000, ", emulator " + " ".join(emulator) if emulator else ""),
        flush=True)
    rng = random.Random(seed)

    terminal = [*emulator, os.path.abspath(args.terminal)]
    loop = [*emulator, os.path.abspath(args.loop)]
    tmp = tempfile.mkdtemp(prefix="loy-kill-")
    data = os.path.join(tmp, "data")
    try:
        run(tmp, data, terminal, loop, args.examples, rounds, max_delay, rng)
    except Failure as e:
        print("kill_test: FAILED (seed %d, data dir %s): %s" % (seed, data, e), file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print("kill_test: data dir kept in %s" % data)
        else:
            shutil.rmtree(tmp, True)
    print("kill_test: passed (seed %d)" % seed)
    return 0


def cli(terminal, data, *argv, want=0):
    cmd = terminal + ["--data-dir", data] + list(argv) + ["--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    check(p.returncode == want, "%s: exit %d, want %d\nstdout: %s\nstderr: %s" % (
        " ".join(cmd), p.returncode, want, p.stdout, p.stderr))
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise Failure("%s: stdout is not JSON: %r" % (" ".join(cmd), p.stdout))


def verify(terminal, data):
    res = cli(terminal, data, "verify")
    check(res.get("ok") is True, "verify: %s" % res)
    return res


def start_loop(loop, data, template, start, count):
    cmd = loop + [data, CARD, template, str(start), str(count)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_loop(p, kill):
    """SIGKILLs checkout_loop (or lets it finish); returns (acks [(n,
    earned)], exit code, stderr)."""
    if kill:
        p.send_signal(signal.SIGKILL)
    out, err = p.communicate(timeout=TIMEOUT)
    text = out.decode(errors="replace")
    lines = text.split("\n")
    acks = []
    for i, ln in enumerate(lines):
        m = ACK.match(ln)
        if m:
            acks.append((int(m.group(1)), int(m.group(2))))
        elif ln:
            # Only the last line can be cut short by the kill.
            check(i == len(lines) - 1, "checkout_loop printed %r" % ln)
    return acks, p.returncode, err.decode(errors="replace")


def find_result(text):
    """The checkout result recorded in an entry's JSON (data or body)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    for obj in (doc, doc.get("data") if isinstance(doc, dict) else None):
        if isinstance(obj, dict) and isinstance(obj.get("result"), dict):
            return obj["result"]
    return None


def run(tmp, data, terminal, loop, examples, rounds, max_delay, rng):
    cli(terminal, data, "init", "--terminal-id", "K1", "--store", "S1", "--tz", "Europe/Budapest")
    cli(terminal, data, "program", "load", os.path.join(examples, "programs", "cafe-rewards.json"))
    cli(terminal, data, "enroll", "--card", CARD)
    template = os.path.join(tmp, "basket-template.json")
    with open(template, "w") as f:
        json.dump(BASKET_TEMPLATE, f)

    # Kills must land while checkouts run, whatever this machine's speed (a
    # sanitizer build, an emulator, a loaded CI host): time a short run first
    # and let the delays reach past its start-up and a few checkouts.
    calib_start = 90000001
    t_cal = time.monotonic()
    acks, rc, err = finish_loop(start_loop(loop, data, template, calib_start, 5), False)
    check(rc == 0 and len(acks) == 5, "calibration run failed (%d): %s" % (rc, err.strip()))
    short_run = time.monotonic() - t_cal
    if max_delay < 2 * short_run:
        max_delay = 2 * short_run
        print("kill_test: delays widened to 0-%.0f ms (a run of 5 checkouts took %.0f ms)" % (
            max_delay * 1000, short_run * 1000), flush=True)
    acked = {n: earned for n, earned in acks}  # n -> earned
    # Two numbering lanes: lane 0 runs every round; every fifth round lane 1
    # runs beside it, a second process on the same data dir, killed too.
    next_n = [1, 50000001]
    interrupted = 0  # runs killed after at least one ack
    started = time.monotonic()
    for rnd in range(1, rounds + 1):
        lanes = [0, 1] if rnd % 5 == 0 else [0]
        procs = [start_loop(loop, data, template, next_n[lane], 1000000) for lane in lanes]
        delays = sorted(rng.uniform(0, max_delay) for _ in lanes)
        t0 = time.monotonic()
        results = []
        for p, delay in zip(procs, delays):
            time.sleep(max(0.0, t0 + delay - time.monotonic()))
            p.send_signal(signal.SIGKILL)
        for p in procs:
            results.append(finish_loop(p, False))
        for lane, (acks, rc, err) in zip(lanes, results):
            check(rc == -signal.SIGKILL or rc == 0,
                  "round %d: checkout_loop exited %d (not killed): %s" % (rnd, rc, err.strip()))
            expect = next_n[lane]
            for n, earned in acks:
                check(n == expect, "round %d: ack of K-%d, want K-%d" % (rnd, n, expect))
                check(n not in acked or acked[n] == earned,
                      "round %d: K-%d acknowledged twice with %d and %d points" % (
                          rnd, n, acked.get(n, 0), earned))
                check(earned > 0, "round %d: K-%d earned %d" % (rnd, n, earned))
                acked[n] = earned
                expect += 1
            if acks:
                interrupted += 1
            # The receipt after the last ack may have been committed: retry
            # it (a replay if it was), or go one past it.
            next_n[lane] = expect + rng.choice([0, 1])
        if rnd % 50 == 0:
            verify(terminal, data)
            print("kill_test: round %d, %d receipts acknowledged" % (rnd, len(acked)), flush=True)
    elapsed = time.monotonic() - started

    # After the storm: one quiet run must go through.
    p = start_loop(loop, data, template, next_n[0], 5)
    acks, rc, err = finish_loop(p, False)
    check(rc == 0, "final checkout_loop exited %d: %s" % (rc, err.strip()))
    check([n for n, _ in acks] == list(range(next_n[0], next_n[0] + 5)), "final acks %s" % acks)
    for n, earned in acks:
        acked[n] = earned

    res = verify(terminal, data)
    con = sqlite3.connect(os.path.join(data, "ledger.db"))
    try:
        for n, earned in sorted(acked.items()):
            rid = "K-%d" % n
            count = con.execute("SELECT count(*) FROM journal WHERE kind='checkout' AND "
                                "receipt_id=?", (rid,)).fetchone()[0]
            check(count == 1, "acknowledged receipt %s is %d times in the journal" % (rid, count))
        dup = con.execute("SELECT receipt_id, count(*) FROM journal WHERE kind='checkout' "
                          "GROUP BY receipt_id HAVING count(*) > 1").fetchall()
        check(not dup, "receipts recorded twice: %s" % dup)
        # The entry's data as JSON: its own column where the ledger keeps
        # one, else inside the hashed body.
        cols = [r[1] for r in con.execute("PRAGMA table_info(journal)")]
        text_col = "data" if "data" in cols else "body"
        rows = con.execute("SELECT receipt_id, points, %s FROM journal WHERE kind='checkout' "
                           "ORDER BY seq" % text_col).fetchall()
        total = 0
        for rid, points, doc in rows:
            earned = points  # no redemption: the balance moves by what was earned
            result = find_result(doc)
            check(result is not None and result.get("earned") == points,
                  "%s: journal points %d, recorded result %s" % (rid, points, result))
            m = re.match(r"^K-(\d+)$", rid or "")
            check(m, "unexpected receipt id %r in the journal" % rid)
            n = int(m.group(1))
            if n in acked:
                check(acked[n] == earned, "%s acknowledged with %d points, journal has %d" % (
                    rid, acked[n], earned))
            total += earned
        entries = con.execute("SELECT count(*) FROM journal").fetchone()[0]
    finally:
        con.close()
    unacked = len(rows) - len(acked)
    check(0 <= unacked <= rounds + rounds // 5, "%d checkouts in the journal, %d acknowledged" % (
        len(rows), len(acked)))
    check(res.get("entries") == entries, "verify counted %s entries, journal has %d" % (
        res.get("entries"), entries))
    bal = cli(terminal, data, "balance", "--card", CARD)
    check(bal.get("balance") == total, "balance %s, journal's checkouts add up to %d" % (
        bal.get("balance"), total))
    check(len(acked) > 5, "only %d receipts acknowledged: the kills came too early" % len(acked))
    print("kill_test: %d rounds in %.1f s, %d killed mid-run; %d receipts acknowledged, "
          "%d committed without an ack; balance %d" % (
              rounds, elapsed, interrupted, len(acked), unacked, total))


if __name__ == "__main__":
    sys.exit(main())
