"""The recovery path (docs/update.md 8, issue 11 item 6) end to end with real attestation: a device refused for its
bootloader or OS (an unknown measurement, or an svn below the tenant's minimum) gets a grant in the 403: a bearer
token and a director answer (verified here with Ed25519 against the tenant's director key) that names only the os
images of its group's running deployment, whatever the device's wave. With the token, and no client certificate,
it fetches the image repository's metadata, the director's roots and the granted image (whole and by range) and
nothing else; it installs the image, the operator registers its digest as a platform reference value, and the
device attests and passes. No grant for any other refusal, nor without a running or completed deployment with os
images; a new refusal replaces the old grant."""

import calendar
import hashlib
import json
import os
import time
import urllib.parse

import test_attest
import test_mtls
from test_attest import APP, BOOT, OS, event
from test_deployments import canonical, position
from test_image_download import RolloutFixtures
from test_ota import verified
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

OLD_OS = event("os", "aegis-os", "2.2.0", 6)  # never registered: unknown_measurement on the os
LEGACY_OS = event("os", "legacy-os", "1.0.0", 2)  # registered, below the minimum set in test_rollback
OLD_BOOT = event("bootloader", "aegis-bl", "0.9.0", 1)
REFUSED_LOG = [BOOT, OLD_OS, APP]


