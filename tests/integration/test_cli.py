"""aegisctl against a live daemon: output, exit codes (0 ok, 1 API error, 2 usage, 3 connection, 4 local,
5 unauthorized or forbidden, 6 not found)."""

import json
import os
import subprocess

import harness


def items_of(out):
    """The objects of a --json list output: a page {"items": [...]} or a plain array."""
    v = json.loads(out)
    if isinstance(v, dict) and "items" in v:
        return v["items"]
    if isinstance(v, list):
        return v
    raise AssertionError("list output is neither an array nor a page: %r" % out[:300])


class CliTest(harness.DaemonTestCase):
    tenants = ("acme",)

    def ctl(self, *args, **kw):
        return self.d.ctl(*args, **kw)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, expected %d\nstdout: %s\nstderr: %s"
                         % (p.returncode, code, p.stdout[-2000:], p.stderr[-2000:]))

    def test_products_create_and_list(self):
        p = self.ctl("products", "create", "cli-product", "--description", "from the CLI", json_out=True)
        self.assertExit(p, 0)
        made = json.loads(p.stdout)
        self.assertEqual((made["name"], made["description"]), ("cli-product", "from the CLI"))
        self.assertIsInstance(made["id"], int)
        # The API sees it.
        st, _, body = self.api("GET", "/v1/products/%d" % made["id"])
        self.assertEqual((st, body["name"]), (200, "cli-product"))
        p = self.ctl("products", "list", json_out=True)
        self.assertExit(p, 0)
        self.assertIn(made["id"], [x["id"] for x in items_of(p.stdout)])
        # The table output shows it too.
        p = self.ctl("products", "list")
        self.assertExit(p, 0)
        self.assertIn("cli-product", p.stdout)
        # Duplicate: API error, exit 1.
        p = self.ctl("products", "create", "cli-product")
        self.assertExit(p, 1)
        self.assertIn("conflict", p.stderr)

    def test_products_list_all_pages(self):
        for i in range(105):  # more than one default page of 100
            self.create("/v1/products", {"name": "cli-many-%03d" % i})
        p = self.ctl("products", "list", json_out=True)
        self.assertExit(p, 0)
        names = {x["name"] for x in items_of(p.stdout)}
        self.assertTrue({"cli-many-%03d" % i for i in range(105)} <= names, "products list stopped at one page")

    def test_devices_import_and_list_all(self):
        st, _, prod = self.api("POST", "/v1/products", {"name": "cli-devices"})
        st, _, g = self.api("POST", "/v1/device-groups", {"product_id": prod["id"], "name": "cli-g"})
        self.assertEqual(st, 201, g)
        keys = harness.gen_keys(150)
        path = os.path.join(self.d.tmp, "keys.json")
        with open(path, "w") as f:
            json.dump(keys, f)
        p = self.ctl("devices", "import", path, "--group", str(g["id"]))
        self.assertExit(p, 0)
        p = self.ctl("devices", "list", "--group", str(g["id"]), "--all", "--limit", "40", json_out=True)
        self.assertExit(p, 0)
        ids = [x["id"] for x in items_of(p.stdout)]
        self.assertEqual(len(ids), 150)
        self.assertEqual(set(ids), {harness.device_id(k) for k in keys})
        # One page only without --all.
        p = self.ctl("devices", "list", "--group", str(g["id"]), "--limit", "40", json_out=True)
        self.assertExit(p, 0)
        self.assertEqual(len(items_of(p.stdout)), 40)

    def test_devices_import_bad_entry(self):
        keys = harness.gen_keys(3)
        keys[1] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        path = os.path.join(self.d.tmp, "bad-keys.json")
        with open(path, "w") as f:
            json.dump(keys, f)
        p = self.ctl("devices", "import", path)
        self.assertExit(p, 1)
        self.assertIn("bad_public_key", p.stderr)
        self.assertIn("1", p.stderr)
        st, _, _ = self.api("GET", "/v1/devices/" + harness.device_id(keys[0]))
        self.assertEqual(st, 404, "a failed CLI import stored devices")

    def test_devices_import_missing_file_is_local_error(self):
        p = self.ctl("devices", "import", os.path.join(self.d.tmp, "no-such-file.json"))
        self.assertExit(p, 4)

    def test_reader_token_cannot_write(self):
        p = self.ctl("tokens", "create", "cli-reader", "--role", "reader", json_out=True)
        self.assertExit(p, 0)
        tok = json.loads(p.stdout)["token"]
        self.assertTrue(tok.startswith("aegis_"))
        p = self.ctl("products", "list", token=tok)
        self.assertExit(p, 0)
        p = self.ctl("products", "create", "by-cli-reader", token=tok)
        self.assertExit(p, 5)  # 403
        self.assertIn("forbidden", p.stderr)
        # tokens list never shows a secret.
        p = self.ctl("tokens", "list", json_out=True)
        self.assertExit(p, 0)
        self.assertNotIn(tok.split("_", 2)[2], p.stdout)
        self.assertNotIn(self.d.token.split("_", 2)[2], p.stdout)

    def test_token_file(self):
        path = os.path.join(self.d.tmp, "token")
        with open(path, "w") as f:
            f.write(self.d.token + "\n")
        os.chmod(path, 0o600)
        p = self.ctl("--token-file", path, "tenant", "show", token=None)
        self.assertExit(p, 0)
        self.assertIn("acme", p.stdout)

    def test_bad_token_is_api_error(self):
        p = self.ctl("products", "list", token="aegis_1_" + "x" * 43)
        self.assertExit(p, 5)  # 401
        self.assertIn("unauthorized", p.stderr)

    def test_usage_errors(self):
        for args in (("frobnicate",), ("products", "frobnicate"), ("products", "create"),
                     ("products", "create", "a", "b"), ("products", "list", "--no-such-option"),
                     ("tokens", "create", "x", "--role"), ("devices", "list", "--limit", "abc")):
            with self.subTest(args=args):
                self.assertExit(self.ctl(*args), 2)

    def test_unreachable_server(self):
        sock, port = harness.free_refusing_port()
        try:
            p = self.ctl("products", "list", server="https://127.0.0.1:%d" % port)
        finally:
            sock.close()
        self.assertExit(p, 3)

    def test_untrusted_server_certificate(self):
        other = os.path.join(self.d.tmp, "other-ca")
        os.mkdir(other)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", os.path.join(other, "k.pem"), "-out", os.path.join(other, "ca.pem"),
                        "-subj", "/CN=not-aegis", "-days", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        p = self.ctl("products", "list", cacert=os.path.join(other, "ca.pem"))
        self.assertExit(p, 3)

    def test_tenant_token_recovers_access(self):
        ctl = [harness.binary("aegisctl"), "--data-dir", self.d.data_dir]
        p = harness.run_tool(ctl + ["tenant", "create", "locked-out", "--json"])
        self.assertExit(p, 0)
        lost = json.loads(p.stdout)["token"]
        # the only admin token is revoked: nothing through the API can mint another
        st, _, body = self.api("GET", "/v1/tokens", token=lost)
        self.assertEqual(st, 200, body)
        st, _, body = self.api("DELETE", "/v1/tokens/%s" % body["items"][0]["id"], token=lost)
        self.assertEqual(st, 204, body)
        st, _, _ = self.api("GET", "/v1/tenant", token=lost)
        self.assertEqual(st, 401)
        out = os.path.join(self.d.tmp, "recovered.token")
        p = harness.run_tool(ctl + ["tenant", "token", "locked-out", "--token-out", out])
        self.assertExit(p, 0)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        with open(out) as f:
            tok = f.read().strip()
        self.assertNotIn(tok, p.stdout + p.stderr)
        st, _, body = self.api("GET", "/v1/tenant", token=tok)
        self.assertEqual((st, body["name"]), (200, "locked-out"))
        st, _, body = self.api("POST", "/v1/products", {"name": "recovered"}, token=tok)
        self.assertEqual(st, 201, body)
        # a reader token, and the refusals
        p = harness.run_tool(ctl + ["--json", "tenant", "token", "locked-out", "--role", "reader"])
        self.assertExit(p, 0)
        reader = json.loads(p.stdout)
        self.assertEqual(reader["role"], "reader")
        st, _, _ = self.api("POST", "/v1/products", {"name": "nope"}, token=reader["token"])
        self.assertEqual(st, 403)
        # a token file that cannot be written: the minted token is revoked, not left for nobody
        p = harness.run_tool(ctl + ["tenant", "token", "locked-out", "--name", "unwritten", "--token-out",
                                    self.d.tmp])
        self.assertExit(p, 4)
        st, _, body = self.api("GET", "/v1/tokens", token=tok)
        unwritten = [t for t in body["items"] if t["name"] == "unwritten"]
        self.assertEqual(len(unwritten), 1, body)
        self.assertIsNotNone(unwritten[0]["revoked_at"])
        self.assertExit(harness.run_tool(ctl + ["tenant", "token", "no-such-tenant"]), 4)
        self.assertExit(harness.run_tool(ctl + ["tenant", "token", "locked-out", "--role", "root"]), 2)

    def test_tenant_create_while_daemon_runs(self):
        p = harness.run_tool([harness.binary("aegisctl"), "--data-dir", self.d.data_dir, "tenant", "create",
                              "late-tenant", "--json"])
        self.assertExit(p, 0)
        tok = json.loads(p.stdout)["token"]
        st, _, body = self.api("GET", "/v1/tenant", token=tok)
        self.assertEqual((st, body["name"]), (200, "late-tenant"))
        st, _, body = self.api("POST", "/v1/products", {"name": "late-product"}, token=tok)
        self.assertEqual(st, 201, body)


