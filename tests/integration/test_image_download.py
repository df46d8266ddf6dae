"""Image download for devices (docs/update.md 5, issue 11 item 5) against the real daemon: GET and HEAD
/v1/device/images/<sha256> over mutual TLS stream the tenant's image from disk with single byte ranges (206, 416,
If-Range, several ranges answered whole), so an interrupted download resumes with the exact bytes; another
tenant's image, a malformed or unknown digest are one 404; the daemon's RSS does not grow with the image. A device
gets only the images its director answer names (its group's deployment once its wave is in): an image of the
tenant outside the deployment, a device of another group, a device whose wave has not come (until the advance)
and a paused deployment are the same 404; the TUF consistent target path serves the same bytes. Also the
device-state cache of device authentication (devstate.h): a block or unblock through the API of this daemon, or
of another daemon on the same database, takes effect on the very next request."""

import hashlib
import http.client
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse

import harness
from test_deployments import position
from test_images import rss_kib, without_asan_quarantine
from test_mtls import Device

BIG = 48 * 1024 * 1024


class RolloutFixtures:
    """Device groups and deployments for a class with cls.client and cls.product (and cls.ngroups = 0)."""

    @classmethod
    def new_group(cls):
        cls.ngroups += 1
        st, _, body = cls.client.api("POST", "/v1/device-groups", {"name": "g%d" % cls.ngroups,
                                                                   "product_id": cls.product})
        assert st == 201, body
        return body["id"]

    @classmethod
    def deploy(cls, group, shas, waves=(100,), soak=0, threshold=50, min_attempts=10):
        """A running deployment of shas to group (by default soak 0 and one wave: it completes within a second;
        either way every device of the group is offered the images), published in the tenant's TUF repository
        first."""
        cls.d.ota_publish(os.path.join(cls.d.tmp, "ota-keys"))
        st, _, body = cls.client.api("POST", "/v1/deployments", {
            "group_id": group, "name": "release", "images": list(shas), "waves": list(waves),
            "soak_seconds": soak, "failure_threshold_pct": threshold, "min_attempts": min_attempts})
        assert st == 201, body
        return body


