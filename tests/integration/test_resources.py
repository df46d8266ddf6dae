"""Products and device groups: CRUD, conflicts, tenant scoping, pagination, body validation and limits."""

import socket
import time
import urllib.parse

import harness

PRODUCT_FIELDS = {"id", "name", "description", "created_at", "updated_at"}
GROUP_FIELDS = {"id", "product_id", "name", "description", "created_at", "updated_at"}


class ProductsTest(harness.DaemonTestCase):
    tenants = ("acme", "rival", "pager", "walker")

    def test_product_crud(self):
        p = self.create("/v1/products", {"name": "crud", "description": "first"})
        self.assertEqual(set(p), PRODUCT_FIELDS)
        self.assertIsInstance(p["id"], int)
        self.assertEqual((p["name"], p["description"]), ("crud", "first"))
        self.assertRegex(p["created_at"], harness.RFC3339)
        self.assertRegex(p["updated_at"], harness.RFC3339)

        self.assertEqual(self.assertOk(self.api("GET", "/v1/products/%d" % p["id"])), p)

        u = self.assertOk(self.api("PATCH", "/v1/products/%d" % p["id"], {"description": "second"}))
        self.assertEqual((u["id"], u["name"], u["description"]), (p["id"], "crud", "second"))
        self.assertEqual(u["created_at"], p["created_at"])
        u = self.assertOk(self.api("PATCH", "/v1/products/%d" % p["id"], {"name": "crud-renamed"}))
        self.assertEqual((u["name"], u["description"]), ("crud-renamed", "second"))
        self.assertEqual(self.assertOk(self.api("GET", "/v1/products/%d" % p["id"])), u)

        st, _, body = self.api("DELETE", "/v1/products/%d" % p["id"])
        self.assertEqual(st, 204, body)
        self.assertIsNone(body)
        self.assertError(self.api("GET", "/v1/products/%d" % p["id"]), 404, "not_found")
        self.assertError(self.api("PATCH", "/v1/products/%d" % p["id"], {"name": "x"}), 404, "not_found")
        self.assertError(self.api("DELETE", "/v1/products/%d" % p["id"]), 404, "not_found")
        self.assertNotIn(p["id"], [x["id"] for x in self.list_all("/v1/products")])

    def test_product_description_optional(self):
        p = self.create("/v1/products", {"name": "no-description"})
        self.assertIn(p["description"], ("", None))

    def test_product_duplicate_name_409(self):
        self.create("/v1/products", {"name": "dup"})
        self.assertError(self.api("POST", "/v1/products", {"name": "dup"}), 409, "conflict")
        other = self.create("/v1/products", {"name": "dup-other"})
        self.assertError(self.api("PATCH", "/v1/products/%d" % other["id"], {"name": "dup"}), 409, "conflict")
        # Names are unique per tenant, not globally.
        self.create("/v1/products", {"name": "dup"}, token=self.token_of("rival"))

    def test_product_delete_with_groups_409(self):
        p = self.create("/v1/products", {"name": "has-groups"})
        g = self.create("/v1/device-groups", {"product_id": p["id"], "name": "g1"})
        self.assertError(self.api("DELETE", "/v1/products/%d" % p["id"]), 409, "conflict")
        self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))
        self.assertEqual(self.api("DELETE", "/v1/device-groups/%d" % g["id"])[0], 204)
        self.assertEqual(self.api("DELETE", "/v1/products/%d" % p["id"])[0], 204)

    def test_product_other_tenant_404(self):
        p = self.create("/v1/products", {"name": "acme-private"})
        rival = self.token_of("rival")
        self.assertError(self.api("GET", "/v1/products/%d" % p["id"], token=rival), 404, "not_found")
        self.assertError(self.api("PATCH", "/v1/products/%d" % p["id"], {"name": "stolen"}, token=rival), 404,
                         "not_found")
        self.assertError(self.api("DELETE", "/v1/products/%d" % p["id"], token=rival), 404, "not_found")
        self.assertNotIn(p["id"], [x["id"] for x in self.list_all("/v1/products", token=rival)])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))["name"], "acme-private")

    def test_product_bad_ids(self):
        self.assertError(self.api("GET", "/v1/products/999999"), 404, "not_found")
        for bad in ("abc", "-1", "1x", "0x1", "99999999999999999999999", "%20"):
            with self.subTest(id=bad):
                st = self.api("GET", "/v1/products/" + bad)[0]
                self.assertIn(st, (400, 404))
        self.assertError(self.api("GET", "/v1/products/abc"), 400, "bad_request")

    # --- device groups ---

    def test_group_crud_and_filter(self):
        p1 = self.create("/v1/products", {"name": "grp-p1"})
        p2 = self.create("/v1/products", {"name": "grp-p2"})
        g1 = self.create("/v1/device-groups", {"product_id": p1["id"], "name": "eu", "description": "Europe"})
        self.assertEqual(set(g1), GROUP_FIELDS)
        self.assertEqual((g1["product_id"], g1["name"], g1["description"]), (p1["id"], "eu", "Europe"))
        g2 = self.create("/v1/device-groups", {"product_id": p1["id"], "name": "us"})
        g3 = self.create("/v1/device-groups", {"product_id": p2["id"], "name": "eu"})  # same name, other product
        self.assertError(self.api("POST", "/v1/device-groups", {"product_id": p1["id"], "name": "eu"}), 409,
                         "conflict")

        self.assertEqual(self.assertOk(self.api("GET", "/v1/device-groups/%d" % g1["id"])), g1)
        u = self.assertOk(self.api("PATCH", "/v1/device-groups/%d" % g1["id"], {"name": "emea"}))
        self.assertEqual((u["name"], u["description"], u["product_id"]), ("emea", "Europe", p1["id"]))
        self.assertError(self.api("PATCH", "/v1/device-groups/%d" % g2["id"], {"name": "emea"}), 409, "conflict")

        in_p1 = self.list_all("/v1/device-groups?product_id=%d" % p1["id"])
        self.assertEqual(sorted(g["id"] for g in in_p1), sorted([g1["id"], g2["id"]]))
        in_p2 = self.list_all("/v1/device-groups?product_id=%d" % p2["id"])
        self.assertEqual([g["id"] for g in in_p2], [g3["id"]])
        every = {g["id"] for g in self.list_all("/v1/device-groups")}
        self.assertTrue({g1["id"], g2["id"], g3["id"]} <= every)
        self.assertError(self.api("GET", "/v1/device-groups?product_id=abc"), 400, "bad_request")

        self.assertEqual(self.api("DELETE", "/v1/device-groups/%d" % g2["id"])[0], 204)
        self.assertError(self.api("GET", "/v1/device-groups/%d" % g2["id"]), 404, "not_found")

    def test_group_with_other_tenants_product_404(self):
        p = self.create("/v1/products", {"name": "rival-owned"}, token=self.token_of("rival"))
        self.assertError(self.api("POST", "/v1/device-groups", {"product_id": p["id"], "name": "x"}), 404,
                         "not_found")
        self.assertError(self.api("POST", "/v1/device-groups", {"product_id": 999999, "name": "x"}), 404,
                         "not_found")
        g = self.create("/v1/device-groups", {"product_id": p["id"], "name": "rival-g"}, token=self.token_of("rival"))
        self.assertError(self.api("GET", "/v1/device-groups/%d" % g["id"]), 404, "not_found")
        self.assertError(self.api("PATCH", "/v1/device-groups/%d" % g["id"], {"name": "y"}), 404, "not_found")
        self.assertError(self.api("DELETE", "/v1/device-groups/%d" % g["id"]), 404, "not_found")
        # Filtering by another tenant's product shows nothing of it.
        st, _, body = self.api("GET", "/v1/device-groups?product_id=%d" % p["id"])
        self.assertIn(st, (200, 404))
        if st == 200:
            self.assertEqual(body["items"], [])
        self.assertNotIn(g["id"], [x["id"] for x in self.list_all("/v1/device-groups")])

    def test_group_validation(self):
        p = self.create("/v1/products", {"name": "grp-valid"})
        for body in ({}, {"name": "x"}, {"product_id": p["id"]}, {"product_id": "1", "name": "x"},
                     {"product_id": p["id"], "name": ""}, {"product_id": p["id"], "name": "x" * 129},
                     {"product_id": p["id"], "name": "x", "extra": 1}, {"product_id": None, "name": "x"}):
            with self.subTest(body=body):
                self.assertError(self.api("POST", "/v1/device-groups", body), 400, "validation_failed")
        g = self.create("/v1/device-groups", {"product_id": p["id"], "name": "ok"})
        # The product of a group is fixed.
        self.assertError(self.api("PATCH", "/v1/device-groups/%d" % g["id"], {"product_id": p["id"]}), 400,
                         "validation_failed")

    # --- pagination ---

    def test_pagination_products(self):
        tok = self.token_of("pager")
        made = [self.create("/v1/products", {"name": "page-%02d" % i}, token=tok)["id"] for i in range(25)]
        pages = []
        cursor = None
        for _ in range(5):
            path = "/v1/products?limit=10" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
            body = self.assertOk(self.api("GET", path, token=tok))
            self.assertEqual(set(body), {"items", "next_cursor"})
            pages.append([p["id"] for p in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLessEqual(len(cursor.encode()), 128)
        self.assertEqual([len(p) for p in pages], [10, 10, 5])
        ids = [i for p in pages for i in p]
        self.assertEqual(len(set(ids)), 25)
        self.assertEqual(ids, sorted(made), "pages are not ordered by id")
        # Default limit (100) returns everything at once.
        body = self.assertOk(self.api("GET", "/v1/products", token=tok))
        self.assertEqual(len(body["items"]), 25)
        self.assertIsNone(body["next_cursor"])
        body = self.assertOk(self.api("GET", "/v1/products?limit=1000", token=tok))
        self.assertEqual(len(body["items"]), 25)

    def test_cursor_survives_changes(self):
        tok = self.token_of("walker")
        ids = [self.create("/v1/products", {"name": "cur-%d" % i}, token=tok)["id"] for i in range(3)]
        seen = []
        body = self.assertOk(self.api("GET", "/v1/products?limit=1", token=tok))
        while True:
            seen += [p["id"] for p in body["items"]]
            if body["next_cursor"] is None:
                break
            if len(seen) == 1:
                # Deleting an already seen object must not make the walk skip or repeat.
                self.assertEqual(self.api("DELETE", "/v1/products/%d" % seen[0], token=tok)[0], 204)
            body = self.assertOk(self.api(
                "GET", "/v1/products?limit=1&cursor=" + urllib.parse.quote(body["next_cursor"], safe=""),
                token=tok))
        self.assertEqual(len(seen), len(set(seen)))
        self.assertTrue(set(ids) - {seen[0]} <= set(seen))

    def test_bad_limit_and_cursor(self):
        for q in ("limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=1.5", "limit=10abc",
                  "limit=99999999999999999999", "cursor=%21%21not-a-cursor%21%21", "cursor=" + "A" * 129,
                  "cursor=" + "z" * 200):
            with self.subTest(query=q):
                self.assertError(self.api("GET", "/v1/products?" + q), 400, "bad_request")
        self.assertOk(self.api("GET", "/v1/products?limit=1"))
        self.assertOk(self.api("GET", "/v1/products?limit=1000"))

    # --- validation ---

    def test_validation_failed(self):
        bad = [{}, {"name": "x", "bogus": 1}, {"name": ""}, {"name": "x" * 129}, {"name": "\u00e9" * 65},
               {"name": "a\u0001b"}, {"name": "a\nb"}, {"name": "tab\there"}, {"name": "del\u007f"},
               {"name": "x", "description": "d" * 1025}, {"name": "x", "description": "a\u001bb"},
               {"name": 5}, {"name": None}, {"name": ["x"]}, {"name": {"x": 1}}, {"name": True},
               {"name": "x", "description": 5}, {"name": "x", "description": ["d"]}]
        for body in bad:
            with self.subTest(body=repr(body)[:60]):
                self.assertError(self.api("POST", "/v1/products", body), 400, "validation_failed")
        names = {p["name"] for p in self.list_all("/v1/products")}
        self.assertNotIn("x", names)
        # An escaped NUL: refused by the JSON parser or by validation, never stored.
        st, _, body = self.api("POST", "/v1/products", b'{"name": "nul\\u0000x"}')
        self.assertEqual(st, 400, body)
        self.assertIn(body["error"], ("invalid_json", "validation_failed"))
        p = self.create("/v1/products", {"name": "patch-valid"})
        for body in ({"bogus": 1}, {"name": ""}, {"name": 5}, {"description": "d" * 1025}, {"name": "a\u0002"}):
            with self.subTest(patch=repr(body)[:60]):
                self.assertError(self.api("PATCH", "/v1/products/%d" % p["id"], body), 400, "validation_failed")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))["name"], "patch-valid")

    def test_boundaries_accepted(self):
        p = self.create("/v1/products", {"name": "n" * 128, "description": "d" * 1024})
        self.assertEqual(len(p["name"]), 128)
        p = self.create("/v1/products", {"name": "\u00e9" * 64})  # 128 bytes of UTF-8
        self.assertEqual(p["name"], "\u00e9" * 64)
        p = self.create("/v1/products", {"name": "\u65e5\u672c \U0001F600", "description": ""})
        self.assertEqual(self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))["name"],
                         "\u65e5\u672c \U0001F600")

    def test_invalid_json(self):
        for raw in (b'{"name": ', b"{name: 1}", b"nope", b'{"name": "x"} trailing', b"", b"\xff\xfe{}",
                    b'{"name": "\xc3\x28"}'):
            with self.subTest(body=raw):
                self.assertError(self.api("POST", "/v1/products", raw), 400, "invalid_json")

    def test_non_object_json(self):
        for raw in (b"[1, 2]", b'"products"', b"42", b"null", b"true", b'[{"name": "x"}]'):
            with self.subTest(body=raw):
                self.assertError(self.api("POST", "/v1/products", raw), 400, "invalid_json")

    def test_duplicate_keys_refused_or_last_wins(self):
        st, _, body = self.api("POST", "/v1/products", b'{"name": "dupkey-a", "name": "dupkey-b"}')
        self.assertIn(st, (201, 400), body)
        if st == 400:
            self.assertIn(body["error"], ("invalid_json", "validation_failed"))

    def test_wrong_content_type_415(self):
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"):
            with self.subTest(ctype=ctype):
                self.assertError(self.api("POST", "/v1/products", b'{"name": "ctype"}', content_type=ctype), 415,
                                 "unsupported_media_type")
        self.assertNotIn("ctype", {p["name"] for p in self.list_all("/v1/products")})
        st, _, body = self.api("POST", "/v1/products", b'{"name": "charset-param"}',
                               content_type="application/json; charset=utf-8")
        self.assertEqual(st, 201, body)

    def test_chunked_body(self):
        c = self.d.client()
        conn = c.connect()
        body = b'{"name": "chunked", "description": "sent in chunks"}'
        conn.putrequest("POST", "/v1/products")
        conn.putheader("Authorization", "Bearer " + self.d.token)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), 10):
            part = body[i:i + 10]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        data = resp.read()
        self.assertEqual(resp.status, 201, data)
        self.assertEqual(harness.json.loads(data)["description"], "sent in chunks")
        c.close()


