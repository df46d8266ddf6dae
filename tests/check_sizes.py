#!/usr/bin/env python3
"""Files of one concern: no C source file of the product over FILE_MAX lines, no function over
FUNC_MAX lines (docs/architecture.md "Shape"). Functions are found as clang-format lays them out:
a body opens with "{" in column 0 and closes with "}" in column 0.

usage: tests/check_sizes.py [--root DIR]   exit 0 when within the limits, 1 with one line per excess
       tests/check_sizes.py --self-test    shows that an over-long function is caught
"""

import argparse
import os
import shutil
import sys
import tempfile

FILE_MAX = 800
FUNC_MAX = 120
DIRS = ["lib", "proto", "ota", "pki", "server", "server/store", "server/http", "server/device",
        "server/api", "cli", "firmware-ref", "device-sim"]


def function_name(lines, start):
    """The name of the function whose body opens at lines[start]."""
    for j in range(start - 1, max(start - 6, -1), -1):
        if "(" in lines[j]:
            return lines[j].split("(")[0].split()[-1].lstrip("*")
    return "?"


def check(root):
    problems = []
    for d in DIRS:
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith(".c"):
                continue
            rel = os.path.join(d, name)
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                lines = f.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if len(lines) > FILE_MAX:
                problems.append("%s: %d lines (at most %d)" % (rel, len(lines), FILE_MAX))
            start = None
            for i, line in enumerate(lines):
                if line.startswith("{"):
                    start = i
                elif line.startswith("}") and start is not None:
                    n = i - start + 1
                    if n > FUNC_MAX:
                        problems.append("%s:%d: %s is %d lines (at most %d)" %
                                        (rel, start + 1, function_name(lines, start), n, FUNC_MAX))
                    start = None
    return problems


def self_test():
    tmp = tempfile.mkdtemp(prefix="aegis-sizes.")
    try:
        os.makedirs(os.path.join(tmp, "lib"))
        body = "int\nshort_one(void)\n{\n    return 0;\n}\n"
        with open(os.path.join(tmp, "lib", "a.c"), "w") as f:
            f.write(body)
        clean = check(tmp)
        with open(os.path.join(tmp, "lib", "a.c"), "a") as f:
            f.write("int\nlong_one(void)\n{\n" + "    (void)0;\n" * FUNC_MAX + "}\n")
        dirty = check(tmp)
    finally:
        shutil.rmtree(tmp)
    ok = clean == [] and len(dirty) == 1 and "long_one" in dirty[0]
    print("self-test: %s (%s)" % ("ok" if ok else "FAILED", "; ".join(dirty)))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    problems = check(a.root)
    for p in problems:
        print(p)
    print("sizes: %d over the limits (files %d lines, functions %d)" %
          (len(problems), FILE_MAX, FUNC_MAX))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
