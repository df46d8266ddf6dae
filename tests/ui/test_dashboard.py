#!/usr/bin/env python3
"""The dashboard in a real browser (issue 17): Debian's chromium, driven over the DevTools protocol by
tests/ui/dashboard.mjs (puppeteer-core and axe-core, pinned in tests/ui/package-lock.json and installed with
`npm ci` when missing), against a real aegisd started by the integration harness.

    AEGIS_BUILD=build python3 tests/ui/test_dashboard.py      (or: make ui-test)

This module prepares the data (a tenant with reader and operator tokens; a crash wave from devices over mutual
TLS whose free text carries HTML and script payloads; heartbeats for crash rates; a published image and a
two-wave deployment) and, with UI_LARGE=1 (the default), a large fleet written straight into the SQLite file
(100,000 devices, 10,000 buckets) to time each view's first paint. The browser script checks the rest and
prints one JSON result line; screenshots go to $AEGIS_BUILD/ui-test/ and, with UPDATE_SCREENSHOTS=1, to
docs/screenshots/.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
from test_deployments import DeployBase  # noqa: E402
from test_telemetry import batch, crash, heartbeat  # noqa: E402

XSS_IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_SCRIPT = "<script>window.__xss=2;alert(2)</script>"
WAVE_DEVICES = 4
CRASHES_PER_DEVICE = 2
LARGE_DEVICES = 100000
LARGE_BUCKETS = 10000
NODE_TIMEOUT = 600
LIVE_PC = "0x0800cafe"


def lock_versions(path):
    """{package path: version} of an npm lock file (package-lock.json, or the one npm ci leaves in
    node_modules/.package-lock.json); {} when it is missing or unreadable."""
    try:
        with open(path) as f:
            return {k: v.get("version") for k, v in json.load(f)["packages"].items() if k}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}


def ui_node():
    """The node binary, with exactly the packages of tests/ui/package-lock.json installed (npm ci when anything
    differs, transitive packages included; PUPPETEER_SKIP_DOWNLOAD: the browser is Debian's chromium)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("the browser test needs node and npm on the PATH (deploy/install-deps.sh)")
    want = lock_versions(os.path.join(HERE, "package-lock.json"))
    if not want or lock_versions(os.path.join(HERE, "node_modules", ".package-lock.json")) != want:
        env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1")
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600, env=env)
        if p.returncode != 0:
            raise RuntimeError("npm ci in %s failed (%d):\n%s" % (HERE, p.returncode, harness.tail(p.stdout)))
    return node


def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    raise RuntimeError("no chromium on the PATH (apt-get install chromium; make ui-test installs it)")