class BodyLimitTest(harness.DaemonTestCase):
    """A daemon with max_body_bytes = 4096 (the import route keeps its own, larger limit)."""

    config = {"max_body_bytes": 4096}

    def test_body_over_limit_413(self):
        body = {"name": "too-big", "description": "x" * 5000}
        self.assertError(self.api("POST", "/v1/products", body), 413, "payload_too_large")
        self.assertNotIn("too-big", {p["name"] for p in self.list_all("/v1/products")})
        self.assertEqual(self.d.client().api("GET", "/healthz")[0], 200)
        self.create("/v1/products", {"name": "after-413"})

    def test_body_under_limit_is_validated_not_refused(self):
        # 3000 bytes: under the limit, so it reaches validation (description > 1024 bytes).
        self.assertError(self.api("POST", "/v1/products", {"name": "mid", "description": "x" * 2900}), 400,
                         "validation_failed")

    def test_chunked_body_over_limit_413(self):
        c = self.d.client()
        conn = c.connect()
        conn.putrequest("POST", "/v1/products")
        conn.putheader("Authorization", "Bearer " + self.d.token)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        payload = b'{"name": "chunked-big", "description": "' + b"y" * 8000 + b'"}'
        try:
            for i in range(0, len(payload), 1000):
                part = payload[i:i + 1000]
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        resp = conn.getresponse()
        data = resp.read()
        self.assertEqual(resp.status, 413, data)
        self.assertEqual(harness.json.loads(data)["error"], "payload_too_large")
        c.close()
        self.assertNotIn("chunked-big", {p["name"] for p in self.list_all("/v1/products")})

    def test_declared_length_over_limit_answered_without_the_body(self):
        # Content-Length far above the limit and no body sent: the daemon must answer 413 at once rather
        # than wait for (and buffer) 10 MB.
        ctx = self.d.ssl_context()
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(("POST /v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
                       % self.d.token).encode())
            t0 = time.monotonic()
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                self.fail("no answer within 10 s to a request declaring a 10 MB body")
            self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
            self.assertLess(time.monotonic() - t0, 10)

    def test_import_route_has_its_own_limit(self):
        keys = harness.gen_keys(40)  # about 7 KB of JSON: over max_body_bytes, far under import_max_bytes
        body = {"devices": [{"public_key": k} for k in keys]}
        self.assertGreater(len(harness.json.dumps(body)), 4096)
        res = self.assertOk(self.api("POST", "/v1/devices/import", body))
        self.assertEqual(res["imported"], 40)
