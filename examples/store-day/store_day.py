#!/usr/bin/env python3
"""A day in two stores, on one machine.

A central server on loopback with a test PKI; two terminals (Budapest and
Vienna) running the cashier loop (`loyalty-terminal run`) on simulated
devices: a card reader the cashier scans at, a network link, a clock. This
script plays the cashiers and the two POS applications: it scans cards at the
readers and sends baskets over each till's POS socket (firmware/POS.md), in
JSON lines, as a POS written in any language would. The Budapest link is cut
at noon and comes back in the afternoon: the terminal keeps selling, then
syncs by itself soon after the link returns; both sync again at night. Then
the central report and each terminal's status. Mid-morning the back office
publishes version 8 of the program (specification 2: charities members may
give points to, a coffee stamp card, a paid Plus membership); each till
takes it at its next sync: in the afternoon a member buys Plus at the
Budapest till, a customer enrolled in the morning in Vienna on a member's
referral earns both their bonuses with her first basket, two members
complete the week's challenge, and in the evening
a member fills her coffee card at the Vienna till, takes its free coffee,
and donates points.

Usage: store_day.py BUILD_DIR   (the dir holding firmware/ and central/)
Everything goes to a temporary dir, removed at the end (KEEP=1 keeps it).
"""

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/release")
HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = os.path.join(BUILD, "firmware", "loyalty-terminal")
# A terminal's cross build has no centre of its own: it names the host's
# (LOYALTY_CENTRAL), which runs natively, as a store's tills reach an x86-64
# centre.
CENTRAL = os.environ.get("LOYALTY_CENTRAL") or os.path.join(BUILD, "central", "loyalty-central")
PROGRAM = os.path.join(HERE, "..", "programs", "cafe-rewards.json")

# The day the demo plays, whatever day it runs on: the tills' simulated
# clocks start here, and the centre's clock (LOYALTY_CLOCK_OFFSET_S, taken by
# every program this script starts) starts here too but runs at real pace,
# so that the fast-forwarded tills are ahead of it by evening.
DAY_START = "2026-11-23T08:00:00+01:00"
os.environ["LOYALTY_CLOCK_OFFSET_S"] = str(
    int(datetime.datetime.fromisoformat(DAY_START).timestamp() - time.time()))

ANNA = "6280001234567895"    # a member enrolled at the centre
BELA = "4539578763621486"    # a member enrolled at the centre
CLARA = "79927398713"        # a new customer, enrolled at the Vienna till
DAVID = "4111111111111111"   # enrolled at the centre, blocked at noon


def say(text):
    print(text, flush=True)


def step(text):
    say("\n== " + text)


# A cross build's programs run under its emulator (qemu-user and its
# arguments, joined by commas), named by the test that runs this script;
# empty on the build machine.
EMULATOR = [a for a in os.environ.get("LOYALTY_EMULATOR", "").split(",") if a]


def emulated(args):
    """The command line as it runs: the host's centre natively."""
    native = args[0] == CENTRAL and os.environ.get("LOYALTY_CENTRAL")
    return ([] if native else EMULATOR) + list(args)


