"""Bearer tokens: authentication failures, roles, token management, secrets never shown twice."""

import glob
import os

import harness

TOKEN_FIELDS = {"id", "name", "role", "created_at", "created_by", "revoked_at", "expires_at", "last_used_at"}


def secret_of(token):
    return token.split("_", 2)[2]


class AuthTest(harness.DaemonTestCase):
    tenants = ("acme", "rival")

    @classmethod
    def prepare(cls):
        cls.tok = {}
        for role in ("reader", "operator", "admin"):
            st, _, body = cls.client.api("POST", "/v1/tokens", {"name": "fixture-" + role, "role": role})
            if st != 201:
                raise RuntimeError("POST /v1/tokens %s -> %d %r" % (role, st, body))
            cls.tok[role] = body["token"]

    def assert401(self, resp):
        body = self.assertError(resp, 401, "unauthorized")
        www = resp[1].get("WWW-Authenticate")
        self.assertIsNotNone(www, "401 without WWW-Authenticate")
        self.assertTrue(www.startswith("Bearer"), www)
        return body

    # --- authentication failures ---

    def test_no_token(self):
        for method, path in (("GET", "/v1/products"), ("GET", "/v1/tenant"), ("POST", "/v1/products"),
                             ("GET", "/v1/tokens"), ("GET", "/v1/audit"), ("GET", "/v1/devices")):
            with self.subTest(method=method, path=path):
                self.assert401(self.api(method, path, {"name": "x"} if method == "POST" else None, token=None))

    def test_malformed_authorization(self):
        tid = self.d.token.split("_")[1]
        bad_headers = ["Bearer", "Bearer ", "Bearer garbage", "Basic dXNlcjpwYXNz", "bearer" + " x",
                       "Bearer aegis_", "Bearer aegis__" + "a" * 43, "Bearer aegis_x_" + "a" * 43,
                       "Bearer aegis_-1_" + "a" * 43, "Bearer aegis_%s" % tid, "Bearer aegis_%s_" % tid,
                       "Bearer aegis_%s_short" % tid, "Bearer aegis_%s_%s" % (tid, "a" * 400),
                       "Bearer " + self.d.token + " extra", "Token " + self.d.token]
        for h in bad_headers:
            with self.subTest(header=h[:40]):
                self.assert401(self.api("GET", "/v1/products", token=None, headers={"Authorization": h}))

    def test_wrong_secret(self):
        t = self.d.token
        s = secret_of(t)
        flipped = ("b" if s[0] == "a" else "a") + s[1:]
        self.assert401(self.api("GET", "/v1/products", token=t[: -len(s)] + flipped))
        last = s[:-1] + ("B" if s[-1] == "A" else "A")
        self.assert401(self.api("GET", "/v1/products", token=t[: -len(s)] + last))

    def test_unknown_token_id(self):
        s = secret_of(self.d.token)
        for tid in ("999999", "0", "9223372036854775807", "99999999999999999999999"):
            with self.subTest(id=tid):
                self.assert401(self.api("GET", "/v1/products", token="aegis_%s_%s" % (tid, s)))

    def test_other_tenants_token_id_with_own_secret(self):
        # The id of rival's token with acme's secret must not authenticate as either.
        rid = self.token_of("rival").split("_")[1]
        self.assert401(self.api("GET", "/v1/products", token="aegis_%s_%s" % (rid, secret_of(self.d.token))))

    def test_revoked_token(self):
        made = self.create("/v1/tokens", {"name": "to-revoke", "role": "operator"})
        self.assertOk(self.api("GET", "/v1/products", token=made["token"]))
        st, _, body = self.api("DELETE", "/v1/tokens/%d" % made["id"])
        self.assertEqual(st, 204, body)
        self.assertIsNone(body, "204 with a body")
        self.assert401(self.api("GET", "/v1/products", token=made["token"]))
        self.assert401(self.api("POST", "/v1/products", {"name": "after-revoke"}, token=made["token"]))
        # Idempotent.
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % made["id"])[0], 204)
        listed = {t["id"]: t for t in self.list_all("/v1/tokens")}
        self.assertIsNotNone(listed[made["id"]]["revoked_at"])
        self.assertRegex(listed[made["id"]]["revoked_at"], harness.RFC3339)

    def test_revoke_on_keepalive_connection_takes_effect_at_once(self):
        made = self.create("/v1/tokens", {"name": "ka-revoke", "role": "reader"})
        c = self.d.client(token=made["token"])
        self.assertEqual(c.api("GET", "/v1/products")[0], 200)
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % made["id"])[0], 204)
        self.assert401(c.api("GET", "/v1/products"))
        c.close()

    # --- roles ---

    def test_reader(self):
        t = self.tok["reader"]
        for path in ("/v1/products", "/v1/device-groups", "/v1/devices", "/v1/tenant"):
            with self.subTest(path=path):
                self.assertOk(self.api("GET", path, token=t))
        self.assertError(self.api("POST", "/v1/products", {"name": "by-reader"}, token=t), 403, "forbidden")
        self.assertError(self.api("GET", "/v1/tokens", token=t), 403, "forbidden")
        self.assertError(self.api("GET", "/v1/audit", token=t), 403, "forbidden")
        self.assertError(self.api("POST", "/v1/tokens", {"name": "x", "role": "admin"}, token=t), 403, "forbidden")
        names = {p["name"] for p in self.list_all("/v1/products")}
        self.assertNotIn("by-reader", names, "a forbidden POST created the product")

    def test_reader_forbidden_before_validation(self):
        # Role is checked before the body: a reader gets 403, not a 400 that leaks validation details.
        self.assertError(self.api("POST", "/v1/products", {"bogus": 1}, token=self.tok["reader"]), 403,
                         "forbidden")

    def test_reader_cannot_write_anything(self):
        t = self.tok["reader"]
        p = self.create("/v1/products", {"name": "reader-target"})
        cases = [("PATCH", "/v1/products/%d" % p["id"], {"description": "x"}),
                 ("DELETE", "/v1/products/%d" % p["id"], None),
                 ("POST", "/v1/device-groups", {"product_id": p["id"], "name": "g"}),
                 ("POST", "/v1/devices/import", {"devices": []}),
                 ("DELETE", "/v1/tokens/1", None)]
        for method, path, body in cases:
            with self.subTest(method=method, path=path):
                self.assertError(self.api(method, path, body, token=t), 403, "forbidden")
        self.assertOk(self.api("GET", "/v1/products/%d" % p["id"], token=t))

    def test_operator(self):
        t = self.tok["operator"]
        p = self.create("/v1/products", {"name": "by-operator"}, token=t)
        self.assertEqual(p["name"], "by-operator")
        self.assertError(self.api("POST", "/v1/tokens", {"name": "x", "role": "reader"}, token=t), 403, "forbidden")
        self.assertError(self.api("GET", "/v1/tokens", token=t), 403, "forbidden")
        self.assertError(self.api("DELETE", "/v1/tokens/1", token=t), 403, "forbidden")
        self.assertError(self.api("GET", "/v1/audit", token=t), 403, "forbidden")

    def test_tenant_get(self):
        body = self.assertOk(self.api("GET", "/v1/tenant", token=self.tok["reader"]))
        self.assertEqual(body["name"], "acme")
        self.assertEqual(body["id"], self.d.tenant_ids["acme"])
        self.assertRegex(body["created_at"], harness.RFC3339)
        body = self.assertOk(self.api("GET", "/v1/tenant", token=self.token_of("rival")))
        self.assertEqual(body["name"], "rival")

    # --- admin: tokens ---

    def test_admin_tokens_create_list_revoke(self):
        made = self.create("/v1/tokens", {"name": "ci-reader", "role": "reader"})
        self.assertEqual(set(made), TOKEN_FIELDS | {"token"})
        self.assertEqual(made["name"], "ci-reader")
        self.assertEqual(made["role"], "reader")
        self.assertIsNone(made["revoked_at"])
        self.assertRegex(made["created_at"], harness.RFC3339)
        self.assertTrue(made["token"].startswith("aegis_%d_" % made["id"]), made["token"][:12])
        self.assertEqual(len(secret_of(made["token"])), 43)
        self.assertOk(self.api("GET", "/v1/products", token=made["token"]))

        items = self.list_all("/v1/tokens")
        mine = [t for t in items if t["id"] == made["id"]]
        self.assertEqual(len(mine), 1)
        same = TOKEN_FIELDS - {"last_used_at"}  # it was used just above
        self.assertEqual({k: mine[0][k] for k in same}, {k: made[k] for k in same})
        self.assertRegex(mine[0]["last_used_at"], harness.RFC3339)
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % made["id"])[0], 204)

    def test_token_list_never_has_secrets_or_hashes(self):
        made = self.create("/v1/tokens", {"name": "secret-check", "role": "admin"})
        st, _, raw = self.client.request("GET", "/v1/tokens")
        self.assertEqual(st, 200)
        self.assertNotIn(secret_of(made["token"]).encode(), raw)
        self.assertNotIn(secret_of(self.d.token).encode(), raw)
        for t in harness.json.loads(raw)["items"]:
            self.assertNotIn("token", t)
            self.assertFalse([k for k in t if "hash" in k or "secret" in k], t)
            self.assertTrue(set(t) <= TOKEN_FIELDS, "unexpected token fields %r" % (set(t) - TOKEN_FIELDS))

    def test_token_secret_shown_only_once(self):
        made = self.create("/v1/tokens", {"name": "shown-once", "role": "reader"})
        sec = secret_of(made["token"]).encode()
        self.assertOk(self.api("GET", "/v1/products", token=made["token"]))
        for path in ("/v1/tokens", "/v1/audit?limit=1000", "/v1/tenant"):
            with self.subTest(path=path):
                st, _, raw = self.client.request("GET", path)
                self.assertEqual(st, 200)
                self.assertNotIn(sec, raw)
        self.assertNotIn(sec.decode(), self.d.log(), "the token secret is in the daemon log")
        # Only SHA-256 of the secret is stored.
        for f in glob.glob(os.path.join(self.d.data_dir, "aegis.db*")):
            with open(f, "rb") as fh:
                self.assertNotIn(sec, fh.read(), "the token secret is stored in %s" % f)

    def test_token_list_is_per_tenant(self):
        rival = self.token_of("rival")
        made = self.create("/v1/tokens", {"name": "rival-only", "role": "reader"}, token=rival)
        ids = {t["id"] for t in self.list_all("/v1/tokens")}
        self.assertNotIn(made["id"], ids)
        # Revoking another tenant's token: 404, and it keeps working.
        self.assertError(self.api("DELETE", "/v1/tokens/%d" % made["id"]), 404, "not_found")
        self.assertOk(self.api("GET", "/v1/products", token=made["token"]))

    def test_token_create_validation(self):
        bad = [{}, {"name": "x"}, {"role": "reader"}, {"name": "x", "role": "root"}, {"name": "", "role": "reader"},
               {"name": "x" * 129, "role": "reader"}, {"name": 5, "role": "reader"},
               {"name": "x", "role": "reader", "extra": True}, {"name": "x", "role": None}]
        for body in bad:
            with self.subTest(body=body):
                self.assertError(self.api("POST", "/v1/tokens", body), 400, "validation_failed")

    def test_revoke_bad_ids(self):
        self.assertError(self.api("DELETE", "/v1/tokens/999999"), 404, "not_found")
        for bad in ("abc", "-1", "1.5", "0x10", "99999999999999999999999"):
            with self.subTest(id=bad):
                st = self.api("DELETE", "/v1/tokens/" + bad)[0]
                self.assertIn(st, (400, 404), "DELETE /v1/tokens/%s -> %d" % (bad, st))
        self.assertError(self.api("DELETE", "/v1/tokens/abc"), 400, "bad_request")

    def test_admin_can_revoke_itself(self):
        made = self.create("/v1/tokens", {"name": "self-revoke", "role": "admin"})
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % made["id"], token=made["token"])[0], 204)
        self.assert401(self.api("GET", "/v1/tokens", token=made["token"]))
