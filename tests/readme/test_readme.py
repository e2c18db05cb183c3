#!/usr/bin/env python3
"""The README's command examples, run as written, in order, on fresh data
dirs: every shell block that sets T= or C= to a program of the build.

    test_readme.py --readme README.md --terminal PATH --central PATH
                   --examples DIR [--emulator "qemu-aarch64;-L;..."]

Only what cannot be the same here is changed, and the script says so: the
programs' paths (this build's, under the emulator of a cross build), the
data dir /var/lib/loyalty (a temporary one), the server's port 8443 (a free
one), and a wait for the server to listen after a command sent to the
background with '&' (a person types the next line later). Every command must
exit 0. Python 3 standard library only.
"""

import argparse
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

PROGRAM_LINE = re.compile(r"^(T|C)=build/release/(firmware/loyalty-terminal|central/loyalty-central)$")


def emulator_args(text):
    parts = []
    for piece in (text or "").split(";"):
        parts.extend(shlex.split(piece))
    return parts


def shell_blocks(readme):
    """The ```sh blocks of the README, each a list of lines."""
    blocks, current = [], None
    with open(readme) as f:
        for text in f.read().splitlines():
            if current is None and text.strip() == "```sh":
                current = []
            elif current is not None and text.strip() == "```":
                blocks.append(current)
                current = None
            elif current is not None:
                current.append(text)
    return blocks


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script_of(block, programs, work, port):
    """The block as a bash script, with the substitutions of the docstring."""
    out = ["set -euo pipefail -x",
           "wait_port() { for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0;"
           " sleep 0.1; done; echo \"nothing listens on $1\" >&2; return 1; }",
           "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT"]
    joined, pending = [], ""
    for text in block:
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        joined.append(pending + text)
        pending = ""
    for text in joined:
        m = PROGRAM_LINE.match(text.strip())
        if m:
            out.append("%s=%s" % (m.group(1), shlex.quote(programs[m.group(1)])))
            continue
        text = text.replace("/var/lib/loyalty", os.path.join(work, "var-lib-loyalty"))
        text = text.replace("127.0.0.1:8443", "127.0.0.1:%d" % port)
        out.append(text)
        if text.split("#")[0].rstrip().endswith("&"):
            out.append("wait_port %d" % port)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", required=True)
    ap.add_argument("--terminal", required=True)
    ap.add_argument("--central", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--emulator", default="")
    a = ap.parse_args()
    emulator = emulator_args(a.emulator)
    programs = {"T": " ".join(shlex.quote(x) for x in emulator + [os.path.abspath(a.terminal)]),
                "C": " ".join(shlex.quote(x) for x in emulator + [os.path.abspath(a.central)])}
    blocks = [b for b in shell_blocks(a.readme) if any(PROGRAM_LINE.match(t.strip()) for t in b)]
    if not blocks:
        sys.exit("test_readme: no example block (T=build/release/... or C=...) in %s" % a.readme)
    passed = failed = 0
    for i, block in enumerate(blocks, 1):
        work = tempfile.mkdtemp(prefix="loy-readme-")
        try:
            os.symlink(os.path.abspath(a.examples), os.path.join(work, "examples"))
            script = script_of(block, programs, work, free_port())
            p = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True,
                               timeout=300)
            if p.returncode == 0:
                passed += 1
                print("ok: README example %d (%d lines)" % (i, len(block)))
            else:
                failed += 1
                print("FAIL: README example %d exited %d\n--- script\n%s--- stdout\n%s--- stderr\n%s"
                      % (i, p.returncode, script, p.stdout, p.stderr))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