# --- the text output of list and show, pinned (a reference rendering of aegisctl's tables) ---

def _text(v):
    """A JSON value as aegisctl shows it in a table or a key: value line."""
    if v is None or v == {} or v == []:  # null, an empty object or array: "-"
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _cell(v):
    """A table cell: a scalar, or an array's elements "a,b" and an object's members "k=v,k=v"."""
    if isinstance(v, list) and v:
        return ",".join(_text(e) for e in v)
    if isinstance(v, dict) and v:
        return ",".join("%s=%s" % (k, _text(e)) for k, e in v.items())
    return "-" if v in ([], {}) else _text(v)


def render_table(items, cols):
    """cols: (header, key, max width or 0); the last column is not padded. Stdout is not a terminal:
    nothing is cut (the max widths apply on a terminal only, test_cli_output.py)."""
    rows = [[_cell(it.get(key)) for _, key, _ in cols] for it in items]
    widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, (h, _, _) in enumerate(cols)]
    lines = []
    for cells in [[h for h, _, _ in cols]] + rows:
        lines.append("  ".join(c.ljust(widths[j]) if j + 1 < len(cols) else c for j, c in enumerate(cells)))
    return "".join(line + "\n" for line in lines)


def render_object(obj, ind=0, dash=False):
    """Nested objects as indented key: value lines, arrays as "- item" lines (an object item starts
    on the dash's line)."""
    kw = max((len(k) for k in obj), default=0)
    out = ""
    for k, v in obj.items():
        pre = " " * (ind - 2) + "- " if dash else " " * ind
        dash = False
        t = _text(v)
        if isinstance(v, dict) and v:
            out += pre + k + ":\n" + render_object(v, ind + 2)
        elif isinstance(v, list) and v:
            out += pre + k + ":\n" + render_list(v, ind + 2)
        elif isinstance(v, str) and "\n" in v:
            out += pre + k + ":\n" + "".join(" " * (ind + 4) + line + "\n" for line in v.split("\n") if line)
        elif t == "":
            out += pre + k + ":\n"
        else:
            out += pre + k + ":" + " " * (kw - len(k)) + " " + t + "\n"
    return out


