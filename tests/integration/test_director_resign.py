"""The director's re-signing (docs/update.md 4) under libfaketime: answers expire one day after their generation
was made, and the cron step bumps the generation of a tenant whose answers are 12 hours old. The daemon restarted
13 hours in its future gives a device an answer of a higher version expiring in that future, and the device's old
ETag no longer answers 304."""

import calendar
import os
import time
import unittest
import urllib.parse

import harness
import test_mtls
import test_sim
import test_deployments

FAKETIME_LIB = test_sim.FAKETIME_LIB


def parse_time(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


class DirectorResignTest(harness.DaemonTestCase):
    tenants = ("acme",)

    @unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime missing (deploy/install-deps.sh installs it)")
    def test_answer_resigned_13_hours_later(self):
        product = self.create("/v1/products", {"name": "gw"})["id"]
        group = self.create("/v1/device-groups", {"name": "g", "product_id": product})["id"]
        q = urllib.parse.urlencode({"product_id": product, "component": "aegis-os", "kind": "os",
                                    "version": "2.0.0", "svn": 1, "hardware": "gw"})
        img = self.assertOk(self.api("POST", "/v1/images?" + q, os.urandom(1000),
                                     content_type="application/octet-stream"), 201)
        self.d.ota_publish(os.path.join(self.d.tmp, "ota-keys"))
        self.create("/v1/deployments", {"group_id": group, "name": "r", "images": [img["sha256"]], "waves": [100],
                                        "soak_seconds": 0, "failure_threshold_pct": 50, "min_attempts": 1})
        tmp = os.path.join(self.d.tmp, "devices")
        dev = test_mtls.Device(tmp, "d1")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}], "claim": True,
                                                              "group_id": group}))
        tid = self.d.tenant_ids["acme"]
        base = os.path.join(self.d.pki_dir, "tenants", str(tid), "ca-1")
        dev.cert = dev.issue(base + ".crt", base + ".key", tid, days=2)
        dc = type("DC", (), {"cert": dev.cert, "dev": dev})

        # the deployment completes within a second (soak 0): wait for the answer to settle
        time.sleep(2)
        before, etag = test_deployments.DeploymentsTest.answer(self, dc)
        self.assertEqual(list(before["targets"]), ["aegis-os/" + img["sha256"]])
        self.assertAlmostEqual(parse_time(before["expires"]), time.time() + 86400, delta=120)
        self.assertEqual(self.check(dc, etag)[0], 304)

        self.restart_in_future("+13h")
        deadline = time.monotonic() + 30
        after = before
        while after["version"] <= before["version"]:
            self.assertLess(time.monotonic(), deadline, "no new generation 13 hours later")
            time.sleep(0.3)
            after, etag2 = test_deployments.DeploymentsTest.answer(self, dc)
        self.assertEqual(after["targets"], before["targets"])
        # the new answer expires a day after the daemon's (fake) now, 13 hours after the real one
        self.assertAlmostEqual(parse_time(after["expires"]), time.time() + 13 * 3600 + 86400, delta=300)
        self.assertNotEqual(etag2, etag)
        st, hdrs, raw = self.check(dc, etag)
        self.assertEqual(st, 200, "the old ETag is stale")
        self.assertEqual(hdrs["ETag"], etag2)
        self.assertEqual(self.check(dc, etag2)[0], 304)

    check = test_deployments.DeploymentsTest.check
    device_request = test_deployments.DeploymentsTest.device_request
    restart_in_future = test_sim.ExpiredCertTest.restart_in_future
