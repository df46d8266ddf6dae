"""Deployments, staged rollouts and the director (docs/update.md sections 4, 6, 7; docs/api.md "Deployments"; issue
11 items 3 and 4) against the real daemon: every transition (create, pause, resume, abort, manual advance, automatic
advance after soak, completed), the automatic halts (update failure rate, and real new-bucket and crash-rate flags
raised from telemetry ingested through POST /v1/device/telemetry), the director's answer verified with Ed25519 against
the tenant's director key, deterministic waves, ETag/304, tenant isolation and update status reports."""

import hashlib
import http.client
import json
import os
import ssl
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from test_telemetry import TelemetryBase, batch, crash, heartbeat


def position(device_id, deployment_id):
    """docs/update.md section 7: first 8 bytes of SHA-256(device_id ":" deployment_id), big-endian, mod 10000."""
    h = hashlib.sha256(("%s:%d" % (device_id, deployment_id)).encode()).digest()
    return int.from_bytes(h[:8], "big") % 10000


def wave_of(device_id, deployment_id, waves):
    pos = position(device_id, deployment_id)
    return next(i + 1 for i, pct in enumerate(waves) if pct * 100 > pos)


def canonical(obj):
    """TUF canonical JSON for what the director writes (ASCII strings, integers)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class DeployBase(TelemetryBase):
    """Helpers: products, groups, images published in each tenant's signed targets (docs/update.md section 2.3:
    a deployment offers only published images), deployments, device requests."""
    tenants = ("acme", "globex")

    @classmethod
    def prepare(cls):
        super().prepare()
        cls.ngroup = 0
        cls.products = {}
        cls.keydirs = {}
        for t in cls.tenants:
            st, _, p = cls.client.api("POST", "/v1/products", {"name": "gw"}, token=cls.d.tokens[t])
            assert st == 201, p
            cls.products[t] = p["id"]
            cls.keydirs[t] = os.path.join(cls.d.tmp, "ota-keys-" + t)
            p = cls.d.ctl("ota", "keys", "init", "--dir", cls.keydirs[t], "--yes", token=cls.d.tokens[t])
            assert p.returncode == 0, p.stdout + p.stderr

    def publish(self, tenant="acme"):
        """aegisctl ota sign: the tenant's images become its newest signed targets."""
        p = self.d.ctl("ota", "sign", "--dir", self.keydirs[tenant], "--yes", token=self.token_of(tenant))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    # --- helpers ---

    def group(self, tenant="acme"):
        type(self).ngroup += 1
        return self.create("/v1/device-groups", {"name": "g%d" % self.ngroup, "product_id": self.products[tenant]},
                           token=self.token_of(tenant))["id"]

    def image(self, component="aegis-os", version="2.0.0", tenant="acme", kind="os", publish=True, product=None):
        data = os.urandom(1000)
        q = urllib.parse.urlencode({"product_id": product or self.products[tenant], "component": component,
                                    "kind": kind, "version": version, "svn": 3, "hardware": "gw-a"})
        img = self.assertOk(self.api("POST", "/v1/images?" + q, data, token=self.token_of(tenant),
                                     content_type="application/octet-stream"), 201)
        if publish:
            self.publish(tenant)
        return img

    def deploy(self, group, images, tenant="acme", waves=(100,), soak=3600, threshold=20, min_attempts=1,
               status=201):
        body = {"group_id": group, "name": "rollout", "images": [i["sha256"] if isinstance(i, dict) else i
                                                                 for i in images],
                "waves": list(waves), "soak_seconds": soak, "failure_threshold_pct": threshold,
                "min_attempts": min_attempts}
        return self.api("POST", "/v1/deployments", body, token=self.token_of(tenant))

    def created(self, *a, **kw):
        return self.assertOk(self.deploy(*a, **kw), 201)

    def act(self, dep, action, tenant="acme", body=None):
        return self.api("POST", "/v1/deployments/%d/%s" % (dep["id"], action), body, token=self.token_of(tenant))

    def show(self, dep, tenant="acme"):
        return self.assertOk(self.api("GET", "/v1/deployments/%d" % dep["id"], token=self.token_of(tenant)))

    def wait_state(self, dep, state, timeout=25):
        deadline = time.monotonic() + timeout
        while True:
            d = self.show(dep)
            if d["state"] == state or time.monotonic() > deadline:
                return d
            time.sleep(0.3)

    def device_request(self, dc, method, path, body=None, headers=None):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.load_cert_chain(dc.cert, dc.dev.key)
        conn = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=30)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return r.status, r.headers, raw
        finally:
            conn.close()

    def check(self, dc, etag=None):
        st, hdrs, raw = self.device_request(dc, "GET", "/v1/device/update",
                                            headers={"If-None-Match": etag} if etag else None)
        return st, hdrs, raw

    def answer(self, dc, tenant="acme"):
        """The device's director answer, its signature verified with the tenant's director key."""
        st, hdrs, raw = self.check(dc)
        self.assertEqual(st, 200, raw[:300])
        env = json.loads(raw)
        path = os.path.join(self.d.pki_dir, "tenants", str(self.d.tenant_ids[tenant]), "tuf-director.ed25519")
        with open(path) as f:
            pub = bytes.fromhex(json.load(f)["keyval"]["public"])
        self.assertEqual(len(env["signatures"]), 1)
        Ed25519PublicKey.from_public_bytes(pub).verify(bytes.fromhex(env["signatures"][0]["sig"]),
                                                       canonical(env["signed"]))
        return env["signed"], hdrs["ETag"]

    def status(self, dc, dep, image, state, attempt="a1", reason=None):
        body = {"attempt_id": attempt, "deployment_id": dep["id"], "image": image["sha256"], "state": state}
        if reason is not None:
            body["reason"] = reason
        st, _, raw = self.device_request(dc, "POST", "/v1/device/update/status", body)
        return st, json.loads(raw) if raw else None

    def audit_actions(self, dep, tenant="acme"):
        items = self.list_all("/v1/audit", token=self.token_of(tenant))
        return [(a["action"], (a.get("detail") or {}).get("reason")) for a in reversed(items)
                if a.get("object_type") == "deployment" and str(a.get("object_id")) == str(dep["id"])]

    def metric(self, name):
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line.startswith(name)}