def render_list(items, ind):
    out = ""
    for e in items:
        if isinstance(e, dict) and e:
            out += render_object(e, ind + 2, True)
        elif isinstance(e, list) and e:
            out += " " * ind + "-\n" + render_list(e, ind + 2)
        else:
            out += " " * ind + "- " + _text(e) + "\n"
    return out


PRODUCT_COLS = [("ID", "id", 0), ("NAME", "name", 40), ("CREATED_AT", "created_at", 0),
                ("UPDATED_AT", "updated_at", 0), ("DESCRIPTION", "description", 50)]
GROUP_COLS = [("ID", "id", 0), ("PRODUCT_ID", "product_id", 0), ("NAME", "name", 40),
              ("CREATED_AT", "created_at", 0), ("DESCRIPTION", "description", 50)]
TOKEN_COLS = [("ID", "id", 0), ("NAME", "name", 40), ("ROLE", "role", 0), ("CREATED_AT", "created_at", 0),
              ("CREATED_BY", "created_by", 0), ("REVOKED_AT", "revoked_at", 0), ("EXPIRES_AT", "expires_at", 0),
              ("LAST_USED_AT", "last_used_at", 0)]
DEVICE_COLS = [("ID", "id", 0), ("STATE", "state", 0), ("GROUP_ID", "group_id", 0),
               ("PRODUCT_ID", "product_id", 0), ("CLAIMED_AT", "claimed_at", 0)]