def run(*args, check=True):
    p = subprocess.run(emulated(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"store-day: {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Till:
    """One terminal's `run` process and its POS connection."""

    def __init__(self, name, tid, store, tz, start, work, pki, server):
        self.name, self.tid = name, tid
        self.dir = os.path.join(work, tid)
        run(TERMINAL, "--data-dir", self.dir, "init", "--terminal-id", tid, "--store", store,
            "--tz", tz, "--server", server, "--ca", f"{pki}/ca.pem",
            "--cert", f"{pki}/{tid}.pem", "--key", f"{pki}/{tid}.key",
            "--token-key", f"{pki}/token.key")
        with open(os.path.join(self.dir, "terminal.conf"), "w") as f:
            f.write(f"""# The store-day demo: simulated devices, driven over the POS socket.
[reader]
type = sim
[link]
type = sim
[clock]
type = sim
start = {start}
[printer]
type = file
path = {self.dir}/receipts.txt
[sync]
nightly = 23:30
after_link_up = 20s
retry_min = 10s
jitter = 10%
""")
        self.log = open(os.path.join(self.dir, "till.log"), "w")
        self.proc = subprocess.Popen(EMULATOR + [TERMINAL, "--data-dir", self.dir, "run"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        sock = os.path.join(self.dir, "pos.sock")
        for _ in range(100):
            if os.path.exists(sock):
                break
            if self.proc.poll() is not None:
                sys.exit(f"store-day: {tid} stopped: see {self.log.name}")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rw")
        self.events = []
        self.next_id = 1

    def _read(self):
        line = self.file.readline()
        if not line:
            sys.exit(f"store-day: {self.tid} closed its POS socket: see {self.log.name}")
        return json.loads(line)

    def request(self, op, **fields):
        """Sends one request, returns its answer; events met on the way are kept."""
        rid = self.next_id
        self.next_id += 1
        self.file.write(json.dumps(dict(op=op, id=rid, **fields)) + "\n")
        self.file.flush()
        while True:
            msg = self._read()
            if msg.get("id") == rid:
                return msg
            self.events.append(msg)

    def wait_event(self, kind, pred=lambda e: True, timeout=30):
        """The next event of `kind` that `pred` accepts."""
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == kind and pred(e):
                    return self.events.pop(i)
            if time.time() > deadline:
                sys.exit(f"store-day: {self.tid}: no {kind} event in {timeout} s: see {self.log.name}")
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass

    def syncs(self):
        """Syncs finished so far, from the till's status."""
        return self.request("status")["result"]["till"]["sync"]["syncs"]

    def synced(self, what, before, nudge=None):
        """Waits until a sync after the `before`-th has finished (calling `nudge`
        meanwhile: moving the simulated clock on), and says how it went."""
        deadline = time.time() + 30
        while True:
            sync = self.request("status")["result"]["till"]["sync"]
            if sync["syncs"] > before and not sync["running"]:
                break
            if time.time() > deadline:
                sys.exit(f"store-day: {self.tid}: no sync for {what} in 30 s: see {self.log.name}")
            if nudge:
                nudge()
            time.sleep(0.05)
        e = sync["last"]
        res = e.get("result") or {}
        if e["ok"]:
            say(f"   {self.name}: {what}: sync ({e['reason']}) at {e['at'][11:19]}: pushed {res['pushed']}, "
                f"acknowledged through {res['acked_through']}, {res['members']} members, "
                f"program v{res['program_version']}")
        else:
            say(f"   {self.name}: {what}: sync ({e['reason']}) failed: {e['error']['message']}")
        return e

    def now(self):
        return self.request("status")["result"]["till"]["now"]

    def clock(self, **how):
        return self.request("sim.clock", **how)["result"]["now"]

    def scan(self, card, how="digits"):
        """The cashier scans a card at the reader; the till shows the member."""
        text = {"digits": card, "track2": f";{card}=2812?", "qr": f"LOYALTY:{card}"}[how]
        self.request("sim.scan", scan=text)
        e = self.wait_event("card")
        r = e.get("result") or {}
        if e["ok"]:
            bal = r["balance"] if r.get("known") else "not known here"
            blocked = ", BLOCKED" if r.get("blocked") else ""
            say(f"   {self.name}: scan {r['card']} ({how}): {r.get('tier') or '-'}{blocked}, balance {bal}, "
                f"redeemable today {r.get('redeemable_today')}")
        else:
            say(f"   {self.name}: scan refused: {e['error']['message']}")
        return e

    def sale(self, receipt, lines, expect=None, **redeem):
        """A basket from the POS for the card just scanned. `expect`: the
        decline this sale must meet (None: it must go through)."""
        basket = {"receipt_id": receipt, "at": self.now(), "lines": lines}
        a = self.request("checkout", basket=basket, **redeem)
        if a["ok"]:
            r = a["result"]
            extra = f", redeemed {r['redeemed']} for {r['discount'] / 100:.2f} {r['currency']}" \
                if r["redeemed"] else ""
            bal = r["balance"] if r["balance"] is not None else "unknown"
            for c in r.get("stamps", []):
                gave = f"{c['earned']} stamp(s)" + (f", reward for {c['used']}" if c["used"] else "")
                extra += f"; {c['id']}: {gave}, now {c['balance']}"
            say(f"   {self.name}: {receipt} {r['card']} earned {r['earned']}{extra}; balance {bal}")
            MOVED[r["card"]] = MOVED.get(r["card"], 0) + r["earned"] - r["redeemed"]
        else:
            say(f"   {self.name}: {receipt} refused: {a['error']['code']}: {a['error']['message']}")
        got = None if a["ok"] else a["error"]["code"]
        if got != expect:
            sys.exit(f"store-day: {receipt}: expected {expect or 'a sale'}, got {got or 'a sale'}")
        return a

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


# Points moved per masked card, as the tills answered: what the centre must
# hold at the end of the day.
MOVED = {}


def line(sku, category, qty, price, discount=0):
    return {"sku": sku, "category": category, "qty": qty, "unit_price": price, "discount": discount}


COFFEE = line("COF-01", "coffee", 2, 350)
CROISSANTS = line("CRS-02", "pastry", 3, 250, 50)
BEANS = line("BNS-1KG", "grocery", 2, 1890)
CAKE = line("CAK-01", "pastry", 4, 520)
TOBACCO = line("TAB-07", "tobacco", 1, 890)
PLUS = line("MEM-PLUS", "membership", 1, 4900)


def main():
    for exe in (TERMINAL, CENTRAL):
        if not os.access(exe, os.X_OK):
            sys.exit(f"store-day: {exe} is not built")
    started = time.time()
    work = tempfile.mkdtemp(prefix="loyalty-store-day-")
    tills, serve = [], None
    try:
        step(f"Central server on loopback, test PKI (in {work})")
        central, pki = os.path.join(work, "central"), os.path.join(work, "pki")
        run(CENTRAL, "--data-dir", central, "pki", "init", "--out", pki, "--terminals", "T-BUD-1,T-VIE-1")
        port = free_port()
        serve_log = open(os.path.join(work, "central.log"), "w")
        serve = subprocess.Popen(emulated([CENTRAL, "--data-dir", central, "serve", "--listen", f"127.0.0.1:{port}",
                                           "--cert", f"{pki}/server.pem", "--key", f"{pki}/server.key",
                                           "--client-ca", f"{pki}/ca.pem"]), stdout=serve_log, stderr=subprocess.STDOUT)
        run(CENTRAL, "--data-dir", central, "program", "publish", PROGRAM)
        for card in (ANNA, BELA, DAVID):
            run(CENTRAL, "--data-dir", central, "enroll", "--card", card)
        say(f"   serving https://127.0.0.1:{port}; program cafe-rewards v7 published; 3 members enrolled")

        step("Two terminals in two stores open at 08:00, cashier loops on simulated devices")
        server = f"https://127.0.0.1:{port}"
        bud = Till("Budapest", "T-BUD-1", "BUD-ANDRASSY", "Europe/Budapest", DAY_START, work, pki, server)
        tills.append(bud)
        vie = Till("Vienna  ", "T-VIE-1", "VIE-GRABEN", "Europe/Vienna", DAY_START, work, pki, server)
        tills.append(vie)
        # A terminal that never synced syncs at once: the program and the
        # members come from the centre.
        for t in tills:
            t.synced("first start", 0)

        step("Morning: members shop in both stores (tobacco and discounts earn nothing)")
        bud.clock(set="2026-11-23T09:12:00+01:00")
        bud.scan(ANNA, "track2")
        bud.sale("BUD-0001", [COFFEE, CROISSANTS, TOBACCO, line("BNS-1KG", "grocery", 6, 1890)])
        bud.scan(ANNA, "qr")
        bud.sale("BUD-0002", [BEANS, CAKE, COFFEE])
        vie.clock(set="2026-11-23T09:40:00+01:00")
        vie.scan(BELA, "qr")
        vie.sale("VIE-0001", [BEANS, COFFEE])
        vie.scan(CLARA)
        a = vie.request("enroll", referrer=ANNA)
        say(f"   Vienna  : enrolled {a['result']['card']} at the till, brought by Anna (****7895)")
        vie.sale("VIE-0002", [CAKE])
        run(CENTRAL, "--data-dir", central, "block", "--card", DAVID)
        say("   10:30 back office blocks card ****1111 at the centre")
        with open(PROGRAM) as f:
            v8 = json.load(f)
        v8.update({"spec": 2, "version": 8,
                   "charities": [{"id": "red-cross", "name": "Red Cross"},
                                 {"id": "food-bank", "name": "Budapest Food Bank"}],
                   "stamp_cards": [{"id": "coffee-card", "sku": "COF-01", "stamps": 4,
                                    "reward_sku": "COF-01", "expiry_days": 180}],
                   "memberships": [{"id": "plus", "sku": "MEM-PLUS", "days": 365, "multiplier_pct": 200}],
                   "referral": {"referrer_points": 200, "referee_points": 100, "min_spend": 2000,
                                "window_days": 30, "max_per_referrer": 10},
                   "partners": [{"id": "graben-bakery", "name": "Bäckerei am Graben", "stores": ["VIE-GRABEN"],
                                 "issue_cost": 1, "redeem_credit": 1}],
                   "challenges": [{"id": "try-two", "kind": "categories", "count": 2, "points": 30,
                                   "from": "2026-11-23", "until": "2026-11-30"}]})
        v8_path = os.path.join(work, "cafe-rewards-v8.json")
        with open(v8_path, "w") as f:
            json.dump(v8, f)
        run(CENTRAL, "--data-dir", central, "program", "publish", v8_path)
        say("   10:45 back office publishes cafe-rewards v8: members may now give points to two charities,\n"
            "         a coffee card gives the 5th coffee free after 4, Plus (49.00 a year) doubles points,\n"
            "         a friend's first basket of 20.00 pays a referral (200 to the referrer, 100 to the friend),\n"
            "         the Vienna store is a partner's, the Bäckerei am Graben, settling its points,\n"
            "         and this week's challenge pays 30 points for buying from two categories")
        vie.clock(set="2026-11-23T11:00:00+01:00")
        n = vie.syncs()
        vie.request("sync")
        vie.synced("the manager asks for a sync", n)

        step("Noon: the Budapest link goes down; the store keeps selling offline")
        bud.clock(set="2026-11-23T12:00:00+01:00")
        bud.request("sim.link", up=False)
        bud.wait_event("link", lambda e: not e["up"])
        say("   Budapest: link down")
        bud.clock(set="2026-11-23T12:31:00+01:00")
        bud.scan(ANNA)
        bud.sale("BUD-0003", [COFFEE, CROISSANTS], reward="free-coffee")
        a = bud.request("refund", receipt_id="BUD-0002", refund_id="BUD-RET-1",
                        lines=[{"sku": "CAK-01", "qty": 2}])
        if not a["ok"]:
            sys.exit(f"store-day: refund refused: {a['error']['message']}")
        r = a["result"]
        say(f"   Budapest: refund of 2 cakes from BUD-0002: {r['points_reversed']} points taken back, "
            f"balance {r['balance']}")
        MOVED["****7895"] += r["points_returned"] - r["points_reversed"]
        # The POS lost the answer and sends the refund again: recorded once.
        a = bud.request("refund", receipt_id="BUD-0002", refund_id="BUD-RET-1",
                        lines=[{"sku": "CAK-01", "qty": 2}])
        if not a["ok"] or not a["result"]["replayed"] or a["result"]["balance"] != r["balance"]:
            sys.exit(f"store-day: the retried refund was not a replay: {a}")
        say(f"   Budapest: the same refund sent again (answer lost): replayed, balance still {r['balance']}")
        bud.scan(BELA)
        say("   (Bela's Vienna points reach Budapest only through the centre, at its next sync)")
        bud.sale("BUD-0004", [CROISSANTS, COFFEE], expect="insufficient_points", redeem_points=100)
        st = bud.request("status")["result"]
        say(f"   Budapest: {st['unsynced']} entries wait for the link")
        vie.clock(set="2026-11-23T13:05:00+01:00")
        vie.scan(DAVID)
        vie.sale("VIE-0003", [COFFEE], expect="blocked_card", redeem_points=100)

        step("15:00: the Budapest link comes back; the terminal syncs by itself")
        bud.clock(set="2026-11-23T15:00:00+01:00")
        n = bud.syncs()
        bud.request("sim.link", up=True)
        bud.wait_event("link", lambda e: e["up"])
        say("   Budapest: link up")
        # The link-up sync is due 20 s (±10%) after the link came back.
        bud.synced("link back", n, lambda: bud.clock(advance_ms=2_000))
        bud.scan(BELA)
        # v8 reached Budapest with that sync: Bela buys a year of Plus, and
        # its double points count on this very basket.
        r = bud.sale("BUD-0005", [COFFEE, PLUS])["result"]
        if r["membership"] is None or r["membership"]["id"] != "plus" or \
                "membership:plus" not in {p["rule"] for p in r["breakdown"]}:
            sys.exit(f"store-day: the Plus membership was not bought with BUD-0005: {r}")
        say(f"   Budapest: {r['card']} buys Plus at the till: double points until {r['membership']['until']}")

        step("Evening: a shift change in Vienna syncs; sales; then the nightly sync in both stores")
        vie.clock(set="2026-11-23T17:00:00+01:00")
        n = vie.syncs()
        vie.request("sync")
        vie.synced("shift change", n)
        vie.clock(set="2026-11-23T18:20:00+01:00")
        vie.scan(ANNA)
        vie.sale("VIE-0004", [CAKE, COFFEE])
        vie.scan(ANNA)
        vie.sale("VIE-0006", [COFFEE])
        # Four stamps: the card is full, and the next coffee is on the house.
        vie.scan(ANNA)
        r = vie.sale("VIE-0007", [COFFEE], stamp_card="coffee-card")["result"]
        if r["discount"] != COFFEE["unit_price"] or r["stamps"] != [
                {"id": "coffee-card", "earned": 1, "used": 4, "balance": 1}]:
            sys.exit(f"store-day: the coffee card's reward was not one coffee: {r}")
        vie.scan(ANNA)
        a = vie.request("donate", charity="red-cross", points=50)
        if not a["ok"]:
            sys.exit(f"store-day: donation refused: {a['error']['message']}")
        say(f"   Vienna  : {a['result']['card']} gives {a['result']['points']} points to "
            f"{a['result']['charity']}; balance {a['result']['balance']}")
        MOVED[a["result"]["card"]] -= a["result"]["points"]
        # A charity the program lacks is the POS's mistake: nothing moves.
        vie.scan(ANNA)
        a = vie.request("donate", charity="unicef", points=10)
        if a["ok"] or a["error"]["code"] != "unknown_charity":
            sys.exit(f"store-day: a donation to no charity of the program was not refused: {a}")
        vie.clock(set="2026-11-23T17:25:00+01:00")
        say("   Vienna  : a cashier sets the till's clock back an hour by mistake")
        vie.scan(BELA)
        vie.sale("VIE-0005", [COFFEE])
        bud.clock(set="2026-11-23T19:45:00+01:00")
        bud.scan(CLARA)
        bud.sale("BUD-0006", [CROISSANTS])
        # Each till has its own minute in the half hour after 23:30 (from its
        # id), so that a chain's terminals do not reach the centre at once.
        for t in tills:
            n = t.syncs()
            hh, mm = map(int, t.request("status")["result"]["till"]["sync"]["nightly"].split(":"))
            mm -= 1
            t.clock(set=f"2026-11-23T{hh:02d}:{mm:02d}:30+01:00")
            t.synced(f"night ({hh:02d}:{mm + 1:02d} for {t.tid})", n, lambda: t.clock(advance_ms=5_000))

        step("Central report")
        say(run(CENTRAL, "--data-dir", central, "report").stdout.rstrip())
        report = json.loads(run(CENTRAL, "--data-dir", central, "report", "--json").stdout)
        if report["donations"] != [{"charity": "red-cross", "points": 50, "value": 50}]:
            sys.exit(f"store-day: the report's donations are {report['donations']}")
        anna = json.loads(run(CENTRAL, "--data-dir", central, "balance", "--card", ANNA, "--json").stdout)
        if anna["stamps"] != {"coffee-card": 1}:
            sys.exit(f"store-day: the centre holds Anna's coffee stamps as {anna['stamps']}, the till 1")
        bela = json.loads(run(CENTRAL, "--data-dir", central, "balance", "--card", BELA, "--json").stdout)
        if (bela["membership"] or {}).get("id") != "plus":
            sys.exit(f"store-day: the centre does not hold Bela's Plus membership: {bela}")
        say("   (The centre never trusts a terminal's clock; it flags it. Both tills fast-forwarded\n"
            "   their day while the centre's clock ran at real pace from 08:00, so they are hours\n"
            "   ahead of it ('skewed', and entries stamped in the centre's future), and Vienna's\n"
            "   clock 'went_back' at 18:20.)")
        # Clara's first basket (20.80 of cake) came in with Vienna's 11:00
        # sync, after v8: the centre paid the referral's bonuses.
        clara = json.loads(run(CENTRAL, "--data-dir", central, "balance", "--card", CLARA, "--json").stdout)
        if (clara["referral"] or {}).get("status") != "rewarded":
            sys.exit(f"store-day: Clara's referral was not rewarded: {clara['referral']}")
        say(f"   referral of {clara['card']} by {clara['referral']['referrer']}: {clara['referral']['status']} "
            f"({clara['referral']['reason']})")
        MOVED[clara["card"]] += 100
        MOVED[clara["referral"]["referrer"]] += 200
        # The week's challenge: two categories on the day's receipts (Anna's
        # coffee and pastry, Bela's beans and coffee; Clara bought pastry only).
        for card in ("****7895", "****1486"):
            MOVED[card] += 30
        say("   challenge try-two completed by ****7895 and ****1486 (two categories): 30 points each")
        for card in (ANNA, BELA, CLARA, DAVID):
            say("   " + run(CENTRAL, "--data-dir", central, "balance", "--card", card).stdout.strip())
        # Nothing sold offline is lost or counted twice: each member's balance
        # at the centre is what the two tills' receipts moved.
        for card in (ANNA, BELA, CLARA, DAVID):
            b = json.loads(run(CENTRAL, "--data-dir", central, "balance", "--card", card, "--json").stdout)
            if b["balance"] != MOVED.get(b["card"], 0):
                sys.exit(f"store-day: {b['card']}: the centre holds {b['balance']} points, "
                         f"the tills moved {MOVED.get(b['card'], 0)}")
        say(f"   every balance at the centre is the sum of what the tills recorded ({len(MOVED)} members)")

        step("The partner's settlement for the day")
        say(run(CENTRAL, "--data-dir", central, "settlement", "--from", "2026-11-23", "--until",
                "2026-11-24").stdout.rstrip())
        settled = json.loads(run(CENTRAL, "--data-dir", central, "settlement", "--from", "2026-11-23",
                                 "--until", "2026-11-24", "--json").stdout)
        stores = {x["store"]: x for x in report["stores"]}
        by = {x["partner"]: x for x in settled["partners"]}
        # The partner's points are its store's, less the centre's bonuses
        # paid on its receipts (the referral on Clara's, Bela's challenge);
        # Anna's challenge was paid on a Budapest receipt, the owner's.
        want = {"graben-bakery": (stores["VIE-GRABEN"]["points_issued"] - 300 - 30,
                                  stores["VIE-GRABEN"]["points_redeemed"]),
                "owner": (stores["BUD-ANDRASSY"]["points_issued"] - 30, stores["BUD-ANDRASSY"]["points_redeemed"])}
        for name, (issued, redeemed) in want.items():
            got = by[name]
            if (got["issued"], got["redeemed"]) != (issued, redeemed) or \
                    got["net"] != got["credit"] - got["owes"]:
                sys.exit(f"store-day: {name}'s settlement {got} is not its store's points {issued}, {redeemed}")
        say(f"   the bakery owes {by['graben-bakery']['owes']} and is credited {by['graben-bakery']['credit']}: "
            f"net {by['graben-bakery']['net']} (minor units)")

        step("Each terminal's status, and the ledger verified")
        for t in tills:
            t.stop()
        for t in tills:
            say(run(TERMINAL, "--data-dir", t.dir, "status").stdout.rstrip())
            say(run(TERMINAL, "--data-dir", t.dir, "verify").stdout.rstrip())
            st = json.loads(run(TERMINAL, "--data-dir", t.dir, "status", "--json").stdout)
            if st["unsynced"] != 0:
                sys.exit(f"store-day: {t.tid} still has {st['unsynced']} entries not synced")

        step("The last receipt printed in Budapest")
        with open(os.path.join(bud.dir, "receipts.txt")) as f:
            lines = f.read().splitlines()
        start = max(i for i, l in enumerate(lines) if l.startswith("Receipt "))
        for l in lines[start:]:
            say("   | " + l)
        say(f"\nstore-day: done in {time.time() - started:.1f} s")
    finally:
        for t in tills:
            if t.proc.poll() is None:
                t.proc.kill()
        if serve:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
        if os.environ.get("KEEP"):
            say(f"store-day: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