class DeploymentsTest(DeployBase):
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "flag_new_bucket_devices": 2,
              "flag_min_device_hours": 1, "flag_rate_factor_pct": 200, "update_status_burst": 50}

    # --- tests ---

    def test_create_validation_conflict_and_image_in_use(self):
        g, img = self.group(), self.image(version="2.0.1")
        for bad in ({"waves": (10, 50)}, {"waves": (50, 10, 100)}, {"waves": (0, 100)}, {"threshold": 0},
                    {"soak": -1}, {"min_attempts": 0}):
            kw = {"waves": bad.get("waves", (100,)), "soak": bad.get("soak", 60),
                  "threshold": bad.get("threshold", 20), "min_attempts": bad.get("min_attempts", 1)}
            self.assertError(self.deploy(g, [img], **kw), 400, "validation_failed")
        self.assertError(self.deploy(g, ["0" * 64]), 404, "not_found")
        self.assertError(self.deploy(g, ["xyz"]), 400, "validation_failed")
        self.assertError(self.deploy(self.group("globex"), [img]), 404, "not_found")
        other_img = self.image(tenant="globex", version="9.9.9")
        self.assertError(self.deploy(g, [other_img]), 404, "not_found")
        two = self.image(version="2.0.2")
        self.assertError(self.deploy(g, [img, two]), 400, "validation_failed")  # one image per component
        dep = self.created(g, [img], waves=(1, 10, 50, 100))
        self.assertEqual((dep["state"], dep["current_wave"], dep["waves"]), ("running", 1, [1, 10, 50, 100]))
        self.assertEqual([w["percent"] for w in dep["progress"]], [1, 9, 40, 50])
        self.assertError(self.deploy(g, [img]), 409, "conflict")
        self.assertError(self.api("DELETE", "/v1/images/" + img["sha256"]), 409, "conflict")
        self.assertOk(self.act(dep, "abort"))
        self.assertOk(self.api("DELETE", "/v1/images/" + img["sha256"]), 204)
        self.assertOk(self.deploy(g, [two]), 201)  # the group is free again

    def test_manual_transitions_are_audited(self):
        g, img = self.group(), self.image(version="2.1.0")
        dep = self.created(g, [img], waves=(10, 100))
        d = self.assertOk(self.act(dep, "pause", body={"reason": "looking at logs"}))
        self.assertEqual(d["state"], "paused")
        self.assertIn("looking at logs", d["reason"])
        self.assertIsNone(d["soak_remaining_s"])
        self.assertError(self.act(dep, "pause"), 409, "conflict")
        d = self.assertOk(self.act(dep, "resume"))
        self.assertEqual(d["state"], "running")
        self.assertGreater(d["soak_remaining_s"], 3000)
        d = self.assertOk(self.act(dep, "advance"))
        self.assertEqual((d["state"], d["current_wave"]), ("running", 2))
        d = self.assertOk(self.act(dep, "advance"))
        self.assertEqual(d["state"], "completed")
        self.assertError(self.act(dep, "abort"), 409, "conflict")
        self.assertError(self.act(dep, "resume"), 409, "conflict")
        dep2 = self.created(g, [img])
        self.assertEqual(self.assertOk(self.act(dep2, "abort"))["state"], "aborted")
        self.assertError(self.act(dep2, "advance"), 409, "conflict")
        acts = [a for a, _ in self.audit_actions(dep)]
        self.assertEqual(acts, ["deployment.create", "deployment.pause", "deployment.resume", "deployment.advance",
                                "deployment.advance"])
        reasons = dict(self.audit_actions(dep))
        self.assertIn("looking at logs", reasons["deployment.pause"])
        self.assertError(self.api("POST", "/v1/deployments/%d/pause" % dep["id"], {"bogus": 1}), 400,
                         "validation_failed")
        self.assertError(self.api("POST", "/v1/deployments/999999/pause"), 404, "not_found")

    def test_automatic_advance_after_soak_then_completed(self):
        g, img = self.group(), self.image(version="2.2.0")
        dep = self.created(g, [img], waves=(50, 100), soak=1)
        d = self.wait_state(dep, "completed")
        self.assertEqual((d["state"], d["current_wave"]), ("completed", 2), d)
        self.assertRegex(d["reason"], r"^completed: wave 2 soaked \d+ s$")
        acts = self.audit_actions(dep)
        self.assertEqual([a for a, _ in acts], ["deployment.create", "deployment.advance", "deployment.advance"])
        self.assertRegex(acts[1][1], r"^advanced: wave 1 soaked")
        listed = self.list_all("/v1/deployments")
        self.assertIn(dep["id"], [x["id"] for x in listed])
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        self.assertRegex(text, r'aegis_rollout_transitions_total\{kind="advance"\} [1-9]')
        self.assertIn('aegis_deployments{state="completed"}', text)

    def test_halt_on_update_failure_rate(self):
        g, img = self.group(), self.image(version="2.3.0")
        devs = [self.make_device(group=g) for _ in range(3)]
        dep = self.created(g, [img], threshold=50, min_attempts=2)
        self.assertEqual(self.status(devs[0], dep, img, "failed", reason="flash write error")[0], 200)
        time.sleep(1.5)
        self.assertEqual(self.show(dep)["state"], "running", "one finished attempt is below min_attempts")
        self.assertEqual(self.status(devs[1], dep, img, "rolled_back", reason="boot loop")[0], 200)
        d = self.wait_state(dep, "halted", timeout=10)
        self.assertEqual(d["state"], "halted", d)
        self.assertEqual(d["reason"], "halted: update failure rate 100% (2 of 2) in wave 1 \u2265 50%")
        p = d["progress"][0]
        self.assertEqual((p["devices"], p["failed"], p["rolled_back"], p["waiting"]), (3, 1, 1, 1))
        signed, _ = self.answer(devs[2])
        self.assertEqual(signed["targets"], {}, "a halted rollout offers nothing")
        self.assertEqual(self.audit_actions(dep)[-1][0], "deployment.halt")
        d = self.assertOk(self.act(dep, "resume"))  # the old attempts no longer count
        self.assertEqual(d["state"], "running")
        time.sleep(1.5)
        self.assertEqual(self.show(dep)["state"], "running")

    def test_halt_on_new_bucket_flag_from_telemetry(self):
        g, img = self.group(), self.image(component="aegis-app", version="3.0.0", kind="app")
        devs = [self.make_device(group=g) for _ in range(3)]
        dep = self.created(g, [img])
        for i, dc in enumerate(devs):
            st, _, body = dc.post(batch([crash(1, version="3.0.0", pc="0x300")]))
            self.assertEqual((st, body["stored"]), (200, 1), body)
        d = self.wait_state(dep, "halted", timeout=30)
        self.assertEqual(d["state"], "halted", d)
        bucket = [b for b in self.list_all("/v1/failures/buckets") if b["pc"] == "0x300"][0]
        self.assertEqual(d["reason"], "halted: bucket %s\u2026 on 3 devices in wave 1 (aegis-app 3.0.0)"
                         % bucket["signature"][:8])

    def test_halt_on_crash_rate_regression_from_telemetry(self):
        g = self.group()
        img = self.image(component="aegis-fw", version="2.0", kind="app")
        dep = self.created(g, [img])
        a, b = self.make_device(group=g), self.make_device(group=g)
        # version 1.0: 2 device-hours, 1 crash; version 2.0: 2 device-hours, 5 crashes (as in test_telemetry)
        for dc, reports in ((a, [heartbeat(1, images={"aegis-fw": "1.0"}),
                                 crash(2, component="aegis-fw", version="1.0", pc="0x400"),
                                 heartbeat(3, images={"aegis-fw": "2.0"})] +
                                [crash(4 + i, component="aegis-fw", version="2.0", pc="0x500") for i in range(3)]),
                            (b, [heartbeat(1, images={"aegis-fw": "1.0"}), heartbeat(2, images={"aegis-fw": "2.0"}),
                                 crash(3, component="aegis-fw", version="2.0", pc="0x500"),
                                 crash(4, component="aegis-fw", version="2.0", pc="0x500")])):
            st, _, body = dc.post(batch(reports))
            self.assertEqual((st, body["rejected"]), (200, 0), body)
        d = self.wait_state(dep, "halted", timeout=30)
        self.assertEqual(d["state"], "halted", d)
        self.assertEqual(d["reason"], "halted: crash rate of aegis-fw 2.0 is 2.50 per device-hour, above 1.0's 0.50, "
                                      "in wave 1")

    def test_director_answer_etag_and_waves(self):
        g, img = self.group(), self.image(version="2.4.0")
        devs = [self.make_device(group=g) for _ in range(6)]
        outsider = self.make_device()
        signed, etag0 = self.answer(devs[0])
        self.assertEqual((signed["_type"], signed["targets"]), ("targets", {}))
        self.assertIsNone(signed["custom"]["deployment_id"])
        dep = self.created(g, [img], waves=(30, 100))
        waves = {dc.dev.id: wave_of(dc.dev.id, dep["id"], [30, 100]) for dc in devs}
        for _ in range(60):  # positions are random: make sure both waves have a device (bounded)
            if set(waves.values()) == {1, 2}:
                break
            devs.append(self.make_device(group=g))
            waves[devs[-1].dev.id] = wave_of(devs[-1].dev.id, dep["id"], [30, 100])
        self.assertEqual(set(waves.values()), {1, 2})
        for dc in devs:
            signed, etag = self.answer(dc)
            self.assertNotEqual(etag, etag0)
            self.assertGreater(signed["version"], 0)
            self.assertEqual(signed["custom"]["device_id"], dc.dev.id)
            self.assertEqual(signed["custom"]["tenant_id"], self.d.tenant_ids["acme"])
            self.assertRegex(signed["expires"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            if waves[dc.dev.id] == 1:
                path = "aegis-os/" + img["sha256"]
                self.assertEqual(list(signed["targets"]), [path])
                t = signed["targets"][path]
                self.assertEqual((t["length"], t["hashes"]["sha256"]), (img["size"], img["sha256"]))
                self.assertEqual(t["custom"], {"component": "aegis-os", "kind": "os", "version": "2.4.0", "svn": 3,
                                               "hardware": "gw-a", "product_id": self.products["acme"],
                                               "deployment_id": dep["id"]})
                self.assertEqual((signed["custom"]["deployment_id"], signed["custom"]["wave"]), (dep["id"], 1))
            else:
                self.assertEqual(signed["targets"], {}, "wave 2 waits")
        progress = self.show(dep)["progress"]
        self.assertEqual([p["devices"] for p in progress],
                         [sum(1 for w in waves.values() if w == 1), sum(1 for w in waves.values() if w == 2)])
        # ETag / If-None-Match
        signed, etag = self.answer(devs[0])
        st, hdrs, raw = self.check(devs[0], etag)
        self.assertEqual((st, raw, hdrs["ETag"]), (304, b"", etag))
        st, _, _ = self.check(devs[0], '"0-nope"')
        self.assertEqual(st, 200)
        # the next wave: every device now gets the image, with a higher version
        v0 = signed["version"]
        self.assertOk(self.act(dep, "advance"))
        for dc in devs:
            signed, etag2 = self.answer(dc)
            self.assertGreater(signed["version"], v0)
            self.assertEqual(list(signed["targets"]), ["aegis-os/" + img["sha256"]])
            self.assertEqual(signed["custom"]["wave"], waves[dc.dev.id])
        self.assertEqual(self.check(devs[0], etag)[0], 200, "the old ETag is stale")
        signed, _ = self.answer(outsider)
        self.assertEqual(signed["targets"], {}, "a device outside the group gets nothing")
        self.assertOk(self.act(dep, "pause"))
        signed, _ = self.answer(devs[0])
        self.assertEqual(signed["targets"], {}, "a paused rollout offers nothing")

    def test_tenant_isolation(self):
        g, img = self.group(), self.image(version="2.5.0")
        dep = self.created(g, [img])
        dc = self.make_device(group=g)
        gx = self.group("globex")
        ximg = self.image(tenant="globex", version="2.5.0")
        xdep = self.created(gx, [ximg], tenant="globex")
        xdc = self.make_device(tenant="globex", group=gx)
        self.assertError(self.api("GET", "/v1/deployments/%d" % dep["id"], token=self.token_of("globex")), 404,
                         "not_found")
        for action in ("pause", "resume", "abort", "advance"):
            self.assertError(self.act(dep, action, tenant="globex"), 404, "not_found")
        ids = [x["id"] for x in self.list_all("/v1/deployments", token=self.token_of("globex"))]
        self.assertEqual(ids, [xdep["id"]])
        signed, _ = self.answer(xdc, tenant="globex")
        self.assertEqual(list(signed["targets"]), ["aegis-os/" + ximg["sha256"]])
        signed, _ = self.answer(dc)
        self.assertEqual(list(signed["targets"]), ["aegis-os/" + img["sha256"]])
        st, body = self.status(xdc, dep, img, "downloading")
        self.assertEqual(st, 404, body)

    def test_status_reports(self):
        g, img = self.group(), self.image(version="2.6.0")
        other = self.image(version="2.6.1")
        dep = self.created(g, [img])
        dc = self.make_device(group=g)
        self.assertEqual(self.status(dc, dep, img, "downloading"), (200, {"attempt_id": "a1", "deployment_id": dep["id"],
                                                                         "state": "downloading", "wave": 1,
                                                                         "changed": True}))
        self.assertEqual(self.status(dc, dep, img, "downloading")[1]["changed"], False)
        self.assertEqual(self.status(dc, dep, img, "installed")[0], 200)
        self.assertEqual(self.status(dc, dep, img, "downloading")[0], 409, "states move forward only")
        self.assertEqual(self.status(dc, dep, img, "committed")[0], 200)
        st, body = self.status(dc, dep, img, "committed")
        self.assertEqual((st, body["changed"]), (200, False))
        self.assertEqual(self.status(dc, dep, img, "failed", reason="x")[0], 409, "a terminal state is final")
        self.assertEqual(self.status(dc, dep, img, "failed", attempt="a2")[0], 400, "a failure needs a reason")
        self.assertEqual(self.status(dc, dep, img, "failed", attempt="a2", reason="r" * 201)[0], 400)
        self.assertEqual(self.status(dc, dep, img, "downloading", attempt="bad id!")[0], 400)
        self.assertEqual(self.status(dc, dep, img, "downloading", attempt="x" * 65)[0], 400)
        self.assertEqual(self.status(dc, dep, img, "exploded", attempt="a3")[0], 400)
        big = {"attempt_id": "a5", "deployment_id": dep["id"], "image": img["sha256"], "state": "downloading",
               "padding": "p" * 5000}
        self.assertEqual(self.device_request(dc, "POST", "/v1/device/update/status", big)[0], 413, "4 KiB at most")
        self.assertEqual(self.status(dc, dep, other, "downloading", attempt="a4")[0], 400, "not the deployment's")
        self.assertEqual(self.status(dc, {"id": 999999}, img, "downloading", attempt="a5")[0], 404)
        self.assertEqual(self.status(dc, dep, img, "failed", attempt="a6", reason="disk full")[0], 200)
        p = self.show(dep)["progress"][0]
        self.assertEqual((p["devices"], p["failed"] + p["committed"], p["waiting"]), (1, 1, 0),
                         "the device's latest attempt counts, once")
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        self.assertRegex(text, r'aegis_update_attempts_total\{state="committed"\} [1-9]')
        self.assertRegex(text, r'aegis_update_attempts_total\{state="downloading"\} [1-9]')
        # The device's attempts through the manufacturer's API (the dashboard's device view), newest first.
        path = "/v1/devices/%s/update-attempts" % dc.dev.id
        items = self.assertOk(self.api("GET", path))["items"]
        self.assertEqual(sorted((a["attempt_id"], a["state"], a["reason"], a["deployment_id"]) for a in items),
                         [("a1", "committed", None, dep["id"]), ("a6", "failed", "disk full", dep["id"])])
        self.assertTrue(all(a["finished_at"] and a["image"] == img["sha256"] and a["wave"] == 1 for a in items))
        first = self.assertOk(self.api("GET", path + "?limit=1"))
        self.assertEqual(len(first["items"]), 1)
        rest = self.assertOk(self.api("GET", path + "?limit=1&cursor=" + first["next_cursor"]))
        self.assertEqual([first["items"][0]["attempt_id"], rest["items"][0]["attempt_id"]],
                         [a["attempt_id"] for a in items], "pages follow the first answer's order")
        self.assertIsNone(rest["next_cursor"])
        self.assertError(self.api("GET", path, token=self.token_of("globex")), 404, "not_found")
        self.assertError(self.api("GET", path + "?cursor=nodot"), 400, "bad_request")

    def test_cli(self):
        g, img = self.group(), self.image(version="2.7.0")
        p = self.d.ctl("deployments", "create", str(g), "cli rollout", "--images", img["sha256"], "--waves", "10,100",
                       "--soak", "600", "--threshold", "30", "--min-attempts", "5", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        dep = json.loads(p.stdout)
        self.assertEqual((dep["waves"], dep["soak_seconds"], dep["failure_threshold_pct"], dep["min_attempts"]),
                         ([10, 100], 600, 30, 5))
        p = self.d.ctl("deployments", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("ID"), p.stdout)
        self.assertIn("cli rollout", p.stdout)
        p = self.d.ctl("deployments", "pause", str(dep["id"]), "--reason", "checking", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["state"], "paused")
        self.assertEqual(self.d.ctl("deployments", "pause", str(dep["id"])).returncode, 1, "409: already paused")
        for action, state in (("resume", "running"), ("advance", "running"), ("abort", "aborted")):
            p = self.d.ctl("deployments", action, str(dep["id"]), json_out=True)
            self.assertEqual((p.returncode, json.loads(p.stdout)["state"]), (0, state), p.stderr)
        p = self.d.ctl("deployments", "show", str(dep["id"]), json_out=True)
        self.assertEqual(json.loads(p.stdout)["progress"][0]["wave"], 1)
        self.assertEqual(self.d.ctl("deployments", "create", str(g), "x", "--waves", "10,50").returncode, 2)

    # --- review fixes (docs/update.md sections 4, 6, 7) ---

    def test_create_refuses_unpublished_and_other_product(self):
        g = self.group()
        img = self.image(version="3.1.0", publish=False)
        st, _, body = self.deploy(g, [img])
        self.assertEqual((st, body["error"]), (409, "not_published"), body)
        self.assertIn("aegisctl ota sign", body["message"])
        self.publish()
        other = self.create("/v1/products", {"name": "other"})["id"]
        foreign = self.image(version="3.1.1", product=other)
        self.assertError(self.deploy(g, [foreign]), 400, "validation_failed")
        self.assertError(self.deploy(g, ["A" * 64]), 400, "validation_failed")
        self.created(g, [img])

    def test_image_of_a_completed_deployment_is_in_use(self):
        g, img = self.group(), self.image(version="3.2.0")
        dep = self.created(g, [img])
        self.assertEqual(self.assertOk(self.act(dep, "advance"))["state"], "completed")
        self.assertError(self.api("DELETE", "/v1/images/" + img["sha256"]), 409, "conflict")
        dc = self.make_device(group=g)
        signed, _ = self.answer(dc)
        self.assertEqual(list(signed["targets"]), ["aegis-os/" + img["sha256"]])

    def test_status_reports_only_for_the_devices_group_and_wave(self):
        g, img = self.group(), self.image(version="3.3.0")
        dep = self.created(g, [img], waves=(1, 100))
        devs = [self.make_device(group=g) for _ in range(4)]
        late = next(dc for dc in devs if wave_of(dc.dev.id, dep["id"], [1, 100]) == 2)
        st, body = self.status(late, dep, img, "failed", reason="not my wave")
        self.assertEqual((st, body["error"]), (409, "conflict"), body)
        outsider = self.make_device(group=self.group())
        st, body = self.status(outsider, dep, img, "failed", reason="not my group")
        self.assertEqual((st, body["error"]), (404, "not_found"), body)
        self.assertEqual(self.show(dep)["state"], "running")
        upper = {"attempt_id": "u1", "deployment_id": dep["id"], "image": img["sha256"].upper(), "state": "downloading"}
        st, _, raw = self.device_request(late, "POST", "/v1/device/update/status", upper)
        self.assertEqual((st, json.loads(raw)["error"]), (400, "validation_failed"))
        self.assertOk(self.act(dep, "advance"))
        self.assertEqual(self.status(late, dep, img, "downloading")[0], 200)

    def test_halt_counts_devices_not_attempts(self):
        g, img = self.group(), self.image(version="3.4.0")
        a, b = self.make_device(group=g), self.make_device(group=g)
        dep = self.created(g, [img], threshold=60, min_attempts=2)
        for i in range(3):
            self.assertEqual(self.status(a, dep, img, "failed", attempt="f%d" % i, reason="flash")[0], 200)
        self.assertEqual(self.status(b, dep, img, "committed", attempt="ok")[0], 200)
        time.sleep(2.5)
        self.assertEqual(self.show(dep)["state"], "running", "1 of 2 devices failed: 50% < 60%")

    def test_attempt_cap_and_rate_limit(self):
        g, img = self.group(), self.image(version="3.5.0")
        dep = self.created(g, [img])
        capped, flood = self.make_device(group=g), self.make_device(group=g)
        for i in range(32):
            self.assertEqual(self.status(capped, dep, img, "downloading", attempt="c%d" % i)[0], 200)
        st, body = self.status(capped, dep, img, "downloading", attempt="c32")
        self.assertEqual((st, body["error"]), (409, "conflict"), body)
        self.assertIn("32 attempts", body["message"])
        body = {"attempt_id": "r", "deployment_id": dep["id"], "image": img["sha256"], "state": "downloading"}
        seen = None
        for _ in range(80):
            st, hdrs, raw = self.device_request(flood, "POST", "/v1/device/update/status", body)
            if st == 429:
                seen = (hdrs, json.loads(raw))
                break
        self.assertIsNotNone(seen, "no 429 after 80 reports with a burst of 50")
        self.assertGreaterEqual(int(seen[0]["Retry-After"]), 1)
        self.assertEqual(seen[1]["error"], "rate_limited")

    def test_moving_a_device_bumps_the_version(self):
        g1, g2, img = self.group(), self.group(), self.image(version="3.6.0")
        self.created(g1, [img])
        dc = self.make_device(group=g2)
        before, etag = self.answer(dc)
        self.assertEqual(before["targets"], {})
        self.assertOk(self.api("PATCH", "/v1/devices/" + dc.dev.id, {"group_id": g1}))
        after, etag2 = self.answer(dc)
        self.assertEqual(list(after["targets"]), ["aegis-os/" + img["sha256"]])
        self.assertGreater(after["version"], before["version"], "another answer, a higher version")
        self.assertNotEqual(etag, etag2)

    def test_wave_progress_in_metrics(self):
        g, img = self.group(), self.image(version="3.7.0")
        dc = self.make_device(group=g)
        dep = self.created(g, [img])
        self.assertEqual(self.status(dc, dep, img, "installed")[0], 200)
        deadline = time.monotonic() + 15
        while True:
            m = self.metric("aegis_rollout_wave_devices")
            if m.get('aegis_rollout_wave_devices{state="in_progress"}', 0) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreaterEqual(m.get('aegis_rollout_wave_devices{state="in_progress"}', 0), 1, m)
        self.assertGreaterEqual(m['aegis_rollout_wave_devices{state="devices"}'], 1)
        self.assertEqual(set(m), {'aegis_rollout_wave_devices{state="%s"}' % s for s in
                                  ("devices", "waiting", "in_progress", "committed", "rolled_back", "failed")})


class DirectorCacheTest(DeployBase):
    """The director keeps at most director_cache_max answers and drops one at random for each new one, instead of
    emptying its cache (docs/update.md section 4): five devices polling in turn through a cache of four mostly hit."""
    tenants = ("acme",)
    config = {"director_cache_max": 4}

    def test_eviction_is_per_entry(self):
        g = self.group()
        devs = [self.make_device(group=g) for _ in range(5)]
        for dc in devs:
            self.answer(dc)
        time.sleep(1.5)  # the counter is copied into /metrics every second
        built = self.metric("aegis_director_answers_built_total")["aegis_director_answers_built_total"]
        for _ in range(2):
            for dc in devs:
                self.answer(dc)
        time.sleep(1.5)
        again = self.metric("aegis_director_answers_built_total")["aegis_director_answers_built_total"] - built
        self.assertLessEqual(again, 8, "emptying the cache at its limit rebuilds all 10")
