"""The dashboard's server side (docs/api.md "Sessions" and "Dashboard"): the token-for-cookie sign-in, the
CSRF header every session request needs, sessions bound to their token, and the embedded files under /ui/
with their security headers."""

import os
import re
import sqlite3
import time

import harness
import test_mtls
import test_telemetry

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
COOKIE_RE = re.compile(r"aegis_session=([A-Za-z0-9_-]{43}); Path=/; HttpOnly; Secure; SameSite=Strict; "
                       r"Max-Age=(\d+)$")
SESSION_FIELDS = {"tenant_id", "tenant_name", "role", "expires_at", "csrf_token"}
TTL = 900


def ui_files():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "ui")
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            if not n.startswith("."):
                out.append(os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/"))
    return sorted(out)


class UiServerTest(harness.DaemonTestCase):
    tenants = ("acme", "rival")
    config = {"session_ttl": TTL}

    @classmethod
    def prepare(cls):
        cls.tok = {}
        for role in ("reader", "operator"):
            st, _, body = cls.client.api("POST", "/v1/tokens", {"name": "ui-" + role, "role": role})
            if st != 201:
                raise RuntimeError("POST /v1/tokens -> %d %r" % (st, body))
            cls.tok[role] = body
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "acme-widget"})
        if st != 201:
            raise RuntimeError("POST /v1/products -> %d %r" % (st, body))
        cls.product = body
        cls.secrets = []

    def db(self):
        c = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"), timeout=30)
        c.execute("PRAGMA busy_timeout = 30000")
        return c

    def sign_in(self, token):
        """POST /v1/session with token: returns (cookie value, reply body, headers)."""
        st, hdrs, body = self.api("POST", "/v1/session", {"token": token}, token=None)
        self.assertEqual(st, 201, body)
        cookies = hdrs.get_all("Set-Cookie")
        self.assertEqual(len(cookies), 1, cookies)
        m = COOKIE_RE.match(cookies[0])
        self.assertIsNotNone(m, "cookie attributes: %r" % cookies[0])
        self.secrets += [m.group(1), body["csrf_token"], token]
        return m.group(1), body, hdrs

    def with_session(self, method, path, cookie, csrf=None, body=None):
        h = {"Cookie": "aegis_session=" + cookie}
        if csrf is not None:
            h["X-CSRF-Token"] = csrf
        return self.api(method, path, body, token=None, headers=h)

    # --- sign-in ---

    def test_sign_in_cookie_and_reply(self):
        cookie, body, _ = self.sign_in(self.tok["operator"]["token"])
        self.assertEqual(set(body), SESSION_FIELDS)
        self.assertEqual(body["tenant_id"], self.d.tenant_ids["acme"])
        self.assertEqual(body["tenant_name"], "acme")
        self.assertEqual(body["role"], "operator")
        self.assertRegex(body["expires_at"], harness.RFC3339)
        self.assertRegex(body["csrf_token"], r"^[A-Za-z0-9_-]{43}$")
        st, hdrs, _ = self.api("POST", "/v1/session", {"token": self.tok["reader"]["token"]}, token=None)
        self.assertEqual(COOKIE_RE.match(hdrs["Set-Cookie"]).group(2), str(TTL))
        # GET /v1/session: the same object, without a CSRF header (how a reloaded page continues).
        got = self.assertOk(self.with_session("GET", "/v1/session", cookie))
        self.assertEqual(got, body)
        # Only hashes in the database.
        with self.db() as c:
            rows = c.execute("SELECT id_hash, csrf_hash FROM sessions").fetchall()
        self.assertTrue(rows)
        for idh, ch in rows:
            self.assertEqual((len(idh), len(ch)), (32, 32))
            self.assertNotIn(cookie.encode(), idh + ch)

    def test_bad_sign_ins(self):
        self.assertError(self.api("POST", "/v1/session", {"token": "aegis_1_" + "a" * 43}, token=None), 401,
                         "unauthorized")
        self.assertError(self.api("POST", "/v1/session", {"token": "nonsense"}, token=None), 401, "unauthorized")
        self.assertError(self.api("POST", "/v1/session", {"token": 5}, token=None), 400, "validation_failed")
        self.assertError(self.api("POST", "/v1/session", {"token": self.d.token, "x": 1}, token=None), 400,
                         "validation_failed")
        self.assertError(self.api("POST", "/v1/session", {}, token=None), 400, "validation_failed")
        self.assertError(self.api("POST", "/v1/session", "{not json", token=None), 400, "invalid_json")
        self.assertError(self.api("POST", "/v1/session", "[1]", token=None), 400, "invalid_json")
        st, hdrs, _ = self.api("POST", "/v1/session", {"token": "x"}, token=None)
        self.assertIsNone(hdrs.get("Set-Cookie"))
        for cookie in ("", "short", "a" * 43, "!" * 43, "a" * 44):
            with self.subTest(cookie=cookie):
                self.assertError(self.with_session("GET", "/v1/session", cookie), 401, "unauthorized")
                self.assertError(self.with_session("GET", "/v1/products", cookie, "x"), 401, "unauthorized")
        self.assertError(self.api("GET", "/v1/session", token=None), 401, "unauthorized")

    # --- CSRF ---

    def test_csrf_on_every_request(self):
        cookie, body, _ = self.sign_in(self.tok["operator"]["token"])
        csrf = body["csrf_token"]
        self.assertOk(self.with_session("GET", "/v1/products", cookie, csrf))
        self.assertError(self.with_session("GET", "/v1/products", cookie), 403, "csrf")
        self.assertError(self.with_session("GET", "/v1/products", cookie, csrf[:-1] + ("A" if csrf[-1] != "A"
                                                                                      else "B")), 403, "csrf")
        self.assertError(self.with_session("GET", "/v1/products", cookie, ""), 403, "csrf")
        other, ob, _ = self.sign_in(self.tok["operator"]["token"])
        self.assertError(self.with_session("GET", "/v1/products", cookie, ob["csrf_token"]), 403, "csrf")
        # Changes too, and nothing happens without it.
        self.assertError(self.with_session("POST", "/v1/products", cookie, None, {"name": "nocsrf"}), 403, "csrf")
        made = self.assertOk(self.with_session("POST", "/v1/products", cookie, csrf, {"name": "csrf-ok"}), 201)
        self.assertError(self.with_session("DELETE", "/v1/products/%d" % made["id"], cookie), 403, "csrf")
        self.assertError(self.with_session("DELETE", "/v1/products/%d" % made["id"], cookie, "x" * 43), 403,
                         "csrf")
        self.assertOk(self.with_session("DELETE", "/v1/products/%d" % made["id"], cookie, csrf), 204)
        names = {p["name"] for p in self.list_all("/v1/products")}
        self.assertNotIn("nocsrf", names)
        self.assertError(self.with_session("DELETE", "/v1/session", cookie), 403, "csrf")
        # A bearer request needs no CSRF header, and a bearer wins over a cookie.
        self.assertOk(self.api("GET", "/v1/products"))
        self.assertOk(self.api("GET", "/v1/products", headers={"Cookie": "aegis_session=" + other}))

    def test_roles_and_tenants_through_a_session(self):
        cookie, body, _ = self.sign_in(self.tok["reader"]["token"])
        csrf = body["csrf_token"]
        self.assertError(self.with_session("POST", "/v1/products", cookie, csrf, {"name": "reader-made"}), 403,
                         "forbidden")
        self.assertError(self.with_session("GET", "/v1/tokens", cookie, csrf), 403, "forbidden")
        self.assertOk(self.with_session("GET", "/v1/products/%d" % self.product["id"], cookie, csrf))
        rc, rb, _ = self.sign_in(self.token_of("rival"))
        self.assertEqual(rb["tenant_name"], "rival")
        self.assertError(self.with_session("GET", "/v1/products/%d" % self.product["id"], rc, rb["csrf_token"]),
                         404, "not_found")
        self.assertError(self.with_session("DELETE", "/v1/products/%d" % self.product["id"], rc,
                                           rb["csrf_token"]), 404, "not_found")
        # The session is no device credential.
        self.assertError(self.with_session("GET", "/v1/device/whoami", rc, rb["csrf_token"]), 401, "unauthorized")
        self.assertError(self.with_session("GET", "/v1/device/update", rc, rb["csrf_token"]), 401, "unauthorized")

    # --- bound to its token ---

    def test_revoking_the_token_ends_the_session(self):
        made = self.create("/v1/tokens", {"name": "to-revoke", "role": "reader"})
        cookie, body, _ = self.sign_in(made["token"])
        self.assertOk(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]))
        self.assertOk(self.api("DELETE", "/v1/tokens/%d" % made["id"]), 204)
        self.assertError(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]), 401, "unauthorized")
        self.assertError(self.with_session("GET", "/v1/session", cookie), 401, "unauthorized")
        self.assertError(self.api("POST", "/v1/session", {"token": made["token"]}, token=None), 401,
                         "unauthorized")

    def test_expired_token_or_session_ends_it(self):
        made = self.create("/v1/tokens", {"name": "to-expire", "role": "reader", "expires_in": 3600})
        cookie, body, _ = self.sign_in(made["token"])
        self.assertOk(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]))
        with self.db() as c:
            c.execute("UPDATE api_tokens SET expires_at = strftime('%s','now') - 1 WHERE id = ?", (made["id"],))
        self.assertError(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]), 401, "token_expired")
        self.assertError(self.with_session("GET", "/v1/session", cookie), 401, "token_expired")
        cookie, body, _ = self.sign_in(self.tok["reader"]["token"])
        with self.db() as c:
            c.execute("UPDATE sessions SET created_at = created_at - 2000, expires_at = strftime('%s','now') - 1 "
                      "WHERE token_id = ?", (self.tok["reader"]["id"],))
        self.assertError(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]), 401, "session_expired")
        self.assertError(self.with_session("GET", "/v1/session", cookie), 401, "session_expired")

    def test_role_is_the_tokens_at_each_request(self):
        made = self.create("/v1/tokens", {"name": "demoted", "role": "operator"})
        cookie, body, _ = self.sign_in(made["token"])
        with self.db() as c:
            c.execute("UPDATE api_tokens SET role = 'reader' WHERE id = ?", (made["id"],))
        self.assertError(self.with_session("POST", "/v1/products", cookie, body["csrf_token"], {"name": "demo"}),
                         403, "forbidden")
        self.assertEqual(self.assertOk(self.with_session("GET", "/v1/session", cookie))["role"], "reader")

    def test_sign_out(self):
        cookie, body, _ = self.sign_in(self.tok["reader"]["token"])
        st, hdrs, raw = self.client.request("DELETE", "/v1/session", token=None,
                                            headers={"Cookie": "aegis_session=" + cookie,
                                                     "X-CSRF-Token": body["csrf_token"]})
        self.assertEqual((st, raw), (204, b""))
        self.assertEqual(hdrs["Set-Cookie"], "aegis_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
        self.assertError(self.with_session("GET", "/v1/session", cookie), 401, "unauthorized")
        self.assertError(self.with_session("GET", "/v1/tenant", cookie, body["csrf_token"]), 401, "unauthorized")
        self.assertError(self.with_session("DELETE", "/v1/session", cookie, body["csrf_token"]), 401,
                         "unauthorized")
        # The token itself still works.
        self.assertOk(self.api("GET", "/v1/tenant", token=self.tok["reader"]["token"]))

    # --- the embedded files ---

    def check_ui_headers(self, hdrs):
        self.assertEqual(hdrs.get_all("Content-Security-Policy"), [CSP])
        self.assertEqual(hdrs["X-Frame-Options"], "DENY")
        self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff")
        self.assertEqual(hdrs["Referrer-Policy"], "no-referrer")
        self.assertEqual(hdrs.get_all("Cache-Control"), ["no-cache"])

    def test_ui_files_and_headers(self):
        files = ui_files()
        self.assertIn("index.html", files)
        root = os.path.join(os.path.dirname(__file__), "..", "..", "ui")
        for f in files + [""]:
            with self.subTest(file=f):
                st, hdrs, raw = self.client.request("GET", "/ui/" + f, token=None)
                self.assertEqual(st, 200)
                self.check_ui_headers(hdrs)
                with open(os.path.join(root, f or "index.html"), "rb") as fh:
                    self.assertEqual(raw, fh.read())
                etag = hdrs["ETag"]
                self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
                if f.endswith(".html") or f == "":
                    self.assertTrue(hdrs["Content-Type"].startswith("text/html"), hdrs["Content-Type"])
                if f.endswith(".js"):
                    self.assertTrue(hdrs["Content-Type"].startswith("text/javascript"), hdrs["Content-Type"])
                if f.endswith(".css"):
                    self.assertTrue(hdrs["Content-Type"].startswith("text/css"), hdrs["Content-Type"])
                st, hdrs, raw = self.client.request("GET", "/ui/" + f, token=None, headers={"If-None-Match": etag})
                self.assertEqual((st, raw), (304, b""))
                self.assertEqual(hdrs["ETag"], etag)

    def test_ui_unknown_paths(self):
        for path in ("/ui/nope.js", "/ui/vendor/nope.js", "/ui/..%2Findex.html", "/ui/a/b/c", "/ui/index.html/x",
                     "/ui/.hidden"):
            with self.subTest(path=path):
                st, hdrs, raw = self.client.request("GET", path, token=None)
                self.assertEqual(st, 404, raw)
        st, hdrs, raw = self.client.request("GET", "/ui/nope.js", token=None)
        self.check_ui_headers(hdrs)
        self.assertEqual(self.client.request("POST", "/ui/", token=None)[0], 405)

    def test_zz_no_secret_in_the_log(self):
        # Runs last in the class (unittest sorts by name): every secret a test used is now in self.secrets.
        self.sign_in(self.tok["reader"]["token"])
        log = self.d.log()
        self.assertIn("/v1/session", log)
        for s in set(UiServerTest.secrets) | set(self.secrets):
            secret = s.split("_", 2)[2] if s.startswith("aegis_") else s
            self.assertNotIn(secret, log)


class DashboardFiguresTest(test_telemetry.TelemetryBase):
    """The API additions the dashboard's overviews draw (docs/api.md "Dashboard figures")."""

    def db(self):
        c = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"), timeout=30)
        c.execute("PRAGMA busy_timeout = 30000")
        return c

    def attest(self, tenant, dev_id, result, reason=None, not_after=None, at=None):
        with self.db() as c:
            c.execute("INSERT INTO attestations (tenant_id, device_id, created_at, result, reason, cert_serial, "
                      "cert_not_after) VALUES (?, ?, coalesce(?, strftime('%s','now')), ?, ?, ?, ?)",
                      (self.d.tenant_ids[tenant], dev_id, at, result, reason,
                       "01" if result == "pass" else None, not_after if result == "pass" else None))
            c.execute("UPDATE devices SET attest_at = strftime('%s','now'), attest_result = ?, attest_reason = ? "
                      "WHERE id = ?", (result, reason, dev_id))

    def test_attestation_stats(self):
        a = self.make_device()
        o = self.make_device("other")
        now = int(time.time())
        self.attest("acme", a.dev.id, "pass", not_after=now + 86400)
        self.attest("acme", a.dev.id, "pass", not_after=now + 86400)
        self.attest("acme", a.dev.id, "fail", "rollback")
        self.attest("acme", a.dev.id, "fail", "rollback")
        self.attest("acme", a.dev.id, "fail", "log_mismatch")
        self.attest("acme", a.dev.id, "fail", "rollback", at=now - 40 * 86400)  # outside any window below
        self.attest("other", o.dev.id, "fail", "rollback")
        body = self.assertOk(self.api("GET", "/v1/attestations/stats?granularity=hour"))
        self.assertEqual(body["granularity"], "hour")
        self.assertEqual(len(body["items"]), 7 * 24 + 1)  # since is rounded down to the hour
        self.assertEqual(body["totals"], {"pass": 2, "fail": 3, "reasons": {"rollback": 2, "log_mismatch": 1}})
        last = [i for i in body["items"] if i["pass"] or i["fail"]]
        self.assertEqual(len(last), 1)
        self.assertEqual(last[0]["reasons"], {"rollback": 2, "log_mismatch": 1})
        self.assertEqual(last[0]["period_start"], time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now)))
        day = self.assertOk(self.api("GET", "/v1/attestations/stats?since=2026-01-01T00:00:00Z&granularity=day"
                                     "&until=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))))
        self.assertEqual(day["totals"]["fail"], 4)
        other = self.assertOk(self.api("GET", "/v1/attestations/stats", token=self.token_of("other")))
        self.assertEqual(other["totals"], {"pass": 0, "fail": 1, "reasons": {"rollback": 1}})
        for q in ("granularity=week", "since=yesterday", "granularity=hour&since=2026-01-01T00:00:00Z",
                  "since=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z"):
            with self.subTest(q=q):
                self.assertError(self.api("GET", "/v1/attestations/stats?" + q), 400, "bad_request")

    def test_device_stats(self):
        tok = self.token_of("other")
        before = self.assertOk(self.api("GET", "/v1/devices/stats", token=tok))
        a, b, c = self.make_device("other"), self.make_device("other"), self.make_device("other")
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % c.dev.id, token=tok))
        extra = test_mtls.Device(self.devdir, "unclaimed-x")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": extra.pub}], "claim": False}, token=tok))
        now = int(time.time())
        self.attest("other", a.dev.id, "pass", not_after=now + 3600)
        self.attest("other", b.dev.id, "pass", not_after=now - 10)
        self.attest("other", b.dev.id, "fail", "rollback")
        body = self.assertOk(self.api("GET", "/v1/devices/stats", token=tok))
        st = before["states"]
        self.assertEqual(body["states"], {"unclaimed": st["unclaimed"] + 1, "active": st["active"] + 2,
                                          "blocked": st["blocked"] + 1})
        self.assertEqual(body["attestation"]["pass"] - before["attestation"]["pass"], 1)
        self.assertEqual(body["attestation"]["fail"] - before["attestation"]["fail"], 1)
        self.assertEqual(body["certificates"]["expiring"] - before["certificates"]["expiring"], 1)
        self.assertEqual(body["certificates"]["expired"] - before["certificates"]["expired"], 1)
        self.assertEqual(body["within"], 21600)
        listed = [e["device_id"] for e in body["expiring"]]
        self.assertLess(listed.index(b.dev.id), listed.index(a.dev.id))  # soonest (expired) first
        narrow = self.assertOk(self.api("GET", "/v1/devices/stats?within=60&limit=1", token=tok))
        self.assertEqual(narrow["certificates"]["valid"] - before["certificates"]["valid"], 1)
        self.assertEqual(len(narrow["expiring"]), 1)
        mine = self.assertOk(self.api("GET", "/v1/devices/stats"))
        self.assertNotIn(b.dev.id, [e["device_id"] for e in mine["expiring"]])
        self.assertError(self.api("GET", "/v1/devices/stats?within=0"), 400, "bad_request")
        self.assertError(self.api("GET", "/v1/devices/stats?limit=101"), 400, "bad_request")

    def test_device_certificate(self):
        """GET /v1/devices/{id}/certificate: the newest passed attestation's since the claim, whatever failed
        after it; null without one; another tenant's device does not exist."""
        a, b = self.make_device(), self.make_device()
        path = "/v1/devices/%s/certificate"
        self.assertEqual(self.assertOk(self.api("GET", path % a.dev.id)), {"device_id": a.dev.id, "certificate": None})
        now = int(time.time())
        self.attest("acme", a.dev.id, "pass", not_after=now + 100)
        self.attest("acme", a.dev.id, "pass", not_after=now + 3600)
        for _ in range(30):  # more refusals than any page of the history
            self.attest("acme", a.dev.id, "fail", "rollback")
        cert = self.assertOk(self.api("GET", path % a.dev.id))["certificate"]
        self.assertEqual((cert["serial"], cert["not_after"]),
                         ("01", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))), cert)
        history = self.list_all("/v1/devices/%s/attestations" % a.dev.id)
        self.assertEqual(cert["attestation_id"], max(h["id"] for h in history if h["result"] == "pass"))
        # issued before the device's claim: another registration's certificate, no longer current
        self.attest("acme", b.dev.id, "pass", not_after=now + 3600, at=now - 86400)
        self.assertIsNone(self.assertOk(self.api("GET", path % b.dev.id))["certificate"])
        self.assertError(self.api("GET", path % a.dev.id, token=self.token_of("other")), 404, "not_found")
        self.assertError(self.api("GET", path % ("0" * 64)), 404, "not_found")
        self.assertEqual(self.api("GET", path % "xyz")[0], 400)

    def test_bucket_series_and_fleet(self):
        dc = self.make_device()
        st, _, out = dc.post(test_telemetry.batch(
            [test_telemetry.crash(i, version="1.0.0", pc="0x0800feed") for i in range(1, 4)] +
            [test_telemetry.crash(4, version="1.1.0", pc="0x0800feed"), test_telemetry.heartbeat(5, period=7200)]))
        self.assertEqual(st, 200, out)
        oc = self.make_device("other")
        st, _, out = oc.post(test_telemetry.batch([test_telemetry.crash(1, pc="0x0800feed")]))
        self.assertEqual(st, 200, out)
        mine = [b for b in self.list_all("/v1/failures/buckets") if b["pc"] == "0x800feed"]
        theirs = [b for b in self.list_all("/v1/failures/buckets", token=self.token_of("other"))
                  if b["pc"] == "0x800feed"]
        self.assertEqual((len(mine), len(theirs)), (1, 1))
        bid, oid = mine[0]["id"], theirs[0]["id"]
        body = self.assertOk(self.api("GET", "/v1/failures/bucket-series?id=%d&id=%d&days=3" % (oid, bid)))
        self.assertEqual(body["days"], 3)
        self.assertEqual(len(body["items"]), 1)  # the other tenant's bucket does not exist here
        item = body["items"][0]
        self.assertEqual(item["bucket_id"], bid)
        self.assertEqual(item["daily"], [0, 0, 4])
        self.assertEqual(item["versions"], [{"image_version": "1.0.0", "count": 3},
                                            {"image_version": "1.1.0", "count": 1}])
        for q in ("", "?id=0", "?id=x", "?id=1&days=0", "?id=1&days=91", "?" + "&".join(["id=1"] * 101)):
            with self.subTest(q=q[:20]):
                self.assertError(self.api("GET", "/v1/failures/bucket-series" + q), 400, "bad_request")
        fleet = self.assertOk(self.api("GET", "/v1/failures/fleet?granularity=hour"))
        rates = self.assertOk(self.api("GET", "/v1/failures/crash-rates?granularity=hour"))
        self.assertEqual(len(fleet["items"]), 7 * 24 + 1)
        hours = sum(i["device_hours"] for i in fleet["items"])
        self.assertAlmostEqual(hours, rates["fleet"]["device_hours"])
        self.assertGreaterEqual(hours, 2.0)
        self.assertEqual(sum(i["crash_hours"] for i in fleet["items"]), rates["fleet"]["crash_hours"])
        self.assertEqual(sum(i["crashes"] for i in fleet["items"]), rates["fleet"]["crashes"])
        self.assertAlmostEqual(sum(i["crash_free_device_hours"] for i in fleet["items"]),
                               rates["fleet"]["crash_free_device_hours"])
        self.assertError(self.api("GET", "/v1/failures/fleet?granularity=minute"), 400, "bad_request")
