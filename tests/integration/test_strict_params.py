"""Path and query parameters are parsed strictly (issue 10 item 5): a NUL byte cannot cut an id short, an id has
one spelling, a date must exist, an explicit bound of 1970-01-01 is a bound, and "." and ".." are no component
names."""

import harness
from test_telemetry import TelemetryBase, batch, crash


class StrictParamsTest(harness.DaemonTestCase):
    tenants = ("acme",)

    def new_token(self):
        st, _, body = self.api("POST", "/v1/tokens", {"name": "victim", "role": "reader"})
        self.assertEqual(st, 201, body)
        return body["id"]

    def token_alive(self, tid):
        return tid in [t["id"] for t in self.list_all("/v1/tokens") if t.get("revoked_at") is None]

    def test_nul_in_a_path_id_is_400_and_changes_nothing(self):
        tid = self.new_token()
        for path in ("/v1/tokens/%d%%00garbage" % tid, "/v1/tokens/%d%%00" % tid):
            self.assertError(self.api("DELETE", path), 400, "bad_request")
        self.assertTrue(self.token_alive(tid), "a path with %00 revoked the token")
        # the id itself still works
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % tid)[0], 204)
        self.assertFalse(self.token_alive(tid))

    def test_nul_in_a_query_argument_is_400(self):
        self.assertError(self.api("GET", "/v1/products?limit=1%00x"), 400, "bad_request")
        self.assertError(self.api("GET", "/v1/failures/buckets?since=2026-01-01T00:00:00Z%00x"), 400,
                         "bad_request")

    def test_ids_have_one_spelling(self):
        p = self.create("/v1/products", {"name": "spelled"})
        self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))
        for spelled in ("0%d" % p["id"], "00%d" % p["id"], "%%2B%d" % p["id"], "+%d" % p["id"], "-0"):
            self.assertError(self.api("GET", "/v1/products/" + spelled), 400, "bad_request")
        for q in ("limit=010", "limit=%2B10", "limit=+10", "product_id=01"):
            self.assertError(self.api("GET", "/v1/failures/buckets?" + q), 400, "bad_request")

    def test_impossible_dates_are_400(self):
        for d in ("2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T12:00:00Z", "2026-1-05T00:00:00Z"):
            self.assertError(self.api("GET", "/v1/failures/buckets?since=" + d), 400, "bad_request")
        self.assertOk(self.api("GET", "/v1/failures/buckets?since=2028-02-29T00:00:00Z"))

    def test_dot_components_are_refused(self):
        for c in (".", ".."):
            self.assertError(self.api("GET", "/v1/failures/buckets?component=" + c), 400, "bad_request")
            st, _, body = self.api("POST", "/v1/reference-values", {"component": c, "version": "1", "svn": 1,
                                                           "digest": "ab" * 32})
            self.assertEqual(st, 400, body)


class StrictWindowTest(TelemetryBase):
    def test_explicit_epoch_until_is_a_bound(self):
        # A crash report, so the tenant has a bucket.
        dc = self.make_device()
        st, _, body = dc.post(batch([crash(1)]))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["results"][0]["status"], "stored", body)
        everything = self.assertOk(self.api("GET", "/v1/failures/buckets"))["items"]
        self.assertGreater(len(everything), 0)
        before_1970 = self.assertOk(self.api("GET", "/v1/failures/buckets?until=1970-01-01T00:00:00Z"))
        self.assertEqual(before_1970["items"], [], "until=1970-01-01T00:00:00Z was taken as no bound")
        st, _, raw = self.client.request("GET", "/v1/failures/export?format=jsonl&until=1970-01-01T00:00:00Z",
                                         token=self.token_of("acme"))
        self.assertEqual((st, raw), (200, b""))