def seed_large(db_path, tenant_id):
    """Writes LARGE_DEVICES devices and LARGE_BUCKETS crash buckets (1 to 7 reports each, fewer than the crash
    wave's bucket) for tenant_id straight into the database, each copied from a row the daemon wrote itself
    (times and units stay the daemon's). Returns what it inserted."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        dev = con.execute("SELECT id FROM devices WHERE tenant_id = ? LIMIT 1", (tenant_id,)).fetchone()
        bkt = con.execute("SELECT id FROM failure_buckets WHERE tenant_id = ? LIMIT 1", (tenant_id,)).fetchone()
        if dev is None or bkt is None:
            raise RuntimeError("seed_large needs a device and a bucket written by the daemon first")
        con.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO devices (id, public_key_pem, registered_by, tenant_id, group_id, blocked, created_at,
                                 claimed_at, updated_at)
            SELECT lower(hex(randomblob(32))), 'seeded', t.registered_by, t.tenant_id, NULL, i % 50 = 0, t.created_at,
                   t.claimed_at, t.updated_at
            FROM n, (SELECT * FROM devices WHERE id = ?) t""", (LARGE_DEVICES, dev[0]))
        con.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO failure_buckets (tenant_id, signature, component, reason, pc, frames, first_seen)
            SELECT t.tenant_id, lower(hex(randomblob(32))), t.component, 'seeded_' || (i % 50), printf('0x%x', 4096 + i),
                   t.frames, t.first_seen
            FROM n, (SELECT * FROM failure_buckets WHERE id = ?) t""", (LARGE_BUCKETS, bkt[0]))
        con.execute("""INSERT INTO bucket_stats (bucket_id, last_seen, count, devices, devices_first_hour, last_report)
            SELECT b.id, s.last_seen, 1 + b.id % 7, 1, 0, 0
            FROM failure_buckets b, (SELECT * FROM bucket_stats WHERE bucket_id = ?) s
            WHERE b.tenant_id = ? AND b.reason GLOB 'seeded_*'""", (bkt[0], tenant_id))
        con.commit()
        return {"devices": LARGE_DEVICES, "buckets": LARGE_BUCKETS}
    finally:
        con.close()


class DashboardTest(DeployBase):
    tenants = ("acme", "globex")
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "flag_new_bucket_devices": 2,
              "flag_min_device_hours": 1}

    @classmethod
    def prepare(cls):
        super().prepare()
        cls.node = ui_node()
        cls.chromium = chromium()
        tok = cls.d.tokens["acme"]
        cls.reader = cls.make_token("reader")
        cls.operator = cls.make_token("operator")
        st, _, g = cls.client.api("POST", "/v1/device-groups", {"name": "field", "product_id": cls.products["acme"]},
                                  token=tok)
        assert st == 201, g
        cls.group_id = g["id"]
        cls.devices = [cls.make_device(group=cls.group_id) for _ in range(WAVE_DEVICES)]
        # The crash wave: every device crashes the same way (one bucket) with device text carrying payloads.
        for i, dc in enumerate(cls.devices):
            reports = [heartbeat(1, images={"aegis-app": "1.0.0"})]
            for j in range(CRASHES_PER_DEVICE):
                msg = XSS_IMG if (i + j) % 2 == 0 else XSS_SCRIPT
                reports.append(crash(2 + j, version="1.0.0", pc="0x0800beef", message=msg))
            st, _, body = dc.post(batch(reports))
            assert st == 200 and not body["rejected"], (st, body)
        st, _, dev = cls.client.api("PATCH", "/v1/devices/" + cls.devices[0].dev.id,
                                    {"tags": {"site": XSS_IMG[:100]}}, token=tok)
        assert st == 200, dev

    @classmethod
    def make_token(cls, role):
        st, _, body = cls.client.api("POST", "/v1/tokens", {"name": "ui-" + role, "role": role},
                                     token=cls.d.tokens["acme"])
        assert st == 201, body
        return body["token"]

    def live_wave(self):
        """A second crash wave, uploaded by the browser script while the failures view is open: a new bucket on
        every device (more than flag_new_bucket_devices), so a new_bucket flag must appear without a reload."""
        return [{"cert": dc.cert, "key": dc.dev.key, "body": batch([crash(10, version="1.0.0", pc=LIVE_PC)])}
                for dc in self.devices]

    def bucket(self):
        items = self.list_all("/v1/failures/buckets?sort=recent")
        mine = [b for b in items if b["pc"] == "0x800beef"]
        self.assertEqual(len(mine), 1, items)
        return mine[0]

    def test_dashboard_in_chromium(self):
        b = self.bucket()
        self.assertEqual(b["count"], WAVE_DEVICES * CRASHES_PER_DEVICE)
        image = self.image(component="aegis-os", version="2.0.0")
        dep = self.assertOk(self.deploy(self.group_id, [image], waves=(50, 100)), 201)
        seeded = {}
        if os.environ.get("UI_LARGE", "1") == "1":
            seeded = seed_large(os.path.join(self.d.data_dir, "aegis.db"), self.d.tenant_ids["acme"])
        out = os.path.join(harness.build_dir(), "ui-test")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        env = dict(os.environ, UI_URL="https://127.0.0.1:%d" % self.d.port, UI_READER=self.reader,
                   UI_OPERATOR=self.operator, UI_BUCKET=str(b["id"]), UI_BUCKET_COUNT=str(b["count"]),
                   UI_DEPLOYMENT=str(dep["id"]), UI_DEVICE=self.devices[0].dev.id, UI_OUT=out,
                   UI_CHROMIUM=self.chromium, UI_PAYLOADS=json.dumps([XSS_IMG, XSS_SCRIPT]),
                   UI_CA=self.d.cacert, UI_LIVE_WAVE=json.dumps(self.live_wave()), UI_LIVE_PC=LIVE_PC)
        p = subprocess.run([self.node, os.path.join(HERE, "dashboard.mjs")], cwd=HERE, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=NODE_TIMEOUT)
        sys.stderr.write(p.stderr)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, "dashboard.mjs printed no result (%d):\n%s" % (p.returncode, p.stdout + p.stderr))
        res = json.loads(lines[-1])
        print("\nviews calling what this server answers with an error: %s" % json.dumps(res.get("http_errors")))
        print("axe (all impacts): %s" % json.dumps({k: [(v["id"], v["impact"]) for v in vs]
                                                    for k, vs in res.get("axe", {}).items()}))
        print("first paint (ms, %s): %s" % ("seeded %r" % seeded if seeded else "small fleet",
                                              json.dumps(res.get("paint_ms"))))
        print("a new flag showed without a reload after %s ms" % res.get("live_flag_ms"))
        self.assertEqual(res.get("failures"), [], json.dumps(res, indent=1))
        self.assertEqual(p.returncode, 0, p.stdout[-2000:])
        # The operator's pause and resume went through the session (the audit names the token).
        actions = [a for a, _ in self.audit_actions(dep)]
        self.assertIn("deployment.pause", actions)
        self.assertIn("deployment.resume", actions)
        self.assertEqual(self.show(dep)["state"], "running")
        for view, ms in res["paint_ms"].items():
            self.assertLess(ms, 1000, "first paint of %s took %d ms" % (view, ms))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            dst = os.path.join(ROOT, "docs", "screenshots")
            os.makedirs(dst, exist_ok=True)
            for f in sorted(os.listdir(out)):
                if f.endswith(".png"):
                    shutil.copy(os.path.join(out, f), os.path.join(dst, f))


if __name__ == "__main__":
    unittest.main(verbosity=2)