class ImageDownloadTest(RolloutFixtures, harness.DaemonTestCase):
    tenants = ("acme", "globex")
    config = {"image_max_bytes": 64 * 1024 * 1024}

    @classmethod
    def daemon_env(cls):
        return without_asan_quarantine()  # test_rss_flat_during_a_large_download measures the daemon

    @classmethod
    def prepare(cls):
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gateway"})
        assert st == 201, body
        cls.product = body["id"]
        cls.data = os.urandom(3 * 1024 * 1024 + 4321)
        cls.sha = cls.upload(cls.data, "2.1.0")
        cls.tmp = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.tmp)
        cls.ngroups = 0
        # the devices of this group are offered the image: a deployment of it, every wave at once
        cls.group = cls.new_group()
        cls.deployment = cls.deploy(cls.group, [cls.sha])
        cls.dev, cls.cert = cls.device("acme", "a1")

    @classmethod
    def upload(cls, data, version, token=None, product=None, component="aegis-os"):
        q = {"product_id": product or cls.product, "component": component, "kind": "os", "version": version,
             "svn": 1, "hardware": "gw"}
        st, _, body = cls.client.api("POST", "/v1/images?" + urllib.parse.urlencode(q), data,
                                     token=token or cls.d.token, content_type="application/octet-stream")
        assert st in (200, 201), (st, body)
        return body["sha256"]

    @classmethod
    def device(cls, tenant, name, group=...):
        """A claimed device of tenant (in the class's group for acme unless group says otherwise, None: in
        none) with a certificate from the tenant's issuing CA."""
        dev = Device(cls.tmp, name)
        imp = {"devices": [{"public_key": dev.pub}], "claim": True}
        group = (cls.group if tenant == "acme" else None) if group is ... else group
        if group is not None:
            imp["group_id"] = group
        st, _, body = cls.client.api("POST", "/v1/devices/import", imp, token=cls.d.tokens[tenant])
        assert st in (200, 201), body
        tid = cls.d.tenant_ids[tenant]
        base = os.path.join(cls.d.pki_dir, "tenants", str(tid), "ca-1")
        return dev, dev.issue(base + ".crt", base + ".key", tid)

    def conn(self, cert=None, key=None, port=None):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        if cert is not None:
            ctx.load_cert_chain(cert, key)
        return http.client.HTTPSConnection("127.0.0.1", port or self.d.port, context=ctx, timeout=30)

    def fetch(self, path=None, headers=None, method="GET", c=None):
        """(status, headers, body) of one request as the acme device."""
        c = c or self.conn(self.cert, self.dev.key)
        c.request(method, path or "/v1/device/images/" + self.sha, headers=headers or {})
        r = c.getresponse()
        return r.status, r.headers, r.read()

    def test_whole_download(self):
        st, h, body = self.fetch()
        self.assertEqual(st, 200)
        self.assertEqual(body, self.data)
        self.assertEqual(h["Accept-Ranges"], "bytes")
        self.assertEqual(h["ETag"], '"%s"' % self.sha)
        self.assertEqual(int(h["Content-Length"]), len(self.data))
        self.assertEqual(h["Content-Type"], "application/octet-stream")
        # the validator answers 304
        st, h, body = self.fetch(headers={"If-None-Match": '"%s"' % self.sha})
        self.assertEqual((st, body), (304, b""))

    def test_ranges(self):
        n = len(self.data)
        c = self.conn(self.cert, self.dev.key)  # all on one keep-alive connection
        for rng, first, last in (("bytes=0-99", 0, 99), ("bytes=1000-1999", 1000, 1999), ("bytes=-500", n - 500, n - 1),
                                 ("bytes=%d-" % (n - 77), n - 77, n - 1), ("bytes=5-%d" % (n * 2), 5, n - 1),
                                 ("bytes=-%d" % (n + 10), 0, n - 1), ("bytes=%d-%d" % (n - 1, n - 1), n - 1, n - 1)):
            with self.subTest(range=rng):
                st, h, body = self.fetch(headers={"Range": rng}, c=c)
                self.assertEqual(st, 206)
                self.assertEqual(h["Content-Range"], "bytes %d-%d/%d" % (first, last, n))
                self.assertEqual(body, self.data[first:last + 1])
                self.assertEqual(h["ETag"], '"%s"' % self.sha)
        for rng in ("bytes=%d-" % n, "bytes=%d-%d" % (n + 5, n + 10), "bytes=-0"):
            with self.subTest(range=rng):
                st, h, body = self.fetch(headers={"Range": rng}, c=c)
                self.assertEqual(st, 416)
                self.assertEqual(h["Content-Range"], "bytes */%d" % n)
                self.assertEqual(json.loads(body)["error"], "range_not_satisfiable")
        # several ranges, another unit, malformed: the whole body
        for rng in ("bytes=0-9,20-29", "items=0-9", "bytes=9-3", "bytes=abc", "bytes=0-1x", "bytes 0-9"):
            with self.subTest(range=rng):
                st, h, body = self.fetch(headers={"Range": rng}, c=c)
                self.assertEqual((st, body == self.data), (200, True))
                self.assertNotIn("Content-Range", h)
        # If-Range: the strong tag applies the range, anything else answers whole
        st, _, body = self.fetch(headers={"Range": "bytes=0-9", "If-Range": '"%s"' % self.sha}, c=c)
        self.assertEqual((st, body), (206, self.data[:10]))
        for ifr in ('"%s"' % ("0" * 64), 'W/"%s"' % self.sha, "Sat, 01 Jan 2000 00:00:00 GMT"):
            st, _, body = self.fetch(headers={"Range": "bytes=0-9", "If-Range": ifr}, c=c)
            self.assertEqual((st, len(body)), (200, len(self.data)))

    def test_resume_after_interruption(self):
        """A download cut after some bytes resumes with Range from there; the pieces are the image."""
        c = self.conn(self.cert, self.dev.key)
        c.request("GET", "/v1/device/images/" + self.sha)
        r = c.getresponse()
        got = r.read(1234567)
        c.close()  # interrupted
        self.assertEqual(len(got), 1234567)
        st, h, rest = self.fetch(headers={"Range": "bytes=%d-" % len(got), "If-Range": r.headers["ETag"]})
        self.assertEqual(st, 206)
        self.assertEqual(got + rest, self.data)
        self.assertEqual(hashlib.sha256(got + rest).hexdigest(), self.sha)

    def test_head(self):
        st, h, body = self.fetch(method="HEAD", headers={"Range": "bytes=0-9"})
        self.assertEqual((st, body), (200, b""))  # Range applies to GET only
        self.assertEqual(int(h["Content-Length"]), len(self.data))
        self.assertEqual(h["ETag"], '"%s"' % self.sha)

    def test_not_found(self):
        gtok = self.d.tokens["globex"]
        st, _, body = self.client.api("POST", "/v1/products", {"name": "globex-gw"}, token=gtok)
        self.assertEqual(st, 201, body)
        other_sha = self.upload(os.urandom(1000), "9.9.9", token=gtok, product=body["id"])
        for path, why in (("/v1/device/images/" + other_sha, "another tenant's"),
                          ("/v1/device/images/" + "0" * 64, "unknown"),
                          ("/v1/device/images/" + self.sha.upper(), "upper case"),
                          ("/v1/device/images/" + self.sha[:63], "short"),
                          ("/v1/device/images/..%2F..%2Fpki%2Froot.key", "traversal")):
            with self.subTest(why=why):
                st, _, body = self.fetch(path)
                self.assertEqual(st, 404, body)
                self.assertEqual(json.loads(body)["error"], "not_found")
        # the other tenant's device does not see acme's image
        gdev, gcert = self.device("globex", "g1")
        st, _, body = self.fetch(c=self.conn(gcert, gdev.key))
        self.assertEqual(st, 404, body)

    def test_no_client_certificate_is_refused(self):
        st, _, body = self.fetch(c=self.conn())
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(body)["error"], "unauthorized")

    def test_rss_flat_during_a_large_download(self):
        data = os.urandom(BIG)
        sha = self.upload(data, "3.0.0")
        g = self.new_group()
        self.deploy(g, [sha])
        dev, cert = self.device("acme", "big", group=g)
        pid = self.d.proc.pid
        c = self.conn(cert, dev.key)
        c.request("GET", "/v1/device/images/" + sha)
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        base = rss_kib(pid)
        peak, h = base, hashlib.sha256()
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            peak = max(peak, rss_kib(pid))
            time.sleep(0.002)  # a slow reader: the daemon must not buffer ahead
        self.assertEqual((n, h.hexdigest()), (BIG, sha))
        growth = (peak - base) / 1024
        print("\nimage download: rss_base_mib=%.1f rss_growth_mib=%.1f size_mib=%d" % (base / 1024, growth, BIG >> 20))
        self.assertLess(growth, 8, "RSS grew %.1f MiB while a %d MiB image downloaded" % (growth, BIG >> 20))

    def test_block_takes_effect_on_next_request(self):
        dev, cert = self.device("acme", "blk")
        c = self.conn(cert, dev.key)  # one keep-alive connection: its chain is verified once
        rng = {"Range": "bytes=0-9"}
        self.assertEqual(self.fetch(headers=rng, c=c)[0], 206)
        for _ in range(3):
            self.assertOk(self.api("POST", "/v1/devices/%s/block" % dev.id))
            st, _, body = self.fetch(headers=rng, c=c)
            self.assertEqual(st, 403, body)
            self.assertEqual(json.loads(body)["error"], "device_blocked")
            self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % dev.id))
            self.assertEqual(self.fetch(headers=rng, c=c)[0], 206)

    def test_block_through_another_daemon_on_the_database(self):
        """Two daemons on one database (docs/protocol.md 3): a block through the second one's API is seen by the
        first one's next request (the device-state generations are shared through a file beside the database)."""
        dev, cert = self.device("acme", "blk2")
        ready = os.path.join(os.path.dirname(self.d.ready_file), "ready2")
        argv = [a if a != self.d.ready_file else ready for a in self.d.argv()]
        err = open(os.path.join(self.d.tmp, "aegisd2.stderr"), "wb")
        p2 = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            deadline = time.monotonic() + 30
            while not (os.path.exists(ready) and open(ready).read().endswith("\n")):
                self.assertIsNone(p2.poll(), "the second daemon exited")
                self.assertLess(time.monotonic(), deadline, "the second daemon is not ready")
                time.sleep(0.05)
            port2 = int(open(ready).read())
            other = self.conn(port=port2)

            def api2(path):
                other.request("POST", path, headers={"Authorization": "Bearer " + self.d.token})
                r = other.getresponse()
                r.read()
                self.assertEqual(r.status, 200)

            c = self.conn(cert, dev.key)
            rng = {"Range": "bytes=0-9"}
            for _ in range(3):
                self.assertEqual(self.fetch(headers=rng, c=c)[0], 206)
                api2("/v1/devices/%s/block" % dev.id)
                st, _, body = self.fetch(headers=rng, c=c)
                self.assertEqual(st, 403, body)
                api2("/v1/devices/%s/unblock" % dev.id)
                self.assertEqual(self.fetch(headers=rng, c=c)[0], 206)
            other.close()
        finally:
            p2.terminate()
            p2.wait(timeout=30)
            err.close()

    def test_concurrent_downloads(self):
        """Several devices' downloads at once each get the exact bytes."""
        results = []

        def one(i):
            st, _, body = self.fetch(headers={"Range": "bytes=%d-" % (i * 1000)})
            results.append(st == 206 and body == self.data[i * 1000:])

        ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(results, [True] * 6)

    # --- only what the director answer names (docs/update.md 4, 5) ---

    def assertNotFound(self, dev, cert, path, why=""):
        st, _, body = self.fetch(path, c=self.conn(cert, dev.key))
        self.assertEqual(st, 404, "%s: %r" % (why, body[:200]))
        self.assertEqual(json.loads(body)["error"], "not_found", why)

    def test_image_outside_the_deployment(self):
        """An image of the tenant that the device's deployment does not ship: 404, also by HEAD."""
        other = self.upload(os.urandom(5000), "2.1.1")
        self.assertNotFound(self.dev, self.cert, "/v1/device/images/" + other, "not in the deployment")
        st, _, body = self.fetch("/v1/device/images/" + other, method="HEAD")
        self.assertEqual((st, body), (404, b""))
        self.assertEqual(self.fetch()[0], 200, "the deployment's own image")

    def test_device_of_another_group_or_of_none(self):
        g = self.new_group()
        mine = self.upload(os.urandom(6000), "2.2.0")
        self.deploy(g, [mine])
        dev, cert = self.device("acme", "other-group", group=g)
        st, _, body = self.fetch("/v1/device/images/" + mine, c=self.conn(cert, dev.key))
        self.assertEqual((st, hashlib.sha256(body).hexdigest()), (200, mine))
        self.assertNotFound(dev, cert, "/v1/device/images/" + self.sha, "the class group's image")
        self.assertNotFound(self.dev, self.cert, "/v1/device/images/" + mine, "the other group's image")
        lone, lcert = self.device("acme", "no-group", group=None)
        self.assertNotFound(lone, lcert, "/v1/device/images/" + self.sha, "a device in no group")
        # a group with no deployment at all
        empty, ecert = self.device("acme", "empty-group", group=self.new_group())
        self.assertNotFound(empty, ecert, "/v1/device/images/" + self.sha, "a group without a deployment")

    def test_wave_not_yet_in_then_advance(self):
        """Waves [1, 100]: a device at position >= 100 bp (docs/update.md 7) is in wave 2, so nothing is offered
        to it until the deployment advances; then the same request gets the image."""
        g = self.new_group()
        sha = self.upload(os.urandom(7000), "2.3.0")
        dep = self.deploy(g, [sha], waves=(1, 100), soak=3600)
        for i in range(20):
            dev, cert = self.device("acme", "wave-%d" % i, group=g)
            if position(dev.id, dep["id"]) >= 100:
                break
        self.assertGreaterEqual(position(dev.id, dep["id"]), 100)
        path = "/v1/device/images/" + sha
        self.assertNotFound(dev, cert, path, "wave 2 before the advance")
        self.assertNotFound(dev, cert, "/v1/device/tuf/targets/aegis-os/%s.%s" % (sha, sha), "wave 2, TUF path")
        st, _, body = self.api("POST", "/v1/deployments/%d/advance" % dep["id"])
        self.assertEqual((st, body["current_wave"]), (200, 2), body)
        st, h, body = self.fetch(path, c=self.conn(cert, dev.key))
        self.assertEqual((st, hashlib.sha256(body).hexdigest()), (200, sha))

    def test_paused_deployment_offers_nothing(self):
        g = self.new_group()
        sha = self.upload(os.urandom(8000), "2.4.0")
        dep = self.deploy(g, [sha], soak=3600)
        dev, cert = self.device("acme", "paused", group=g)
        path = "/v1/device/images/" + sha
        c = self.conn(cert, dev.key)  # one keep-alive connection: the pause is seen on the next request
        self.assertEqual(self.fetch(path, headers={"Range": "bytes=0-9"}, c=c)[0], 206)
        self.assertOk(self.api("POST", "/v1/deployments/%d/pause" % dep["id"]))
        st, _, body = self.fetch(path, c=c)
        self.assertEqual((st, json.loads(body)["error"]), (404, "not_found"))
        self.assertOk(self.api("POST", "/v1/deployments/%d/resume" % dep["id"]))
        self.assertEqual(self.fetch(path, headers={"Range": "bytes=0-9"}, c=c)[0], 206)
        self.assertOk(self.api("POST", "/v1/deployments/%d/abort" % dep["id"]))
        self.assertEqual(self.fetch(path, c=c)[0], 404, "an aborted deployment offers nothing either")

    # --- the TUF consistent target path (docs/update.md 5) ---

    def target_path(self, component="aegis-os", a=None, b=None):
        return "/v1/device/tuf/targets/%s/%s.%s" % (component, a or self.sha, b or self.sha)

    def test_consistent_target_path(self):
        n = len(self.data)
        c = self.conn(self.cert, self.dev.key)
        st, h, body = self.fetch(self.target_path(), c=c)
        self.assertEqual((st, body == self.data), (200, True))
        self.assertEqual((h["ETag"], h["Accept-Ranges"], h["Content-Type"]),
                         ('"%s"' % self.sha, "bytes", "application/octet-stream"))
        for rng, first, last in (("bytes=0-99", 0, 99), ("bytes=-500", n - 500, n - 1),
                                 ("bytes=%d-" % (n - 77), n - 77, n - 1)):
            st, h, body = self.fetch(self.target_path(), headers={"Range": rng}, c=c)
            self.assertEqual(st, 206, rng)
            self.assertEqual(h["Content-Range"], "bytes %d-%d/%d" % (first, last, n))
            self.assertEqual(body, self.data[first:last + 1])
        st, h, body = self.fetch(self.target_path(), headers={"Range": "bytes=%d-" % n}, c=c)
        self.assertEqual((st, h["Content-Range"]), (416, "bytes */%d" % n))
        st, _, body = self.fetch(self.target_path(), headers={"If-None-Match": '"%s"' % self.sha}, c=c)
        self.assertEqual((st, body), (304, b""))
        other = self.upload(os.urandom(3000), "2.1.2")
        for path, why in ((self.target_path("aegis-app"), "wrong component"),
                          (self.target_path("AEGIS-OS"), "component in upper case"),
                          (self.target_path(b="0" * 64), "hashes differ"),
                          (self.target_path(a=other, b=self.sha), "hashes differ (the second offered)"),
                          (self.target_path(a=self.sha.upper(), b=self.sha.upper()), "upper case"),
                          (self.target_path(a=self.sha, b=self.sha.upper()), "one half upper case"),
                          (self.target_path(a=other, b=other), "an image not in the deployment"),
                          ("/v1/device/tuf/targets/aegis-os/" + self.sha, "not the consistent name"),
                          ("/v1/device/tuf/targets/aegis-os/%s.%s.x" % (self.sha, self.sha), "suffix"),
                          ("/v1/device/tuf/targets/aegis-os/%s-%s" % (self.sha, self.sha), "no dot"),
                          ("/v1/device/tuf/targets/aegis-os/%s.%s" % (self.sha[:63], self.sha[:63]), "short")):
            with self.subTest(why=why):
                self.assertNotFound(self.dev, self.cert, path, why)
        st, _, body = self.fetch(self.target_path(), c=self.conn())
        self.assertEqual(st, 401, "no client certificate")
