#!/usr/bin/env python3
"""libloyalty.so from a second language's FFI, as a JNI or P/Invoke binding
would load it: Python's ctypes, the standard library only.

    test_ctypes.py LIBLOYALTY.so PROGRAM.json

The terminal is set up in a temporary dir, on a clock the test gives through
a callback (so the result does not depend on the day it runs), and driven
through the C API: a program, an enrolment, a checkout, a bad card, a
balance and a verify. The exported symbols are the C API alone.
"""

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True

LIB, PROGRAM = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

CARD = b"6280001234567895"
# 2026-11-24T10:20:00+01:00: a few minutes after the basket's time.
NOW = 1795511700 + 5 * 60
BASKET = {"receipt_id": "P-1", "at": "2026-11-24T10:15:00+01:00",
          "lines": [{"sku": "BEAN-1K", "category": "beans", "qty": 2, "unit_price": 1890, "discount": 0}]}


class Setup(ctypes.Structure):
    """loy_terminal_setup: its size first, as every struct that may grow."""
    _fields_ = [("size", ctypes.c_size_t)] + [(name, ctypes.c_char_p) for name in
                                              ("terminal_id", "store", "tz", "server", "ca", "cert", "key",
                                               "token_key")]


CLOCK = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)


def load():
    lib = ctypes.CDLL(LIB)
    lib.loy_version.restype = ctypes.c_char_p
    lib.loy_errstr.restype = ctypes.c_char_p
    lib.loy_errstr.argtypes = [ctypes.c_int]
    lib.loy_terminal_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.loy_terminal_free.argtypes = [ctypes.c_void_p]
    lib.loy_terminal_errmsg.restype = ctypes.c_char_p
    lib.loy_terminal_errmsg.argtypes = [ctypes.c_void_p]
    lib.loy_terminal_result_json.restype = ctypes.c_char_p
    lib.loy_terminal_result_json.argtypes = [ctypes.c_void_p]
    lib.loy_terminal_set_clock.argtypes = [ctypes.c_void_p, CLOCK, ctypes.c_void_p]
    lib.loy_terminal_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(Setup)]
    lib.loy_terminal_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.loy_terminal_program_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.loy_terminal_enroll.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.loy_terminal_enroll_referred.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.loy_terminal_checkout.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                          ctypes.c_void_p]
    lib.loy_terminal_balance.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.loy_terminal_verify.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return lib


class SharedLibraryTest(unittest.TestCase):
    def setUp(self):
        self.lib = load()
        self.tmp = tempfile.TemporaryDirectory(prefix="loy-ctypes-")
        self.addCleanup(self.tmp.cleanup)
        handle = ctypes.c_void_p()
        self.assertEqual(self.lib.loy_terminal_new(ctypes.byref(handle)), 0)
        self.t = handle.value
        self.assertTrue(self.t)
        self.addCleanup(self.lib.loy_terminal_free, self.t)
        self.clock = CLOCK(lambda ctx: NOW)  # kept alive as long as the handle
        self.lib.loy_terminal_set_clock(self.t, self.clock, None)

    def ok(self, rc):
        self.assertEqual(rc, 0, "%s: %s" % (self.lib.loy_errstr(rc).decode(),
                                            self.lib.loy_terminal_errmsg(self.t).decode()))
        return json.loads(self.lib.loy_terminal_result_json(self.t).decode() or "{}")

    def test_a_terminal_through_the_c_api(self):
        self.assertTrue(self.lib.loy_version().decode()[0].isdigit())
        self.assertEqual(self.lib.loy_errstr(6), b"bad_card")
        data = os.path.join(self.tmp.name, "data").encode()
        setup = Setup(size=ctypes.sizeof(Setup), terminal_id=b"T1", store=b"S1", tz=b"Europe/Budapest")
        self.ok(self.lib.loy_terminal_init(self.t, data, ctypes.byref(setup)))
        self.ok(self.lib.loy_terminal_open(self.t, data))
        with open(PROGRAM, "rb") as f:
            program = f.read()
        self.ok(self.lib.loy_terminal_program_load(self.t, program, len(program)))
        self.assertIs(self.ok(self.lib.loy_terminal_enroll(self.t, CARD))["enrolled"], True)
        # A friend brought by CARD (since 0.2): enrolled, the referrer's scan
        # checked as a card is.
        friend = b"4539578763621486"
        self.assertIs(self.ok(self.lib.loy_terminal_enroll_referred(self.t, friend, CARD))["enrolled"], True)
        rc = self.lib.loy_terminal_enroll_referred(self.t, b"79927398713", b"1234")
        self.assertEqual(self.lib.loy_errstr(rc), b"bad_card")
        basket = json.dumps(BASKET).encode()
        res = self.ok(self.lib.loy_terminal_checkout(self.t, CARD, basket, len(basket), None))
        self.assertGreater(res["earned"], 0, str(res))
        # A bad card: its code and a message, the handle still usable.
        rc = self.lib.loy_terminal_checkout(self.t, b"1234", basket, len(basket), None)
        self.assertEqual(self.lib.loy_errstr(rc), b"bad_card")
        self.assertTrue(self.lib.loy_terminal_errmsg(self.t))
        self.assertEqual(self.ok(self.lib.loy_terminal_balance(self.t, CARD))["balance"], res["balance"])
        ok = ctypes.c_int(0)
        self.ok(self.lib.loy_terminal_verify(self.t, ctypes.byref(ok)))
        self.assertEqual(ok.value, 1)

    def test_only_the_c_api_is_exported(self):
        out = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True, check=True).stdout
        names = [line.split()[-1] for line in out.splitlines() if line.strip()]
        functions = [n for n in names if n != "LOYALTY_0"]
        self.assertGreater(len(functions), 40)
        self.assertEqual([n for n in functions if not n.startswith("loy_")], [])


if __name__ == "__main__":
    unittest.main()
