"""aegisctl ota distrusts the server it talks to (docs/cli.md "ota", docs/update.md 2.3): through a proxy that
plays a compromised aegisd (it forwards to the real daemon and rewrites chosen answers), the CLI refuses roots
that do not follow its trusted root chain, keeps keys only from its trusted root, computes what a targets
proposal changes itself, refuses malformed proposals (the image field rules, one target per SHA-256), signs only
what was confirmed (--yes, --expect with the fields of each image), and a rotation re-signs the targets unchanged or
not at all."""

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


def rewrite_proposal(mutate, skip=0):
    """A proxy rewrite that applies mutate(signed) to the targets proposals after the first skip ones."""
    seen = []

    def rw(method, path, status, body):
        if path.startswith("/v1/ota/targets/proposal"):
            seen.append(path)
            if len(seen) > skip:
                b = json.loads(body)
                mutate(b["proposal"]["signed"])
                return 200, b
    return rw


class OtaCliDistrustTest(harness.DaemonTestCase):
    tenants = ("acme", "beta")

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

    def ctl(self, *args, **kw):
        return self.d.ctl(*args, server=self.proxy.url, **kw)

    def upload(self, data, version, product=None, token=...):
        path = os.path.join(self.d.tmp, "img-%d" % len(os.listdir(self.d.tmp)))
        with open(path, "wb") as f:
            f.write(data)
        p = self.d.ctl("images", "upload", path, "--product", str(product or self.product), "--component",
                       "aegis-os", "--kind", "os", "--image-version", version, "--svn", "1", "--hardware", "hw",
                       json_out=True, token=token)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def status(self, token=...):
        return self.assertOk(self.api("GET", "/v1/ota/status", token=token))

    def refused(self, args, msg, code=1, **kw):
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        self.assertIn(msg, p.stderr)
        return p

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

    def test_6_expect_fields_and_target_rules(self):
        before = self.status()["image"]["targets"]["version"]
        img = self.upload(b"image three" * 100, "2.0.0")
        odd = self.upload(b"image four" * 100, "3.0:rc,1%")
        path = "aegis-os/" + img["sha256"]
        entry = img["sha256"] + ":aegis-os:2.0.0:1"
        odd_entry = odd["sha256"].upper() + ":aegis-os:3.0%3Arc%2C1%25:1:os:hw"
        sign = ("ota", "sign", "--dir", self.keydir, "--yes", "--expect")

        def setc(field, value):
            return lambda s: s["targets"][path]["custom"].__setitem__(field, value)

        # the expected bytes offered with other fields: only the field form of --expect sees it
        for mutate, fields, msg in ((setc("svn", 4294967295), "", "svn 4294967295, 1 expected"),
                                    (setc("kind", "app"), ":os", 'kind "app", "os" expected'),
                                    (setc("hardware", "other-hw"), ":os:hw", 'hardware "other-hw", "hw" expected')):
            self.proxy.rewrite = rewrite_proposal(mutate)
            p = self.refused(sign + (entry + fields + "," + odd_entry,), msg)
            self.assertIn("refused: --expect: the proposal adds " + path, p.stderr)
        # outside the image field rules: refused by the shape check, whatever --expect says
        for mutate, msg in ((setc("svn", 4294967296), "svn: an integer 0..4294967295"),
                            (setc("version", "9" * 600), "version: 1-32 printable ASCII"),
                            (setc("product_id", 0), "product_id: an integer >= 1")):
            self.proxy.rewrite = rewrite_proposal(mutate)
            self.refused(sign + (img["sha256"] + "," + odd["sha256"],), "refused: the proposal: targets: target")
        # the same bytes under a second component (one image is one target)
        def twice(s):
            t = json.loads(json.dumps(s["targets"][path]))
            t["custom"].update(component="aegis-app", kind="app")
            s["targets"]["aegis-app/" + img["sha256"]] = t
        self.proxy.rewrite = rewrite_proposal(twice)
        self.refused(("ota", "sign", "--dir", self.keydir, "--yes"), "another of its targets has too")
        self.assertEqual(self.proxy.puts, [])
        self.assertEqual(self.status()["image"]["targets"]["version"], before)
        # malformed entries are usage errors, before anything is asked of the server
        for bad in (img["sha256"] + ":aegis-os", img["sha256"] + ":aegis-os:2.0.0:x", img["sha256"] + "::2.0.0:1",
                    img["sha256"] + ":aegis-os:2.0.0:1:bootloader", img["sha256"] + ":aegis-os:%zz:1",
                    img["sha256"] + ":aegis-os:" + "9" * 33 + ":1", img["sha256"] + "," + img["sha256"].upper()):
            self.refused(sign + (bad,), "--expect", code=2)
        # the fields as uploaded: signed, and every line in full
        self.proxy.rewrite = None
        p = self.ctl(*(sign + (entry + ":os:hw," + odd_entry,)))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("+ aegis-os  os 3.0:rc,1%% svn 1  hw  sha256 %s  length %d" % (odd["sha256"], odd["size"]),
                      p.stdout)
        self.assertEqual(self.status()["image"]["targets"]["version"], before + 1)

    def test_7_rotation_resigns_unchanged_or_not_at_all(self):
        st = self.status()["image"]
        keyfiles = sorted(os.listdir(self.keydir))
        rotate = ("ota", "root", "rotate", "--dir", self.keydir, "--targets-keys", "1", "--yes")
        first = next(iter(self.assertOk(self.api("GET", "/v1/ota/repo/%d.targets.json" %
                                                 st["targets"]["version"]))["signed"]["targets"]))
        # a hostile proposal: a changed target, or one more; refused before any root is published
        extra = "aegis-os/" + "ab" * 32

        def add(s):
            s["targets"][extra] = json.loads(json.dumps(s["targets"][first]))
            s["targets"][extra]["hashes"]["sha256"] = "ab" * 32
        for mutate, line in ((lambda s: s["targets"][first]["custom"].__setitem__("svn", 4294967295), "1 changed"),
                             (add, "1 added")):
            self.proxy.rewrite = rewrite_proposal(mutate)
            p = self.refused(rotate, "refused: a rotation re-signs the current targets unchanged")
            self.assertIn(line, p.stdout)
        # an honest server with an image not signed yet: also a change, refused the same way
        self.proxy.rewrite = None
        self.upload(b"image five" * 100, "4.0.0")
        self.refused(rotate, "sign those changes with ota sign first")
        self.refused(("ota", "root", "rotate", "--dir", self.keydir, "--expect", "ab" * 32), "--expect", code=2)
        self.assertEqual(self.proxy.puts, [])
        self.assertEqual(self.status()["image"], st)
        self.assertEqual(sorted(os.listdir(self.keydir)), keyfiles)
        p = self.ctl("ota", "sign", "--dir", self.keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # a server that changes its proposal once the roots are published: the re-sign is still refused
        self.proxy.puts = []
        self.proxy.rewrite = rewrite_proposal(add, skip=1)
        self.refused(rotate, "refused: a rotation re-signs the current targets unchanged")
        self.assertEqual(self.proxy.puts, ["/v1/ota/root?repo=image", "/v1/ota/root?repo=director"])

    def test_9_init_expect(self):
        tok = self.d.tokens["beta"]
        keydir = os.path.join(self.d.tmp, "keys-beta")
        product = self.create("/v1/products", {"name": "gw-b"}, token=tok)["id"]
        img = self.upload(b"beta image" * 100, "1.0.0", product=product, token=tok)
        init = ("ota", "keys", "init", "--dir", keydir, "--yes", "--expect")
        entry = img["sha256"] + ":aegis-os:1.0.0:1:os:hw"
        # another image expected, or the expected one with another svn: nothing published, the list shown
        p = self.refused(init + ("cd" * 32,), "refused: --expect: the proposal also adds", token=tok)
        self.assertIn("+ aegis-os  os 1.0.0 svn 1  hw  sha256 " + img["sha256"], p.stdout)
        self.proxy.rewrite = rewrite_proposal(
            lambda s: s["targets"]["aegis-os/" + img["sha256"]]["custom"].__setitem__("svn", 7))
        self.refused(init + (entry,), "svn 7, 1 expected", token=tok)
        self.refused(init + (img["sha256"] + ":aegis-os",), "--expect", code=2, token=tok)
        self.assertEqual(self.proxy.puts, [])
        self.assertIsNone(self.status(token=tok)["image"]["root"])
        # as uploaded: published, the list it signed on stderr next to the JSON answer
        self.proxy.rewrite = None
        p = self.ctl(*(init + (entry,)), token=tok, json_out=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 added, 0 removed, 0 changed", p.stderr)
        self.assertIn("sha256 " + img["sha256"], p.stderr)
        self.assertEqual(json.loads(p.stdout)["targets"], 1)
        self.assertEqual(self.status(token=tok)["image"]["targets"]["version"], 1)
