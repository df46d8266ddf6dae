"""aegisctl ota distrusts the server it talks to (docs/cli.md "ota", docs/update.md 2.3): through a proxy that
plays a compromised aegisd (it forwards to the real daemon and rewrites chosen answers), the CLI refuses roots
that do not follow its trusted root chain, keeps keys only from its trusted root, computes what a targets
proposal changes itself, refuses malformed proposals, and signs only what was confirmed (--yes, --expect)."""

import http.client
import http.server
import json
import os
import ssl
import stat
import threading

import harness
from test_ota import Key, iso, signed


class Proxy:
    """TLS on 127.0.0.1 with the daemon's own certificate; forwards every request to the daemon. rewrite(method,
    path, status, body) may return (status, body) to answer instead; puts records the PUT paths seen."""

    def __init__(self, d):
        self.d, self.rewrite, self.puts = d, None, []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.command == "PUT":
                    proxy.puts.append(self.path)
                c = http.client.HTTPSConnection("127.0.0.1", proxy.d.port,
                                                context=ssl.create_default_context(cafile=proxy.d.cacert))
                hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                c.request(self.command, self.path, body, hdrs)
                r = c.getresponse()
                status, out = r.status, r.read()
                c.close()
                if proxy.rewrite:
                    got = proxy.rewrite(self.command, self.path, status, out)
                    if got:
                        status, out = got[0], json.dumps(got[1]).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = forward

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d.pki_dir, "server.crt"), os.path.join(d.pki_dir, "server.key"))
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "https://127.0.0.1:%d" % self.srv.server_address[1]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class OtaCliDistrustTest(harness.DaemonTestCase):
    tenants = ("acme",)

    @classmethod
    def prepare(cls):
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gw"})
        assert st == 201, body
        cls.product = body["id"]
        cls.keydir = os.path.join(cls.d.tmp, "keys")
        cls.proxy = Proxy(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        super().tearDownClass()

    def setUp(self):
        self.proxy.rewrite, self.proxy.puts = None, []

    def ctl(self, *args):
        return self.d.ctl(*args, server=self.proxy.url)

    def upload(self, data, version):
        path = os.path.join(self.d.tmp, "img-" + version)
        with open(path, "wb") as f:
            f.write(data)
        p = self.d.ctl("images", "upload", path, "--product", str(self.product), "--component", "aegis-os",
                       "--kind", "os", "--image-version", version, "--svn", "1", "--hardware", "hw", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def status(self):
        return self.assertOk(self.api("GET", "/v1/ota/status"))

    def test_1_init_needs_yes_and_keeps_trusted_roots(self):
        p = self.ctl("ota", "keys", "init", "--dir", self.keydir)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("--yes", p.stderr)
        self.assertFalse(os.path.exists(self.keydir))
        self.assertIsNone(self.status()["image"]["root"])
        p = self.ctl("ota", "keys", "init", "--dir", self.keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for repo, url in (("image", "repo"), ("director", "director")):
            path = os.path.join(self.keydir, "trusted", repo + "-root.json")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
            with open(path) as f:
                self.assertEqual(json.load(f), self.assertOk(self.api("GET", "/v1/ota/%s/1.root.json" % url)))

    def test_2_forged_roots_refused(self):
        stranger = Key()
        root = self.assertOk(self.api("GET", "/v1/ota/repo/1.root.json"))
        # a "current root" whose targets role lists the attacker's key
        forged = json.loads(json.dumps(root))
        forged["signed"]["keys"][stranger.keyid] = stranger.obj
        forged["signed"]["roles"]["targets"]["keyids"] = [stranger.keyid]
        forged = signed(forged, [stranger])

        def same_version(method, path, status, body):
            if path == "/v1/ota/repo/1.root.json":
                return 200, forged

        def newer(method, path, status, body):
            if path == "/v1/ota/status":
                st = json.loads(body)
                st["image"]["root"]["version"] = 2
                return 200, st
            if path == "/v1/ota/repo/2.root.json":
                f = json.loads(json.dumps(forged))
                f["signed"]["version"] = 2
                return 200, signed(f, [stranger])

        def older(method, path, status, body):
            if path == "/v1/ota/status":
                st = json.loads(body)
                st["image"]["root"] = None
                return 200, st

        for rw, msg in ((same_version, "is not the trusted one"), (newer, "does not follow the trusted root 1"),
                        (older, "the trusted one 1")):
            self.proxy.rewrite = rw
            for args in (("ota", "root", "rotate", "--dir", self.keydir, "--targets-keys", "1", "--yes"),
                         ("ota", "sign", "--dir", self.keydir, "--yes")):
                p = self.ctl(*args)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn("refused", p.stderr)
                self.assertIn(msg, p.stderr)
        self.assertEqual(self.proxy.puts, [])
        self.assertEqual(self.status()["image"]["root"]["version"], 1)

    def test_3_proposal_checked_and_diff_local(self):
        img = self.upload(b"image one" * 100, "1.0.0")
        before = self.status()["image"]["targets"]["version"]

        def hide_added(method, path, status, body):  # the old CLI printed the server's lists
            if path.startswith("/v1/ota/targets/proposal"):
                b = json.loads(body)
                b["added"], b["removed"] = [], []
                return 200, b

        self.proxy.rewrite = hide_added
        p = self.ctl("ota", "sign", "--dir", self.keydir, "--yes", "--expect", "0" * 64)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("1 added, 0 removed, 0 changed", p.stdout)
        self.assertIn("sha256 %s  length %d" % (img["sha256"], img["size"]), p.stdout)
        self.assertIn("--expect", p.stderr)
        # malformed proposals: delegations, a skipped version, expiry beyond the requested days, a path that is
        # not <component>/<sha256>
        muts = (lambda s: s.__setitem__("delegations", {"keys": {}, "roles": []}),
                lambda s: s.__setitem__("version", s["version"] + 1),
                lambda s: s.__setitem__("expires", iso(1e10)),
                lambda s: s["targets"].__setitem__("aegis-os/" + "0" * 64, next(iter(s["targets"].values()))))
        for m in muts:
            def bad(method, path, status, body, m=m):
                if path.startswith("/v1/ota/targets/proposal"):
                    b = json.loads(body)
                    m(b["proposal"]["signed"])
                    return 200, b
            self.proxy.rewrite = bad
            p = self.ctl("ota", "sign", "--dir", self.keydir, "--yes")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("refused: the proposal", p.stderr)
        self.assertEqual(self.proxy.puts, [])
        self.assertEqual(self.status()["image"]["targets"]["version"], before)
        # the right --expect signs
        self.proxy.rewrite = None
        other = self.upload(b"image two" * 100, "1.1.0")
        p = self.ctl("ota", "sign", "--dir", self.keydir, "--yes", "--expect", img["sha256"] + "," + other["sha256"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.status()["image"]["targets"]["version"], before + 1)

    def test_4_forged_current_targets_shows_everything(self):
        stranger = Key()

        def forged_current(method, path, status, body):
            if path.endswith(".targets.json") and method == "GET":
                b = json.loads(body)
                b["signed"]["targets"] = {}
                return 200, signed(b, [stranger])

        self.proxy.rewrite = forged_current
        p = self.ctl("ota", "sign", "--dir", self.keydir)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("not signed by the trusted targets keys", p.stderr)
        self.assertIn("2 added, 0 removed, 0 changed", p.stdout)

    def test_5_rotation_keeps_trusted_keys_and_threshold_checked(self):
        p = self.ctl("ota", "root", "rotate", "--dir", self.keydir, "--root-threshold", "2")
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertIn("threshold", p.stderr)
        self.assertEqual(self.proxy.puts, [])
        p = self.ctl("ota", "root", "rotate", "--dir", self.keydir, "--targets-keys", "2", "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        st = self.status()["image"]
        self.assertEqual(st["root"]["version"], 2)
        with open(os.path.join(self.keydir, "trusted", "image-root.json")) as f:
            self.assertEqual(json.load(f)["signed"]["version"], 2)
        # the re-signed targets were diffed against the old targets keys' version: no change
        self.assertIn("0 added, 0 removed, 0 changed", p.stdout)
