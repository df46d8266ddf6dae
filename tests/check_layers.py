#!/usr/bin/env python3
"""The layer rules of the include graph (docs/architecture.md "Layers"), checked on every quoted
#include of the tree's C files. The Makefile compiles each folder with the same include paths, so a
forbidden include does not even build; this check says which rule it breaks, and also refuses
what include paths cannot: #include of a .c file, paths with directories, two headers of one
name, and cycles between modules inside a layer (a module is x.c with x.h, and x_int.h, its
internal header).

usage: tests/check_layers.py [--root DIR]   exit 0 when clean, 1 with one line per violation
       tests/check_layers.py --self-test    shows that a forbidden include is caught
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

# Headers of the top of server/ that every server layer (and the CLI) may include: the loaded
# configuration, the metrics registry and the version. The rest of server/ (main.c, cron, routes)
# is the daemon itself, above every layer.
CORE = {"server/config.h", "server/config.c", "server/metrics.h", "server/metrics.c",
        "server/isolate.h", "server/isolate.c", "server/version.h"}

BASE = ["proto", "lib"]
SERVER = ["server/store", "core", "signer", "pki", "ota"] + BASE
# layer -> the layers it may include (its own always), lowest last.
RULES = {
    "lib": [],
    "proto": ["lib"],
    "ota": BASE,
    "pki": ["ota"] + BASE,
    "signer": ["pki", "ota"] + BASE,
    "core": ["lib"],
    "server/store": BASE,
    "server/http": SERVER,
    "server/update": SERVER,
    "server/device": ["server/update", "server/http"] + SERVER,
    "server/api": ["server/update", "server/http"] + SERVER,
    "daemon": ["server/api", "server/device", "server/update", "server/http"] + SERVER,
    "cli": ["server/store", "core", "pki", "ota"] + BASE,
    "firmware-ref": ["ota"] + BASE,
    "device-sim": ["firmware-ref", "ota"] + BASE,
    "tests/fw": ["firmware-ref", "ota"] + BASE,
    "tests/cli": ["cli", "server/store", "core", "pki", "ota"] + BASE,
    "tests": ["daemon", "server/api", "server/device", "server/update", "server/http"] + SERVER,
    "fuzz": ["daemon", "server/api", "server/device", "server/update", "server/http"] + SERVER,
    "bench": ["firmware-ref", "ota"] + BASE,
}
C_DIRS = ["lib", "proto", "ota", "pki", "signer", "server", "server/store", "server/http", "server/update",
          "server/device", "server/api", "cli", "firmware-ref", "device-sim", "tests/unit", "tests/tools", "fuzz",
          "bench/ingest", "bench/attest"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """The layer of a file, by its path relative to the root."""
    d = os.path.dirname(rel)
    if d == "server":
        return "core" if rel in CORE else "daemon"
    if d == "tests/unit":
        if os.path.basename(rel).startswith("test_ctl_"):
            return "tests/cli"
        return "tests/fw" if os.path.basename(rel).startswith("test_fw_") else "tests"
    if d == "tests/tools":
        return "tests"
    if d.startswith("bench/"):
        return "bench"
    return d


def c_files(root):
    for d in C_DIRS:
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                yield os.path.join(d, name)


def check(root):
    files = list(c_files(root))
    headers = {}
    problems = []
    for rel in files:
        if rel.endswith(".h"):
            name = os.path.basename(rel)
            if name in headers:
                problems.append("%s: a second header named %s (first: %s)" % (rel, name, headers[name]))
            headers.setdefault(name, rel)
    for rel in files:
        layer = layer_of(rel)
        allowed = set([layer] + RULES.get(layer, []))
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if m is None:
                    continue
                inc = m.group(1)
                where = "%s:%d: #include \"%s\"" % (rel, lineno, inc)
                if inc.endswith(".c"):
                    problems.append(where + ": a .c file is linked from its library, not included")
                    continue
                if "/" in inc:
                    problems.append(where + ": include by name; the layer's include paths find it")
                    continue
                target = headers.get(inc)
                if target is None:
                    if inc == "schema.h" or not inc.endswith(".h"):
                        continue
                    problems.append(where + ": no such header in the tree")
                    continue
                tlayer = layer_of(target)
                if tlayer not in allowed:
                    problems.append("%s: %s is layer %s, which layer %s may not use (may: %s)" %
                                    (where, target, tlayer, layer, ", ".join(sorted(allowed))))
    return problems + cycles(root, files, headers)


def module_of(rel):
    base = os.path.splitext(rel)[0]
    return base[:-4] if base.endswith("_int") else base


def cycles(root, files, headers):
    """Cycles in the graph of modules of the product (a module includes another's header)."""
    graph = {}
    for rel in files:
        if layer_of(rel) in ("tests", "tests/fw", "tests/cli", "fuzz", "bench"):
            continue
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            for line in f:
                m = INCLUDE.match(line)
                target = headers.get(m.group(1)) if m else None
                if target is not None and module_of(target) != module_of(rel):
                    graph.setdefault(module_of(rel), set()).add(module_of(target))
    found, state = [], {}

    def visit(v, path):
        state[v] = 1
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                found.append(path[path.index(w):] + [w])
            elif w not in state:
                visit(w, path + [w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    return ["include cycle: " + " -> ".join(c) for c in found]


def self_test():
    """A tree with one forbidden include (the device stack using the store) must fail, and the
    same tree without it must pass."""
    tmp = tempfile.mkdtemp(prefix="aegis-layers.")
    try:
        for d in ("lib", "server/store", "firmware-ref"):
            os.makedirs(os.path.join(tmp, d))
        files = {"lib/util.h": "", "server/store/store.h": '#include "util.h"\n',
                 "firmware-ref/device.c": '#include "util.h"\n',
                 "lib/a.h": "", "lib/a.c": '#include "b.h"\n', "lib/b.h": "", "lib/b.c": ""}
        for rel, text in files.items():
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        clean = check(tmp)
        with open(os.path.join(tmp, "firmware-ref/device.c"), "a") as f:
            f.write('#include "store.h"\n#include "../lib/util.c"\n')
        with open(os.path.join(tmp, "lib/b.c"), "a") as f:
            f.write('#include "a.h"\n')
        dirty = check(tmp)
    finally:
        shutil.rmtree(tmp)
    ok = (clean == [] and len(dirty) == 3 and "may not use" in dirty[0] and ".c file" in dirty[1]
          and dirty[2] == "include cycle: lib/a -> lib/b -> lib/a")
    print("self-test: clean tree %d problems, forbidden includes %d problems: %s" %
          (len(clean), len(dirty), "ok" if ok else "FAILED"))
    for p in dirty:
        print("  " + p)
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
    print("layers: %d files, %d problems" % (len(list(c_files(a.root))), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