AUDIT_COLS = [("ID", "id", 0), ("CREATED_AT", "created_at", 0), ("ACTOR", "actor", 0), ("ACTION", "action", 0),
              ("OBJECT_TYPE", "object_type", 0), ("OBJECT_ID", "object_id", 0), ("DETAIL", "detail", 60)]
MINIMUM_COLS = [("COMPONENT", "component", 0), ("MIN_SVN", "min_svn", 0), ("UPDATED_AT", "updated_at", 0)]
REFVAL_COLS = [("ID", "id", 0), ("SCOPE", "scope", 0), ("STAGE", "stage", 0), ("COMPONENT", "component", 0),
               ("VERSION", "version", 0), ("SVN", "svn", 0), ("DIGEST", "digest", 0)]
ATTEST_COLS = [("ID", "id", 0), ("CREATED_AT", "created_at", 0), ("DEVICE_ID", "device_id", 0),
               ("RESULT", "result", 0), ("REASON", "reason", 0), ("PEER", "peer", 0)]
BUCKET_COLS = [("ID", "id", 0), ("COUNT", "count", 0), ("DEVICES", "devices", 0), ("COMPONENT", "component", 24),
               ("REASON", "reason", 0), ("PC", "pc", 0), ("FIRST_SEEN", "first_seen", 0),
               ("LAST_SEEN", "last_seen", 0)]
FLAG_COLS = [("ID", "id", 0), ("CREATED_AT", "created_at", 0), ("KIND", "kind", 0), ("COMPONENT", "component", 24),
             ("VERSION", "image_version", 0), ("PREVIOUS", "previous_version", 0), ("BUCKET", "bucket_id", 0),
             ("DETAIL", "detail", 60)]
TENANT_COLS = [("ID", "id", 0), ("NAME", "name", 0), ("CREATED_AT", "created_at", 0)]


