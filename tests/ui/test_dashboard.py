#!/usr/bin/env python3
"""The dashboard in a real browser (issue 17): Debian's chromium, driven over the DevTools protocol by
tests/ui/dashboard.mjs (puppeteer-core and axe-core, pinned in tests/ui/package-lock.json and installed with
`npm ci` when missing), against a real aegisd started by the integration harness.

    AEGIS_BUILD=build python3 tests/ui/test_dashboard.py      (or: make ui-test)

This module prepares the data: a tenant with reader and operator tokens; a crash wave from devices over mutual
TLS whose free text (crash messages, image versions in crashes and heartbeats) carries HTML and script payloads,
as do a device tag, a group's and a product's name, an image's version and the deployments' names; heartbeats
for crash rates; a published image and a two-wave deployment; two one-device deployments that the browser script
makes halt (a device reports a failed update) while their views are open; a device of the simulator (aegis-sim)
that attests for real, twice; a token the script revokes while signed in with it. With UI_LARGE=1 (the default)
a large fleet is written straight into the SQLite file (tests/ui/seed.py: 100,000 devices with a week of
attestations and certificates, 10,000 buckets, 500,000 reports) to time each view's first paint. The browser
script checks the rest and prints one JSON result line; screenshots go to $AEGIS_BUILD/ui-test/ and, with
UPDATE_SCREENSHOTS=1, to docs/screenshots/.
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
from seed import seed_large  # noqa: E402
from test_deployments import DeployBase  # noqa: E402
from test_sim import SimMixin  # noqa: E402
from test_telemetry import batch, crash, heartbeat  # noqa: E402

XSS_IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_SCRIPT = "<script>window.__xss=2;alert(2)</script>"
# Versions are 1 to 32 printable characters without spaces: payloads that need none.
XSS_SVG = "<svg/onload=window.__xss=3>"
XSS_SCRIPT_SHORT = "<script>window.__xss=4</script>"
WAVE_DEVICES = 4
CRASHES_PER_DEVICE = 2
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


class DashboardTest(SimMixin, DeployBase):
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
        # The crash wave: every device crashes the same way (one bucket) with device text carrying payloads,
        # half of it on an image version that is one; the heartbeats run that version too (a crash-rate line).
        for i, dc in enumerate(cls.devices):
            reports = [heartbeat(1, images={"aegis-app": "1.0.0" if i % 2 else XSS_SVG})]
            for j in range(CRASHES_PER_DEVICE):
                msg = XSS_IMG if (i + j) % 2 == 0 else XSS_SCRIPT
                reports.append(crash(2 + j, version="1.0.0" if j == 0 else XSS_SVG, pc="0x0800beef", message=msg))
            st, _, body = dc.post(batch(reports))
            assert st == 200 and not body["rejected"], (st, body)
        cls.patch("/v1/devices/" + cls.devices[0].dev.id, {"tags": {"site": XSS_IMG[:100]}})
        cls.patch("/v1/device-groups/%d" % cls.group_id, {"name": "field " + XSS_SCRIPT})
        cls.patch("/v1/products/%d" % cls.products["acme"], {"name": "gw " + XSS_IMG})
        cls.revoked = cls.make_token("reader", full=True)
        cls.sim_device()

    @classmethod
    def patch(cls, path, body):
        st, _, obj = cls.client.api("PATCH", path, body, token=cls.d.tokens["acme"])
        assert st == 200, (path, st, obj)

    @classmethod
    def sim_device(cls):
        """One device of the simulator, imported and claimed, attests twice for real (its history and current
        certificate are what the device view must show)."""
        cls.provision(1)
        cls.import_devices([0], "acme")
        cls.add_refvals(("acme",))
        for _ in range(2):
            summary = cls.sim_run("--devices", 1)
            assert summary["attest"]["outcomes"] == {"pass": 1}, summary["attest"]
        st, _, cert = cls.client.api("GET", "/v1/devices/%s/certificate" % cls.ids[0], token=cls.d.tokens["acme"])
        assert st == 200 and cert["certificate"], cert
        cls.sim_cert = cert["certificate"]

    @classmethod
    def make_token(cls, role, full=False):
        st, _, body = cls.client.api("POST", "/v1/tokens", {"name": "ui-" + role, "role": role},
                                     token=cls.d.tokens["acme"])
        assert st == 201, body
        return body if full else body["token"]

    def halting(self, image, name):
        """A one-device deployment (its own group) and the update report that halts it: its device says the
        update failed, which is over the deployment's threshold at once (1 of 1 attempts)."""
        g = self.group()
        dc = self.make_device(group=g)
        body = {"group_id": g, "name": name, "images": [image["sha256"]], "waves": [100], "soak_seconds": 3600,
                "failure_threshold_pct": 20, "min_attempts": 1}
        dep = self.assertOk(self.api("POST", "/v1/deployments", body), 201)
        return {"deployment": dep["id"], "name": name, "cert": dc.cert, "key": dc.dev.key,
                "path": "/v1/device/update/status",
                "body": {"attempt_id": "a1", "deployment_id": dep["id"], "image": image["sha256"], "state": "failed",
                         "reason": "flash write error"}}

    def live_wave(self):
        """A second crash wave, uploaded by the browser script while the failures view is open: a new bucket on
        every device (more than flag_new_bucket_devices), so a new_bucket flag must appear without a reload."""
        return [{"cert": dc.cert, "key": dc.dev.key, "path": "/v1/device/telemetry",
                 "body": batch([crash(10, version=XSS_SCRIPT_SHORT, pc=LIVE_PC)])} for dc in self.devices]

    def bucket(self):
        items = self.list_all("/v1/failures/buckets?sort=recent")
        mine = [b for b in items if b["pc"] == "0x800beef"]
        self.assertEqual(len(mine), 1, items)
        return mine[0]

    def test_dashboard_in_chromium(self):
        b = self.bucket()
        self.assertEqual(b["count"], WAVE_DEVICES * CRASHES_PER_DEVICE)
        image = self.image(component="aegis-os", version=XSS_SVG)
        body = {"group_id": self.group_id, "name": "rollout " + XSS_IMG, "images": [image["sha256"]],
                "waves": [50, 100], "soak_seconds": 3600, "failure_threshold_pct": 20, "min_attempts": 1}
        dep = self.assertOk(self.api("POST", "/v1/deployments", body), 201)
        halts = [self.halting(image, "halt-list " + XSS_SCRIPT), self.halting(image, "halt-page " + XSS_IMG)]
        seeded = {}
        if os.environ.get("UI_LARGE", "1") == "1":
            seeded = seed_large(os.path.join(self.d.data_dir, "aegis.db"), self.d.tenant_ids["acme"])
            print("\nseeded: %s" % json.dumps(seeded))
        out = os.path.join(harness.build_dir(), "ui-test")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        env = dict(os.environ, UI_URL="https://127.0.0.1:%d" % self.d.port, UI_READER=self.reader,
                   UI_OPERATOR=self.operator, UI_BUCKET=str(b["id"]), UI_BUCKET_COUNT=str(b["count"]),
                   UI_DEPLOYMENT=str(dep["id"]), UI_DEVICE=self.devices[0].dev.id, UI_OUT=out,
                   UI_CHROMIUM=self.chromium, UI_PAYLOADS=json.dumps([XSS_IMG, XSS_SCRIPT]),
                   UI_CA=self.d.cacert, UI_LIVE_WAVE=json.dumps(self.live_wave()), UI_LIVE_PC=LIVE_PC,
                   UI_HALTS=json.dumps(halts), UI_SIM_DEVICE=self.ids[0], UI_SIM_SERIAL=self.sim_cert["serial"],
                   UI_SIM_EXPIRY=self.sim_cert["not_after"], UI_ADMIN=self.d.tokens["acme"],
                   UI_REVOKE=self.revoked["token"], UI_REVOKE_ID=str(self.revoked["id"]),
                   UI_VERSION_PAYLOADS=json.dumps([XSS_SVG, XSS_SCRIPT_SHORT]))
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
        print("complete, lazily filled parts included (ms): %s" % json.dumps(res.get("complete_ms")))
        print("a new flag showed without a reload after %s ms; halts after %s ms" % (res.get("live_flag_ms"),
                                                                                   json.dumps(res.get("halt_ms"))))
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
