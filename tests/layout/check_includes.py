#!/usr/bin/env python3
"""The layering of the README's table, checked on the sources: each folder
includes only from itself and the folders below it, and the till (firmware/)
only the public headers, the HAL simulators and the base layer.

    check_includes.py SOURCE_DIR

Prints every include that breaks the order (file:line: folder -> folder) and
exits 1 when there is one.
"""
import os
import re
import sys

# What each folder may include, besides itself. "loyalty" is include/loyalty/,
# the public headers.
ALLOWED = {
    "base": set(),
    "core": {"base"},
    "hal": {"base", "loyalty"},
    "storage": {"base", "core", "hal", "loyalty"},
    "sync": {"base", "core", "hal", "storage", "loyalty"},
    "api": {"base", "core", "hal", "storage", "sync", "loyalty"},
    "central": {"base", "core", "storage", "sync", "loyalty"},
    # The terminal program: the public C API and the HAL, as an integrator's.
    "firmware": {"base", "loyalty", "hal/sim"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')


def folder_of(path):
    """The layer an included path names, or None for a system header."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    if parts[0] == "hal" and len(parts) > 2 and parts[1] == "sim":
        return "hal/sim"
    if parts[0] in ALLOWED or parts[0] == "loyalty":
        return parts[0]
    return None


def main():
    root = sys.argv[1]
    bad = []
    checked = 0
    for top, allowed in ALLOWED.items():
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".hpp", ".cpp", ".h", ".c")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        checked += 1
                        to = folder_of(m.group(1))
                        if to is None or to == top or to.startswith(top + "/"):
                            continue
                        if to not in allowed:
                            bad.append(f"{path}:{n}: {top} -> {to}")
    for b in bad:
        print(b)
    if checked == 0:
        print("no include found: wrong source dir?")
        return 1
    print(f"{checked} includes checked, {len(bad)} out of order")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
