"""docs/openapi.yaml documents exactly the routes of server/routes.c, and is valid OpenAPI.

Static check (no daemon, no YAML library): the route table is read with a regular expression over the R(...)
entries, and openapi.yaml with a line-based reader that knows only the layout the file uses: `paths:` at
column 0, paths as 2-space-indented keys, methods as 4-space-indented keys, operation fields at 6 spaces.

Validation: Redocly CLI, pinned in tests/interop/openapi/package-lock.json and installed there with `npm ci`
when missing, lints the file with tests/interop/openapi/redocly.yaml (its recommended rules); any error or
warning fails. test_openapi_live.py checks the daemon's live responses against the file.
"""

import json
import os
import re
import shutil
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ROUTES_C = os.path.join(ROOT, "server", "routes.c")
OPENAPI = os.path.join(ROOT, "docs", "openapi.yaml")
LINT_DIR = os.path.join(ROOT, "tests", "interop", "openapi")
# Nothing leaves for Redocly's telemetry or update check while the tests run.
LINT_ENV = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# R("GET", "/v1/products/{id}", AUTH_TOKEN, ROLE_READER, ...), possibly spread over several lines.
ROUTE_RE = re.compile(r'\bR\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*(AUTH_[A-Z]+)\s*,\s*(ROLE_[A-Z]+)')
PATH_KEY_RE = re.compile(r"""^  (["']?)(/[^"']*)\1:\s*(#.*)?$""")
METHOD_KEY_RE = re.compile(r"^    ([a-z]+):\s*(#.*)?$")
MIN_ROLE_RE = re.compile(r"""^      x-aegis-min-role:\s*["']?([a-z]+)["']?\s*(#.*)?$""")
SECURITY_NONE_RE = re.compile(r"^      security:\s*\[\s*\]\s*(#.*)?$")
# The schemes an operation requires: "        - name: []" lines under its security:.
SCHEME_RE = re.compile(r"^        - ([A-Za-z]+):\s*\[\s*\]\s*(#.*)?$")
TOP_LEVEL_RE = re.compile(r"^[^\s#]")


def read_routes():
    """{(path, method): (auth, min_role)} from server/routes.c; method lower-case, role e.g. "reader"."""
    with open(ROUTES_C, encoding="utf-8") as f:
        src = f.read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)  # entries commented out do not count
    routes = {}
    dups = []
    for m in ROUTE_RE.finditer(src):
        key = (m.group(2), m.group(1).lower())
        if key in routes:
            dups.append(key)
        routes[key] = (m.group(3), m.group(4)[len("ROLE_"):].lower())
    return routes, dups


def read_openapi():
    """{(path, method): [lines of the operation]} under `paths:` of docs/openapi.yaml, plus the list of every
    path key and of duplicated (path, method) keys."""
    with open(OPENAPI, encoding="utf-8") as f:
        lines = f.read().splitlines()
    ops, paths, dups = {}, [], []
    in_paths = False
    path = None
    op = None
    for line in lines:
        if TOP_LEVEL_RE.match(line):
            in_paths = re.match(r"^paths:\s*(#.*)?$", line) is not None
            path = op = None
            continue
        if not in_paths:
            continue
        m = PATH_KEY_RE.match(line)
        if m:
            path, op = m.group(2), None
            paths.append(path)
            continue
        if line.startswith("  ") and not line.startswith("   ") and line.strip() and not line.lstrip().startswith("#"):
            path = op = None  # some other 2-space key: not a path
            continue
        m = METHOD_KEY_RE.match(line)
        if m and path is not None:
            method = m.group(1)
            if method in HTTP_METHODS:
                op = (path, method)
                if op in ops:
                    dups.append(op)
                ops[op] = []
            else:
                op = None  # "parameters:", "summary:", ... at path level
            continue
        if op is not None:
            ops[op].append(line)
    return ops, paths, dups


class OpenApiMatchesRoutesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.routes, cls.route_dups = read_routes()
        cls.ops, cls.paths, cls.op_dups = read_openapi()

    def test_sources_parsed(self):
        self.assertGreater(len(self.routes), 0, "no R(...) entries found in server/routes.c")
        self.assertGreater(len(self.ops), 0, "no operations found under paths: in docs/openapi.yaml")
        self.assertEqual(self.route_dups, [], "routes.c lists a (path, method) twice")
        self.assertEqual(self.op_dups, [], "openapi.yaml documents a (path, method) twice")
        dup_paths = sorted({p for p in self.paths if self.paths.count(p) > 1})
        self.assertEqual(dup_paths, [], "openapi.yaml has duplicate path keys")

    def test_every_route_is_documented(self):
        missing = sorted(k for k in self.routes if k not in self.ops)
        self.assertEqual(missing, [], "routes of server/routes.c missing from docs/openapi.yaml")

    def test_no_undocumented_paths(self):
        route_paths = {p for p, _ in self.routes}
        extra = sorted(set(self.paths) - route_paths)
        self.assertEqual(extra, [], "paths in docs/openapi.yaml that server/routes.c lacks")

    def test_no_extra_operations(self):
        extra = sorted(k for k in self.ops if k not in self.routes)
        self.assertEqual(extra, [], "operations in docs/openapi.yaml that server/routes.c lacks")

    def test_min_role_and_security_match(self):
        for key, (auth, role) in sorted(self.routes.items()):
            body = self.ops.get(key)
            if body is None:
                continue  # reported by test_every_route_is_documented
            with self.subTest(path=key[0], method=key[1]):
                roles = [m.group(1) for m in map(MIN_ROLE_RE.match, body) if m]
                self.assertEqual(len(roles), 1, "expected one x-aegis-min-role")
                self.assertEqual(roles[0], role, "x-aegis-min-role differs from routes.c")
                no_security = any(SECURITY_NONE_RE.match(line) for line in body)
                schemes = {m.group(1) for m in map(SCHEME_RE.match, body) if m}
                if auth == "AUTH_DEVICE":
                    self.assertTrue(schemes == {"deviceMTLS"} and not no_security,
                                    "AUTH_DEVICE route must require deviceMTLS (and only it)")
                    self.assertTrue(any("x-aegis-auth: device-mtls" in line for line in body),
                                    "AUTH_DEVICE route must say x-aegis-auth: device-mtls")
                elif auth == "AUTH_NONE" and key[0].startswith("/v1/device/recovery/"):
                    # The handler checks a recovery grant itself (docs/update.md 8).
                    self.assertEqual(schemes, {"recoveryGrant"}, "recovery route must require recoveryGrant")
                elif auth == "AUTH_NONE" and key[0] == "/v1/session" and key[1] != "post":
                    # The handler checks the session cookie itself (docs/api.md "Sessions").
                    self.assertEqual(schemes, {"sessionCookie"}, "session route must require sessionCookie")
                elif auth == "AUTH_NONE":
                    self.assertTrue(no_security and not schemes, "AUTH_NONE route must have security: []")
                elif auth == "AUTH_TOKEN":
                    # A bearer token, or the dashboard's session cookie (with csrfToken) instead.
                    self.assertTrue(schemes == {"bearerAuth", "sessionCookie"} and not no_security,
                                    "AUTH_TOKEN route must take bearerAuth or sessionCookie")
                    self.assertIn("          csrfToken: []", body, "sessionCookie without csrfToken")


def redocly():
    """argv of the pinned Redocly CLI, installing it (npm ci in LINT_DIR) when it is missing or of another
    version; raises with what to do when node or npm is missing or npm ci fails."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("the OpenAPI lint needs node and npm on the PATH (deploy/install-deps.sh)")
    with open(os.path.join(LINT_DIR, "package.json")) as f:
        pinned = json.load(f)["dependencies"]["@redocly/cli"]
    pkg = os.path.join(LINT_DIR, "node_modules", "@redocly", "cli")
    try:
        with open(os.path.join(pkg, "package.json")) as f:
            installed = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        installed = None
    if installed != pinned:
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LINT_DIR, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("npm ci in %s failed (%d; it needs the npm registry):\n%s"
                               % (LINT_DIR, p.returncode, p.stdout[-3000:]))
    return [node, os.path.join(pkg, "bin", "cli.js")]


class OpenApiLintTest(unittest.TestCase):
    def test_redocly_finds_no_problem(self):
        argv = redocly() + ["lint", "--config", os.path.join(LINT_DIR, "redocly.yaml"), "--format=json", OPENAPI]
        p = subprocess.run(argv, cwd=LINT_DIR, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, **LINT_ENV))
        try:
            report = json.loads(p.stdout)
        except ValueError:
            self.fail("redocly lint printed no JSON report (exit %d):\n%s" % (p.returncode, p.stderr[-3000:]))
        problems = ["%s %s: %s (%s)" % (pr["severity"], pr["location"][0]["pointer"] if pr.get("location") else "",
                                        pr["message"], pr["ruleId"]) for pr in report["problems"]]
        self.assertEqual(problems, [], "redocly lint of docs/openapi.yaml")
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])

if __name__ == "__main__":
    unittest.main()
