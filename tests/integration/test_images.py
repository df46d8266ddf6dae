"""Update images (docs/api.md "Images", issue 11 item 1) against the real daemon: an upload is streamed to disk
(the daemon's RSS does not grow with the image), named by its SHA-256, idempotent, refused with other fields for
the same bytes, bounded by image_max_bytes, and leaves nothing behind when interrupted or refused; another tenant's
images answer 404; a product with images cannot be deleted."""

import hashlib
import json
import os
import socket
import time
import urllib.parse

import harness

LIMIT = 64 * 1024 * 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def without_asan_quarantine():
    """The daemon's environment for RSS tests: under AddressSanitizer (make check) freed memory sits in a
    quarantine (up to 256 MiB) instead of being reused, so the TLS layer's per-record buffers would show as RSS
    growth; without the quarantine the figure is the daemon's (other sanitizer checks stay on; other builds ignore
    ASAN_OPTIONS)."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"}


class ImagesTest(harness.DaemonTestCase):
    tenants = ("acme", "globex")
    config = {"image_max_bytes": LIMIT}

    @classmethod
    def daemon_env(cls):
        return without_asan_quarantine()

    @classmethod
    def prepare(cls):
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gateway"})
        assert st == 201, body
        cls.product = body["id"]

    def query(self, **kw):
        q = {"product_id": self.product, "component": "aegis-os", "kind": "os", "version": "2.1.0", "svn": 7,
             "hardware": "gw-rev-b"}
        q.update(kw)
        return "/v1/images?" + urllib.parse.urlencode({k: v for k, v in q.items() if v is not None})

    def upload(self, data, token=..., **kw):
        return self.api("POST", self.query(**kw), data, token=token, content_type="application/octet-stream")

    def images_dir(self, tenant="acme"):
        return os.path.join(self.d.data_dir, "images", str(self.d.tenant_ids[tenant]))

    def leftovers(self):
        tmp = os.path.join(self.d.data_dir, "images", "tmp")
        return os.listdir(tmp) if os.path.isdir(tmp) else []

    def test_upload_get_list_delete(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        sha = hashlib.sha256(data).hexdigest()
        img = self.assertOk(self.upload(data), 201)
        self.assertEqual(img["sha256"], sha)
        self.assertEqual(img["size"], len(data))
        for k, v in (("product_id", self.product), ("component", "aegis-os"), ("kind", "os"), ("version", "2.1.0"),
                     ("svn", 7), ("hardware", "gw-rev-b")):
            self.assertEqual(img[k], v)
        path = os.path.join(self.images_dir(), sha)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.stat(path).st_mode & 0o077, 0)
        # the same bytes and fields again: the same image (200), not a second one
        self.assertEqual(self.assertOk(self.upload(data), 200), img)
        # the same bytes with other fields: a conflict, nothing changed
        self.assertError(self.upload(data, version="2.1.1"), 409, "conflict")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/images/" + sha)), img)
        items = self.assertOk(self.api("GET", "/v1/images"))["items"]
        self.assertIn(sha, [i["sha256"] for i in items])
        # another tenant sees nothing of it
        other = self.token_of("globex")
        self.assertError(self.api("GET", "/v1/images/" + sha, token=other), 404, "not_found")
        self.assertError(self.api("DELETE", "/v1/images/" + sha, token=other), 404, "not_found")
        self.assertNotIn(sha, [i["sha256"] for i in self.assertOk(self.api("GET", "/v1/images", token=other))["items"]])
        # nor can it name acme's product
        self.assertError(self.upload(b"x", token=other), 404, "not_found")
        # a product with images stays
        self.assertError(self.api("DELETE", "/v1/products/%d" % self.product), 409, "conflict")
        st, _, _ = self.api("DELETE", "/v1/images/" + sha)
        self.assertEqual(st, 204)
        self.assertFalse(os.path.exists(path))
        self.assertError(self.api("GET", "/v1/images/" + sha), 404, "not_found")
        self.assertEqual(self.leftovers(), [])
        audit = [e["action"] for e in self.assertOk(self.api("GET", "/v1/audit"))["items"]]
        self.assertIn("image.create", audit)
        self.assertIn("image.delete", audit)

    def test_bad_uploads_leave_nothing(self):
        before = set(os.listdir(self.images_dir())) if os.path.isdir(self.images_dir()) else set()
        self.assertError(self.upload(b"abc", kind="firmware"), 400, "validation_failed")
        self.assertError(self.upload(b"abc", svn=None), 400, "validation_failed")
        self.assertError(self.upload(b"abc", component="Bad Name"), 400, "validation_failed")
        self.assertError(self.api("POST", self.query(), b"abc", content_type="application/json"), 415,
                         "unsupported_media_type")
        self.assertError(self.upload(b"abc", token=None), 401, "unauthorized")
        # over the limit: declared, and sent chunked without a length
        self.assertError(self.upload(b"\0" * (LIMIT + 1)), 413, "payload_too_large")
        st = self.chunked_upload(LIMIT + 3 * 1024 * 1024)
        self.assertEqual(st, 413)
        # interrupted: the client goes away in the middle
        self.interrupted_upload(8 * 1024 * 1024)
        deadline = time.monotonic() + 5
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.leftovers(), [])
        after = set(os.listdir(self.images_dir())) if os.path.isdir(self.images_dir()) else set()
        self.assertEqual(after, before)

    def refvals(self, component):
        return [v for v in self.list_all("/v1/reference-values") if v["component"] == component]

    def test_app_image_registers_its_reference_value(self):
        """register_refval=true makes an app image the tenant's reference value in the upload's transaction (so a
        device that boots it still attests); a conflicting value stores nothing; OS images cannot register."""
        data = os.urandom(4096)
        sha = hashlib.sha256(data).hexdigest()
        q = dict(kind="app", component="thermo-app", version="3.0.0", svn=4)
        self.assertError(self.upload(data, register_refval="true", **dict(q, kind="os")), 400, "validation_failed")
        self.assertError(self.upload(data, register_refval="yes", **q), 400, "validation_failed")
        self.assertEqual(self.refvals("thermo-app"), [])
        img = self.assertOk(self.upload(data, register_refval="true", **q), 201)
        vals = self.refvals("thermo-app")
        self.assertEqual([(v["stage"], v["version"], v["svn"], v["digest"]) for v in vals],
                         [("app", "3.0.0", 4, sha)])
        # the same upload again: the same image, still one value
        self.assertEqual(self.assertOk(self.upload(data, register_refval="true", **q), 200), img)
        self.assertEqual(len(self.refvals("thermo-app")), 1)
        # other bytes for the same component and version: the value conflicts, nothing is stored
        other = os.urandom(4096)
        before = self.leftovers(), set(os.listdir(self.images_dir()))
        self.assertError(self.upload(other, register_refval="true", **q), 409, "conflict")
        self.assertError(self.api("GET", "/v1/images/" + hashlib.sha256(other).hexdigest()), 404, "not_found")
        self.assertEqual((self.leftovers(), set(os.listdir(self.images_dir()))), before)
        self.assertEqual(len(self.refvals("thermo-app")), 1)
        # without the flag the same bytes are just an image
        self.assertOk(self.upload(other, **dict(q, version="3.0.1")), 201)
        self.assertEqual(len(self.refvals("thermo-app")), 1)
        actions = [e["action"] for e in self.assertOk(self.api("GET", "/v1/audit"))["items"]]
        self.assertIn("refval.create", actions)

    def test_leftover_uploads_are_swept(self):
        """A crash leaves an upload's temporary file behind: the daemon deletes such files (unlocked and
        unwritten for a minute) at its start and every 10 minutes, never a file an upload in flight holds
        locked, however old, and nothing that is not an upload file."""
        import fcntl
        tmp = os.path.join(self.d.data_dir, "images", "tmp")
        os.makedirs(tmp, exist_ok=True)
        old = time.time() - 300
        paths = {n: os.path.join(tmp, n) for n in ("upload-crashed", "upload-fresh", "upload-live", "other")}
        for p in paths.values():
            with open(p, "wb") as f:
                f.write(b"partial")
        for n in ("upload-crashed", "upload-live", "other"):
            os.utime(paths[n], (old, old))
        live = open(paths["upload-live"], "rb")
        try:
            fcntl.flock(live, fcntl.LOCK_EX)  # as an upload in flight (in another daemon) holds it
            self.d.stop()
            self.d.start()
            deadline = time.monotonic() + 10
            while os.path.exists(paths["upload-crashed"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertFalse(os.path.exists(paths["upload-crashed"]))
            for n in ("upload-fresh", "upload-live", "other"):
                self.assertTrue(os.path.exists(paths[n]), n)
        finally:
            live.close()
            for n in ("upload-fresh", "upload-live", "other"):
                if os.path.exists(paths[n]):
                    os.unlink(paths[n])

    def raw(self):
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        return self.d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")

    def head(self, extra):
        return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/octet-stream\r\n%s\r\n" % (self.query(version="9.9.9"), self.d.token,
                                                                         extra)).encode()

    def chunked_upload(self, total):
        s = self.raw()
        try:
            s.sendall(self.head("Transfer-Encoding: chunked\r\n"))
            block = b"\1" * (1024 * 1024)
            sent = 0
            try:
                while sent < total:
                    s.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
                    sent += len(block)
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = s.recv(4096)
            return int(data.split(b" ")[1]) if data else None
        finally:
            s.close()

    def interrupted_upload(self, total):
        s = self.raw()
        try:
            s.sendall(self.head("Content-Length: %d\r\n" % (total * 2)))
            s.sendall(b"\2" * total)
            time.sleep(0.3)
        finally:
            s.close()

    def test_streamed_not_buffered(self):
        """A 48 MiB image uploads with the daemon's RSS growing < 20 MiB: it goes to disk as it arrives (the RSS is
        sampled after every MiB sent)."""
        size = 48 * 1024 * 1024
        block = os.urandom(1024 * 1024)
        h = hashlib.sha256()
        s = self.raw()
        peak = base = rss_kib(self.d.proc.pid)
        try:
            s.sendall(self.head("Content-Length: %d\r\n" % size).replace(b"9.9.9", b"3.0.0"))
            for _ in range(size // len(block)):
                s.sendall(block)
                h.update(block)
                peak = max(peak, rss_kib(self.d.proc.pid))
            data = b""
            while b"}" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 201"), data[:300])
        self.assertIn(h.hexdigest().encode(), data)
        self.assertLess(peak - base, 20 * 1024, "RSS grew %d KiB for a %d MiB upload" % (peak - base, size >> 20))


class ImagesCliTest(harness.DaemonTestCase):
    """aegisctl images upload / list / show / delete against the real daemon."""

    @classmethod
    def prepare(cls):
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "sensor"})
        assert st == 201, body
        cls.product = body["id"]

    def test_upload_list_show_delete(self):
        data = os.urandom(5 * 1024 * 1024 + 3)
        sha = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.d.tmp, "app.img")
        with open(path, "wb") as f:
            f.write(data)
        args = ["images", "upload", path, "--product", str(self.product), "--component", "sensor-app", "--kind",
                "app", "--image-version", "1.4.0", "--svn", "3", "--hardware", "s1"]
        p = self.d.ctl(*args, json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        img = json.loads(p.stdout)
        self.assertEqual((img["sha256"], img["size"], img["kind"]), (sha, len(data), "app"))
        p = self.d.ctl(*args, json_out=True)  # again: the same image
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), img)
        p = self.d.ctl("images", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(sha, p.stdout)
        self.assertIn("SHA256", p.stdout)
        p = self.d.ctl("images", "show", sha, json_out=True)
        self.assertEqual(json.loads(p.stdout), img)
        p = self.d.ctl("images", "delete", sha)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("image deleted", p.stdout)
        p = self.d.ctl("images", "show", sha)
        self.assertEqual(p.returncode, 6, p.stderr)  # the API's 404
        self.assertIn("not_found", p.stderr)
        # usage errors (2) and a file that is not there (4)
        self.assertEqual(self.d.ctl(*args[:-2]).returncode, 2)
        self.assertEqual(self.d.ctl("images", "show", "xyz").returncode, 2)
        missing = list(args)
        missing[2] = os.path.join(self.d.tmp, "nope.img")
        p = self.d.ctl(*missing)
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("nope.img", p.stderr)