def parse_time(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


class RecoveryTest(RolloutFixtures, test_attest.AttestBase):
    tenants = ("acme", "rival")

    @classmethod
    def prepare(cls):
        super().prepare()
        cls.ngroups = 0
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gateway"})
        assert st == 201, body
        cls.product = body["id"]
        cls.keydir = os.path.join(cls.d.tmp, "ota-keys")
        p = cls.d.ctl("ota", "keys", "init", "--dir", cls.keydir, "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        cls.os_data = os.urandom(200 * 1024 + 17)
        cls.os_img = cls.upload(cls.os_data, "aegis-os", "os", "2.4.0", 8)
        cls.app_img = cls.upload(os.urandom(3000), "thermo", "app", "1.5.0", 4)
        cls.stray_img = cls.upload(os.urandom(4000), "aegis-os", "os", "2.4.1", 9)  # in no deployment
        p = cls.d.ctl("ota", "sign", "--dir", cls.keydir, "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        cls.d.ctl_local("refvals", "add", "--stage", "os", "--component", LEGACY_OS["component"], "--version",
                        LEGACY_OS["version"], "--svn", str(LEGACY_OS["svn"]), "--digest", LEGACY_OS["digest"])
        # the operator knows the release's OS as good before it rolls out: a grant offers only such images
        cls.d.ctl_local("refvals", "add", "--stage", "os", "--component", "aegis-os", "--version", "2.4.0",
                        "--svn", "8", "--digest", cls.os_img["sha256"])
        # the group's release: waves 1 % then 100 %, so almost every device is still waiting for wave 2
        cls.group = cls.new_group()
        cls.dep = cls.deploy(cls.group, [cls.os_img["sha256"], cls.app_img["sha256"]], waves=(1, 100), soak=3600)

    @classmethod
    def upload(cls, data, component, kind, version, svn):
        q = urllib.parse.urlencode({"product_id": cls.product, "component": component, "kind": kind,
                                    "version": version, "svn": svn, "hardware": "gw"})
        st, _, body = cls.client.api("POST", "/v1/images?" + q, data, content_type="application/octet-stream")
        assert st == 201, body
        return body

    def device_in(self, group):
        """A claimed device of acme in group (None: in no group)."""
        dev = self.new_device(register=False)
        imp = {"devices": [{"public_key": dev.pub}], "claim": True}
        if group is not None:
            imp["group_id"] = group
        self.assertOk(self.api("POST", "/v1/devices/import", imp))
        return dev

    def refused(self, dev, reason="unknown_measurement", events=REFUSED_LOG, **kw):
        """The 403 body of an attestation refused for reason."""
        return self.assertFails(self.attest(dev, events=events, **kw), reason)

    def grant(self, dev, reason="unknown_measurement", events=REFUSED_LOG):
        body = self.refused(dev, reason, events)
        self.assertIn("recovery", body, body)
        return body["recovery"]

    def assertNoGrant(self, dev, reason="unknown_measurement", events=REFUSED_LOG, **kw):
        body = self.refused(dev, reason, events, **kw)
        self.assertNotIn("recovery", body, body)

    def rget(self, token, path, headers=None):
        """GET path with the bearer token, over TLS without a client certificate."""
        return self.dev_client.request("GET", path, token=token, headers=headers)

    def verified_director(self, director, dev):
        """The signed part of a grant's director answer, its signature checked with the director key."""
        path = os.path.join(self.d.pki_dir, "tenants", str(self.d.tenant_ids["acme"]), "tuf-director.ed25519")
        with open(path) as f:
            key = json.load(f)
        self.assertEqual(len(director["signatures"]), 1)
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["keyval"]["public"])).verify(
            bytes.fromhex(director["signatures"][0]["sig"]), canonical(director["signed"]))
        s = director["signed"]
        self.assertEqual((s["_type"], s["spec_version"]), ("targets", "1.0.31"))
        self.assertGreater(parse_time(s["expires"]), time.time() + 12 * 3600)
        self.assertEqual((s["custom"]["device_id"], s["custom"]["tenant_id"], s["custom"]["recovery"]),
                         (dev.id, self.d.tenant_ids["acme"], True))
        return s

    def os_target(self):
        return "aegis-os/" + self.os_img["sha256"]

    # --- the grant and what it opens ---

    def test_unknown_os_recovers_and_then_passes(self):
        # a device the rollout has not reached: its wave is 2 of [1, 100]
        dev = self.device_in(self.group)
        while position(dev.id, self.dep["id"]) < 100:
            dev = self.device_in(self.group)
        before = time.time()
        rec = self.grant(dev)
        self.assertEqual(set(rec), {"token", "expires_at", "director"})
        self.assertRegex(rec["token"], r"^[0-9a-f]{64}$")
        self.assertAlmostEqual(parse_time(rec["expires_at"]), before + 900, delta=30)
        s = self.verified_director(rec["director"], dev)
        self.assertEqual(list(s["targets"]), [self.os_target()], "only the os image, whatever the wave")
        t = s["targets"][self.os_target()]
        self.assertEqual((t["length"], t["hashes"]), (self.os_img["size"], {"sha256": self.os_img["sha256"]}))
        self.assertEqual(t["custom"], {"component": "aegis-os", "kind": "os", "version": "2.4.0", "svn": 8,
                                       "hardware": "gw", "product_id": self.product,
                                       "deployment_id": self.dep["id"]})
        self.assertEqual(s["custom"]["deployment_id"], self.dep["id"])
        tok = rec["token"]

        # the image repository, as over mutual TLS (the same bytes as the manufacturer's token routes serve)
        def meta(path, api_path):
            st, h, raw = self.rget(tok, path)
            self.assertEqual(st, 200, raw[:200])
            self.assertTrue(h["Content-Type"].startswith("application/json"))
            self.assertEqual(raw, self.client.request("GET", api_path)[2])
            return json.loads(raw)

        root = meta("/v1/device/recovery/tuf/1.root.json", "/v1/ota/repo/1.root.json")
        ts = meta("/v1/device/recovery/tuf/timestamp.json", "/v1/ota/repo/timestamp.json")
        self.assertTrue(verified(ts, root["signed"], "timestamp"))
        sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        snap = meta("/v1/device/recovery/tuf/%d.snapshot.json" % sv, "/v1/ota/repo/%d.snapshot.json" % sv)
        tv = snap["signed"]["meta"]["targets.json"]["version"]
        targets = meta("/v1/device/recovery/tuf/%d.targets.json" % tv, "/v1/ota/repo/%d.targets.json" % tv)
        self.assertTrue(verified(targets, root["signed"], "targets"))
        # agreement (docs/update.md 3): the director's target is the manufacturer-signed one
        listed = targets["signed"]["targets"][self.os_target()]
        self.assertEqual((listed["length"], listed["hashes"]), (t["length"], t["hashes"]))
        droot = meta("/v1/device/recovery/director/1.root.json", "/v1/ota/director/1.root.json")
        self.assertEqual(droot["signed"]["_type"], "root")
        for bad in ("/v1/device/recovery/tuf/99.targets.json", "/v1/device/recovery/director/timestamp.json",
                    "/v1/device/recovery/director/2.root.json"):
            self.assertEqual(self.rget(tok, bad)[0], 404, bad)

        # the granted image, whole and by range
        img = "/v1/device/recovery/images/" + self.os_img["sha256"]
        st, h, data = self.rget(tok, img)
        self.assertEqual((st, data == self.os_data), (200, True))
        self.assertEqual((h["ETag"], h["Accept-Ranges"]), ('"%s"' % self.os_img["sha256"], "bytes"))
        n = len(self.os_data)
        st, h, part = self.rget(tok, img, {"Range": "bytes=1000-"})
        self.assertEqual((st, h["Content-Range"], part), (206, "bytes 1000-%d/%d" % (n - 1, n), self.os_data[1000:]))
        st, h, _ = self.rget(tok, img, {"Range": "bytes=%d-" % n})
        self.assertEqual((st, h["Content-Range"]), (416, "bytes */%d" % n))
        # nothing else of the tenant's images
        for sha, why in ((self.app_img["sha256"], "the deployment's app image"),
                         (self.stray_img["sha256"], "an os image in no deployment"), ("0" * 64, "unknown"),
                         (self.os_img["sha256"].upper(), "upper case")):
            st, _, raw = self.rget(tok, "/v1/device/recovery/images/" + sha)
            self.assertEqual((st, json.loads(raw)["error"]), (404, "not_found"), why)

        # installed and rebooted: its new OS is a reference value, and the device passes
        self.assertEqual(hashlib.sha256(data).hexdigest(), self.os_img["sha256"])
        healed = event("os", "aegis-os", "2.4.0", 8, hashlib.sha256(data).hexdigest())
        st, _, body = self.attest(dev, events=[BOOT, healed, APP])
        self.assertEqual((st, body.get("result")), (200, "pass"), body)
        self.assertEqual([r["result"] for r in self.records(dev)], ["pass", "fail"])

    def test_rollback_and_bootloader_get_a_grant(self):
        dev = self.device_in(self.group)
        self.assertOk(self.api("PUT", "/v1/security-minimums/legacy-os", {"min_svn": 3}))
        try:
            rec = self.grant(dev, "rollback", [BOOT, LEGACY_OS, APP])
        finally:
            self.api("DELETE", "/v1/security-minimums/legacy-os")
        s = self.verified_director(rec["director"], dev)
        self.assertEqual(list(s["targets"]), [self.os_target()])
        self.assertEqual(self.rget(rec["token"], "/v1/device/recovery/tuf/timestamp.json")[0], 200)
        # an unknown bootloader, the first stage: a grant as well
        rec = self.grant(dev, events=[OLD_BOOT, OS, APP])
        self.assertEqual(list(self.verified_director(rec["director"], dev)["targets"]), [self.os_target()])

    def test_token_opens_nothing_else(self):
        dev = self.device_in(self.group)
        tok = self.grant(dev)["token"]
        img = "/v1/device/recovery/images/" + self.os_img["sha256"]
        routes = ("/v1/device/recovery/tuf/timestamp.json", "/v1/device/recovery/director/1.root.json", img)
        for path in routes:
            self.assertEqual(self.rget(tok, path)[0], 200, path)
            for bad, why in ((None, "no token"), ("f" * 64, "an unknown token"), (tok[:63], "a short token"),
                             (tok.upper(), "upper case")):
                st, _, raw = self.rget(bad, path)
                self.assertEqual((st, json.loads(raw)["error"]), (401, "unauthorized"), "%s: %s" % (path, why))
            st, _, _ = self.dev_client.request("GET", path, token=None, headers={"Authorization": "Basic " + tok})
            self.assertEqual(st, 401, "another scheme")
        # the mutual TLS routes and the manufacturer API stay closed to it
        for path in ("/v1/device/update", "/v1/device/whoami", "/v1/device/trust-bundle",
                     "/v1/device/tuf/timestamp.json", "/v1/device/director/1.root.json",
                     "/v1/device/images/" + self.os_img["sha256"],
                     "/v1/device/tuf/targets/aegis-os/%s.%s" % (self.os_img["sha256"], self.os_img["sha256"]),
                     "/v1/devices", "/v1/ota/repo/timestamp.json"):
            st, _, raw = self.rget(tok, path)
            self.assertEqual(st, 401, "%s: %r" % (path, raw[:200]))
        st, _, _ = self.dev_client.request("POST", "/v1/device/update/status", {"attempt_id": "a"}, token=tok)
        self.assertEqual(st, 401)

    def test_grant_ends_with_the_registration(self):
        """A grant is checked against the device's registration on every request, as a certificate is: a block,
        unclaim or delete since the refusal closes it at once (issue 14: lifecycle operations)."""
        path = "/v1/device/recovery/tuf/timestamp.json"
        for change in (("POST", "/block"), ("POST", "/unclaim"), ("DELETE", "")):
            dev = self.device_in(self.group)
            tok = self.grant(dev)["token"]
            self.assertEqual(self.rget(tok, path)[0], 200)
            st = self.api(change[0], "/v1/devices/" + dev.id + change[1])[0]
            self.assertIn(st, (200, 204), change)
            st, _, raw = self.rget(tok, path)
            self.assertEqual((st, json.loads(raw)["error"]), (401, "unauthorized"), change)

    # --- no grant ---

    def test_no_grant_for_other_refusals(self):
        dev = self.device_in(self.group)
        # the app is unknown, the platform fine
        self.assertNoGrant(dev, events=[BOOT, OS, event("app", "thermo", "9.9.9", 3)])
        # a log that does not replay to its composite, though its os is unknown
        self.assertNoGrant(dev, "log_mismatch", comp=bytes(32))
        # no proof of the identity key: a bad signature, a bad nonce
        other = test_attest.Device(self.tmp, "forger-%d" % self.n)
        self.assertNoGrant(dev, "bad_signature", sign_key=other.key)
        self.assertNoGrant(dev, "bad_nonce", nonce=os.urandom(32).hex())
        # blocked
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % dev.id))
        try:
            self.assertNoGrant(dev, "blocked")
        finally:
            self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % dev.id))
        self.grant(dev)  # the same device, refused for its os: a grant

    def test_no_grant_without_a_live_deployment_with_os_images(self):
        self.assertNoGrant(self.device_in(None))  # in no group
        self.assertNoGrant(self.device_in(self.new_group()))  # a group without a deployment
        g = self.new_group()
        self.deploy(g, [self.app_img["sha256"]], soak=3600)
        self.assertNoGrant(self.device_in(g))  # a deployment of app images only
        # paused: none; resumed: a grant; completed: still one; aborted: none
        g = self.new_group()
        dep = self.deploy(g, [self.os_img["sha256"]], waves=(50, 100), soak=3600)
        dev = self.device_in(g)
        self.assertOk(self.api("POST", "/v1/deployments/%d/pause" % dep["id"]))
        self.assertNoGrant(dev)
        self.assertOk(self.api("POST", "/v1/deployments/%d/resume" % dep["id"]))
        self.grant(dev)
        self.assertOk(self.api("POST", "/v1/deployments/%d/advance" % dep["id"]))
        done = self.assertOk(self.api("POST", "/v1/deployments/%d/advance" % dep["id"]))
        self.assertEqual(done["state"], "completed")
        self.grant(dev)
        g = self.new_group()
        dep = self.deploy(g, [self.os_img["sha256"]], soak=3600)
        dev = self.device_in(g)
        self.assertOk(self.api("POST", "/v1/deployments/%d/abort" % dep["id"]))
        self.assertNoGrant(dev)
        # an OS image that would be refused again (no reference value, or below the tenant's minimum): none
        g = self.new_group()
        self.deploy(g, [self.stray_img["sha256"]], soak=3600)
        dev = self.device_in(g)
        self.assertNoGrant(dev)
        self.d.ctl_local("refvals", "add", "--stage", "os", "--component", "aegis-os", "--version", "2.4.1",
                         "--svn", "9", "--digest", self.stray_img["sha256"])
        self.grant(dev)
        self.assertOk(self.api("PUT", "/v1/security-minimums/aegis-os", {"min_svn": 10}))
        try:
            self.assertNoGrant(dev)
        finally:
            self.api("DELETE", "/v1/security-minimums/aegis-os")

    def test_no_grant_while_halted(self):
        g = self.new_group()
        dep = self.deploy(g, [self.os_img["sha256"]], soak=3600, threshold=1, min_attempts=1)
        # a device with a certificate reports a failed attempt: the rollout halts itself
        reporter = test_mtls.Device(self.tmp, "reporter-%d" % self.n)
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": reporter.pub}],
                                                              "claim": True, "group_id": g}))
        tid = self.d.tenant_ids["acme"]
        base = os.path.join(self.d.pki_dir, "tenants", str(tid), "ca-1")
        cert = reporter.issue(base + ".crt", base + ".key", tid)
        c = test_mtls.MutualTLSTest.conn(self, cert, reporter.key)
        c.request("POST", "/v1/device/update/status", json.dumps(
            {"attempt_id": "a1", "deployment_id": dep["id"], "image": self.os_img["sha256"], "state": "failed",
             "reason": "flash write error"}), {"Content-Type": "application/json"})
        r = c.getresponse()
        self.assertEqual(r.status, 200, r.read())
        c.close()
        deadline = time.monotonic() + 15
        while self.assertOk(self.api("GET", "/v1/deployments/%d" % dep["id"]))["state"] != "halted":
            self.assertLess(time.monotonic(), deadline, "the deployment did not halt")
            time.sleep(0.3)
        dev = self.device_in(g)
        self.assertNoGrant(dev)
        self.assertOk(self.api("POST", "/v1/deployments/%d/resume" % dep["id"]))
        self.grant(dev)

    def test_new_refusal_replaces_the_grant(self):
        dev = self.device_in(self.group)
        first = self.grant(dev)["token"]
        path = "/v1/device/recovery/tuf/timestamp.json"
        self.assertEqual(self.rget(first, path)[0], 200)
        second = self.grant(dev)["token"]
        self.assertNotEqual(first, second)
        self.assertEqual(self.rget(first, path)[0], 401, "the old grant is gone")
        self.assertEqual(self.rget(second, path)[0], 200)
        # another device's grant does not replace it, nor a refusal without a grant, nor a pass (docs/update.md 8:
        # the grant lasts until it expires)
        self.grant(self.device_in(self.group))
        self.assertNoGrant(dev, events=[BOOT, OS, event("app", "thermo", "9.9.9", 3)])
        self.assertEqual(self.rget(second, path)[0], 200)
        self.assertEqual(self.attest(dev)[0], 200)
        self.assertEqual(self.rget(second, path)[0], 200)