class CliOutputTest(harness.DaemonTestCase):
    """Every list and show prints exactly what the reference rendering of its --json output gives."""
    tenants = ("pinned",)

    @classmethod
    def prepare(cls):
        api = cls.client.api
        st, _, p = api("POST", "/v1/products", {"name": "pin-product-with-a-name-longer-than-forty-characters",
                                                "description": "d" * 60}, ...)
        assert st == 201, p
        api("POST", "/v1/products", {"name": "pin-short"}, ...)
        st, _, g = api("POST", "/v1/device-groups", {"product_id": p["id"], "name": "pin-group"}, ...)
        assert st == 201, g
        cls.group = g
        cls.product = p
        keys = harness.gen_keys(3)
        st, _, body = api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in keys],
                                                        "claim": True, "group_id": g["id"]}, ...)
        assert st in (200, 201), body
        cls.device = harness.device_id(keys[0])
        api("PUT", "/v1/security-minimums/pin-fw", {"min_svn": 3}, ...)
        api("POST", "/v1/reference-values", {"stage": "app", "component": "pin-fw", "version": "1.0",
                                              "svn": 3, "digest": "ab" * 32}, ...)

    def same(self, args, cols=None, stderr=""):
        p = self.d.ctl(*args, json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = json.loads(p.stdout)
        want = render_object(v) if cols is None else render_table(items_of(p.stdout), cols)
        p = self.d.ctl(*args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, want, "aegisctl %s" % " ".join(args))
        if cols is not None and isinstance(v, dict) and v.get("next_cursor"):
            stderr = "(more: --cursor %s, or --all)\n" % v["next_cursor"]
        self.assertEqual(p.stderr, stderr)

    def test_lists(self):
        self.same(("products", "list"), PRODUCT_COLS)
        self.same(("groups", "list"), GROUP_COLS)
        self.same(("groups", "list", "--product", str(self.product["id"])), GROUP_COLS)
        self.same(("tokens", "list"), TOKEN_COLS)
        self.same(("devices", "list"), DEVICE_COLS)
        self.same(("devices", "list", "--limit", "2"), DEVICE_COLS)
        self.same(("devices", "list", "--state", "active", "--all", "--limit", "1"), DEVICE_COLS)
        self.same(("audit", "list", "--limit", "3"), AUDIT_COLS)
        self.same(("minimums", "list"), MINIMUM_COLS)
        self.same(("refvals", "list"), REFVAL_COLS)
        self.same(("attestations", "list"), ATTEST_COLS)
        self.same(("attestations", "list", "--device", self.device), ATTEST_COLS)
        self.same(("failures", "buckets"), BUCKET_COLS)
        self.same(("failures", "flags"), FLAG_COLS)

    def test_local_tenant_list(self):
        ctl = [harness.binary("aegisctl"), "--data-dir", self.d.data_dir, "tenant", "list"]
        p = harness.run_tool(ctl + ["--json"])
        self.assertEqual(p.returncode, 0, p.stderr)
        want = render_table(json.loads(p.stdout), TENANT_COLS)
        p = harness.run_tool(ctl)
        self.assertEqual((p.returncode, p.stdout), (0, want))

    def test_shows(self):
        self.same(("tenant", "show"))
        self.same(("products", "show", str(self.product["id"])))
        self.same(("groups", "show", str(self.group["id"])))
        self.same(("devices", "show", self.device))
        self.same(("devices", "show", self.device.upper()))


class CliTransferTest(harness.DaemonTestCase):
    """devices transfer / devices claim --transfer-code-file: a device changes tenant only with its holder's code,
    and the code never has to be on a command line."""
    tenants = ("acme", "rival")

    def test_transfer_then_claim_with_the_code(self):
        key = harness.gen_keys(1)[0]
        st, _, body = self.api("POST", "/v1/devices/import", {"devices": [{"public_key": key}], "claim": True})
        self.assertEqual(st, 200, body)
        did = harness.device_id(key)
        rival = self.token_of("rival")
        # Without a code the rival cannot take it: the same answer as for an unknown device.
        p = self.d.ctl("devices", "claim", did, token=rival)
        self.assertEqual(p.returncode, 6, p.stderr)
        self.assertIn("not_found", p.stderr)
        p = self.d.ctl("devices", "transfer", did, json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        made = json.loads(p.stdout)
        self.assertRegex(made["expires_at"], harness.RFC3339)
        path = os.path.join(self.d.tmp, "transfer-code")
        with open(path, "w") as f:
            f.write(made["code"] + "\n")
        p = self.d.ctl("devices", "claim", did, "--transfer-code-file", path, token=rival, json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["id"], did)
        self.assertEqual(self.api("GET", "/v1/devices/" + did)[0], 404)  # acme no longer has it
        # The code works once (a used code is a wrong code, whoever shows it); the new owner's plain claim is
        # idempotent.
        for tok in (rival, self.token_of("acme")):
            p = self.d.ctl("devices", "claim", did, "--transfer-code-file", path, token=tok)
            self.assertEqual(p.returncode, 6, p.stderr)
            self.assertIn("not_found", p.stderr)
        self.assertEqual(self.d.ctl("devices", "claim", did, token=rival).returncode, 0)
        # A missing or empty code file is a local error (exit 4), nothing is sent.
        empty = os.path.join(self.d.tmp, "empty-code")
        open(empty, "w").close()
        self.assertEqual(self.d.ctl("devices", "claim", did, "--transfer-code-file", empty,
                                    token=rival).returncode, 4)
        self.assertEqual(self.d.ctl("devices", "claim", did, "--transfer-code-file", empty + ".none",
                                    token=rival).returncode, 4)
