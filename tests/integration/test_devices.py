"""Device import, listing, claim, move, block, tenant isolation and the audit log."""

import subprocess
import threading

import harness

DEVICE_FIELDS = {"id", "state", "group_id", "product_id", "public_key", "created_at", "claimed_at", "updated_at",
                 "attestation", "tags"}


def p384_key():
    """A PEM EC P-384 public key (valid PEM, wrong curve), made with the openssl CLI."""
    priv = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, timeout=30).stdout
    return subprocess.run(["openssl", "pkey", "-pubout"], input=priv, stdout=subprocess.PIPE, check=True,
                          timeout=30).stdout.decode()


def rsa_key():
    priv = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, timeout=30).stdout
    return subprocess.run(["openssl", "pkey", "-pubout"], input=priv, stdout=subprocess.PIPE, check=True,
                          timeout=30).stdout.decode()


class DevicesTest(harness.DaemonTestCase):
    tenants = ("acme", "rival")

    @classmethod
    def prepare(cls):
        cls.keys = harness.gen_keys(620)
        cls.next_key = 0

    def take(self, n):
        """n keys never used by another test."""
        ks = self.keys[self.next_key:self.next_key + n]
        type(self).next_key += n
        self.assertEqual(len(ks), n, "key pool exhausted")
        return ks

    def group(self, name, token=...):
        """A new product and a group in it; returns the group."""
        p = self.create("/v1/products", {"name": "p-" + name}, token=token)
        return self.create("/v1/device-groups", {"product_id": p["id"], "name": name}, token=token)

    def import_keys(self, keys, token=..., **extra):
        body = {"devices": [{"public_key": k} for k in keys]}
        body.update(extra)
        return self.api("POST", "/v1/devices/import", body, token=token)

    def count(self, group_id=None, state=None, token=...):
        return len(self.list_all("/v1/devices" + harness.qs(group_id=group_id, state=state), token=token))

    def assert_nothing_stored(self, keys, token=...):
        for k in keys:
            self.assertError(self.api("GET", "/v1/devices/" + harness.device_id(k), token=token), 404, "not_found")

    # --- import ---

    def test_import_50_with_claim(self):
        g = self.group("import50")
        keys = self.take(50)
        res = self.assertOk(self.import_keys(keys, group_id=g["id"]))
        self.assertEqual((res["imported"], res["created"], res["claimed"]), (50, 50, True))
        self.assertEqual([d["index"] for d in res["devices"]], list(range(50)))
        self.assertEqual([d["device_id"] for d in res["devices"]], [harness.device_id(k) for k in keys])
        listed = self.list_all("/v1/devices?group_id=%d" % g["id"])
        self.assertEqual(len(listed), 50)
        self.assertEqual({d["id"] for d in listed}, {harness.device_id(k) for k in keys})
        self.assertEqual({d["state"] for d in listed}, {"active"})
        self.assertEqual([d["id"] for d in listed], sorted(d["id"] for d in listed), "not ordered by id")
        d = self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(keys[0])))
        self.assertEqual(set(d), DEVICE_FIELDS)
        self.assertEqual((d["group_id"], d["product_id"], d["state"]), (g["id"], g["product_id"], "active"))
        self.assertRegex(d["claimed_at"], harness.RFC3339)
        self.assertIn("BEGIN PUBLIC KEY", d["public_key"])
        self.assertEqual(harness.device_id(d["public_key"]), d["id"])
        # The same import again is idempotent: nothing new.
        res = self.assertOk(self.import_keys(keys, group_id=g["id"]))
        self.assertEqual((res["imported"], res["created"]), (50, 0))
        self.assertEqual(self.count(group_id=g["id"]), 50)

    def test_import_default_claims_without_group(self):
        keys = self.take(2)
        res = self.assertOk(self.import_keys(keys))
        self.assertIs(res["claimed"], True)
        d = self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(keys[0])))
        self.assertEqual((d["state"], d["group_id"], d["product_id"]), ("active", None, None))

    def test_import_into_a_group_not_the_tenants_stores_nothing(self):
        # The group check runs in the import's transaction: another tenant's group, or none, is 404
        # for the whole import, and not one entry is stored.
        rg = self.group("import-rival", token=self.token_of("rival"))
        keys = self.take(3)
        for gid in (rg["id"], 999999):
            body = self.assertError(self.import_keys(keys, group_id=gid), 404, "not_found")
            self.assertEqual(body["message"], "device group not found")
            self.assert_nothing_stored(keys)
        self.assertEqual(self.count(group_id=rg["id"], token=self.token_of("rival")), 0)

    def test_import_one_bad_key_stores_nothing(self):
        g = self.group("bad-key")
        keys = self.take(10)
        entries = [{"public_key": k} for k in keys]
        entries.insert(3, {"public_key": "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n"})
        before = self.count()
        st, _, body = self.api("POST", "/v1/devices/import", {"devices": entries, "group_id": g["id"]})
        body = self.assertError((st, _, body), 400, "import_failed")
        self.assertEqual([(e["index"], e["error"]) for e in body["errors"]], [(3, "bad_public_key")])
        self.assertIsInstance(body["errors"][0]["message"], str)
        self.assertEqual(self.count(), before)
        self.assertEqual(self.count(group_id=g["id"]), 0)
        self.assert_nothing_stored(keys)

    def test_import_errors_with_cut_multibyte_names(self):
        # the quoted field name is cut to a length limit: never inside a character (the entry was lost)
        keys = self.take(2)
        entries = [{"public_key": keys[0], "\u00e9" * 40: 1}, {"public_key": keys[1], "a" + "\u20ac" * 30: 1}]
        body = self.assertError(self.api("POST", "/v1/devices/import", {"devices": entries}), 400, "import_failed")
        self.assertEqual(body["error_count"], 2)
        self.assertEqual([e["index"] for e in body["errors"]], [0, 1], body)
        for e in body["errors"]:
            self.assertIn("unknown field", e["message"])

    def test_import_reports_every_bad_entry(self):
        keys = self.take(3)
        entries = [{"public_key": keys[0]}, {"public_key": p384_key()}, {"public_key": keys[1]},
                   {"public_key": rsa_key()}, {"public_key": 42}, {"pubkey": keys[2]}, {},
                   {"public_key": keys[2], "extra": 1}, "just a string",
                   {"public_key": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}]
        body = self.assertError(self.api("POST", "/v1/devices/import", {"devices": entries}), 400, "import_failed")
        got = {e["index"]: e["error"] for e in body["errors"]}
        self.assertEqual(set(got), {1, 3, 4, 5, 6, 7, 8, 9}, body["errors"])
        self.assertEqual(got[1], "bad_public_key", "P-384 key")
        self.assertEqual(got[3], "bad_public_key", "RSA key")
        self.assertEqual(got[9], "bad_public_key", "certificate instead of a key")
        for i in (4, 5, 6, 7, 8):
            self.assertEqual(got[i], "invalid_entry", "entry %d: %r" % (i, entries[i]))
        self.assert_nothing_stored(keys)

    def test_import_duplicate_in_request(self):
        keys = self.take(3)
        entries = [{"public_key": k} for k in (keys[0], keys[1], keys[2], keys[1])]
        body = self.assertError(self.api("POST", "/v1/devices/import", {"devices": entries}), 400, "import_failed")
        dups = [e for e in body["errors"] if e["error"] == "duplicate"]
        self.assertEqual(len(dups), 1, body["errors"])
        self.assertIn(dups[0]["index"], (1, 3))
        self.assertEqual(len(body["errors"]), 1, body["errors"])
        self.assert_nothing_stored(keys)

    def test_import_duplicate_with_different_pem_text(self):
        # The same key with other line breaks is the same device (the ID is over the DER, not the text).
        k = self.take(1)[0]
        lines = k.strip().splitlines()
        b64 = "".join(lines[1:-1])
        reflowed = lines[0] + "\n" + "\n".join(b64[i:i + 40] for i in range(0, len(b64), 40)) + "\n" + lines[-1] + "\n"
        self.assertNotEqual(reflowed, k)
        body = self.assertError(self.api("POST", "/v1/devices/import",
                                         {"devices": [{"public_key": k}, {"public_key": reflowed}]}), 400,
                                "import_failed")
        self.assertEqual([(e["index"], e["error"]) for e in body["errors"]], [(1, "duplicate")])
        self.assert_nothing_stored([k])

    def test_import_body_validation(self):
        keys = self.take(1)
        g = self.group("import-valid")
        cases = [{}, {"devices": []}, {"devices": "x"}, {"devices": {"public_key": keys[0]}},
                 {"devices": [{"public_key": keys[0]}], "claim": "yes"},
                 {"devices": [{"public_key": keys[0]}], "group_id": "1"},
                 {"devices": [{"public_key": keys[0]}], "bogus": 1},
                 {"devices": [{"public_key": keys[0]}], "claim": False, "group_id": g["id"]}]
        for body in cases:
            with self.subTest(body=repr(body)[:80]):
                self.assertError(self.api("POST", "/v1/devices/import", body), 400, "validation_failed")
        self.assert_nothing_stored(keys)
        self.assertError(self.import_keys(keys, group_id=999999), 404, "not_found")
        self.assert_nothing_stored(keys)

    def test_import_10000_and_paginate(self):
        big = harness.gen_keys(10000)
        g = self.group("ten-thousand")
        c = self.d.client(timeout=300)
        res = self.assertOk(c.api("POST", "/v1/devices/import",
                                  {"devices": [{"public_key": k} for k in big], "group_id": g["id"]}))
        self.assertEqual((res["imported"], res["created"]), (10000, 10000))
        self.assertEqual(len(res["devices"]), 10000)
        ids = []
        cursor = None
        pages = 0
        while True:
            q = "/v1/devices?group_id=%d&limit=1000" % g["id"]
            if cursor:
                q += "&cursor=" + harness.urllib.parse.quote(cursor, safe="")
            body = self.assertOk(c.api("GET", q))
            pages += 1
            self.assertLessEqual(len(body["items"]), 1000)
            ids += [d["id"] for d in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            self.assertLessEqual(pages, 11, "too many pages")
        self.assertEqual(len(ids), 10000)
        self.assertEqual(len(set(ids)), 10000)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(set(ids), {harness.device_id(k) for k in big})
        # 10,001 entries: refused as a whole, the new key is not stored.
        extra = self.take(1)
        st, _, body = c.api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in big + extra]})
        self.assertError((st, _, body), 400, "validation_failed")
        self.assert_nothing_stored(extra)
        c.close()

    # --- claim, move, block ---

    def test_import_without_claim_then_claim(self):
        g = self.group("claim-later")
        keys = self.take(3)
        res = self.assertOk(self.import_keys(keys, claim=False))
        self.assertIs(res["claimed"], False)
        did = harness.device_id(keys[0])
        d = self.assertOk(self.api("GET", "/v1/devices/" + did))
        self.assertEqual((d["state"], d["group_id"], d["claimed_at"]), ("unclaimed", None, None))
        self.assertIn(did, {x["id"] for x in self.list_all("/v1/devices?state=unclaimed")})
        # Unclaimed devices are visible only to the importing tenant.
        self.assertError(self.api("GET", "/v1/devices/" + did, token=self.token_of("rival")), 404, "not_found")

        d = self.assertOk(self.api("POST", "/v1/devices/%s/claim" % did, {"group_id": g["id"]}))
        self.assertEqual((d["state"], d["group_id"], d["product_id"]), ("active", g["id"], g["product_id"]))
        self.assertRegex(d["claimed_at"], harness.RFC3339)
        again = self.assertOk(self.api("POST", "/v1/devices/%s/claim" % did, {"group_id": g["id"]}))
        self.assertEqual(again["claimed_at"], d["claimed_at"], "idempotent claim changed claimed_at")
        # Claim with no body at all.
        d2 = self.assertOk(self.api("POST", "/v1/devices/%s/claim" % harness.device_id(keys[1])))
        self.assertEqual((d2["state"], d2["group_id"]), ("active", None))
        # Claim into someone else's group or a missing one.
        rg = self.group("rival-claim-g", token=self.token_of("rival"))
        self.assertError(self.api("POST", "/v1/devices/%s/claim" % harness.device_id(keys[2]), {"group_id": rg["id"]}),
                         404, "not_found")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(keys[2])))["state"],
                         "unclaimed")
        self.assertError(self.api("POST", "/v1/devices/%s/claim" % ("0" * 64)), 404, "not_found")

    def test_move_between_groups(self):
        g1 = self.group("move-1")
        g2 = self.group("move-2")
        k = self.take(1)[0]
        did = harness.device_id(k)
        self.assertOk(self.import_keys([k], group_id=g1["id"]))
        d = self.assertOk(self.api("PATCH", "/v1/devices/" + did, {"group_id": g2["id"]}))
        self.assertEqual((d["group_id"], d["product_id"]), (g2["id"], g2["product_id"]))
        self.assertEqual(self.count(group_id=g1["id"]), 0)
        self.assertEqual(self.count(group_id=g2["id"]), 1)
        # A group with devices cannot be deleted.
        self.assertError(self.api("DELETE", "/v1/device-groups/%d" % g2["id"]), 409, "conflict")
        d = self.assertOk(self.api("PATCH", "/v1/devices/" + did, {"group_id": None}))
        self.assertEqual((d["group_id"], d["product_id"]), (None, None))
        self.assertEqual(self.count(group_id=g2["id"]), 0)
        self.assertEqual(self.api("DELETE", "/v1/device-groups/%d" % g2["id"])[0], 204)
        # Bad moves.
        rg = self.group("rival-move-g", token=self.token_of("rival"))
        self.assertError(self.api("PATCH", "/v1/devices/" + did, {"group_id": rg["id"]}), 404, "not_found")
        self.assertError(self.api("PATCH", "/v1/devices/" + did, {"group_id": 999999}), 404, "not_found")
        for body in ({"group_id": "1"}, {"group_id": 1.5}, {}, {"state": "blocked"}, {"group_id": None, "x": 1}):
            with self.subTest(body=body):
                self.assertError(self.api("PATCH", "/v1/devices/" + did, body), 400, "validation_failed")
        self.assertIsNone(self.assertOk(self.api("GET", "/v1/devices/" + did))["group_id"])

    def test_block_unblock_and_state_filter(self):
        g = self.group("blocking")
        keys = self.take(3)
        self.assertOk(self.import_keys(keys, group_id=g["id"]))
        did = harness.device_id(keys[1])
        d = self.assertOk(self.api("POST", "/v1/devices/%s/block" % did))
        self.assertEqual(d["state"], "blocked")
        self.assertEqual(self.assertOk(self.api("POST", "/v1/devices/%s/block" % did))["state"], "blocked")
        blocked = [x["id"] for x in self.list_all("/v1/devices?group_id=%d&state=blocked" % g["id"])]
        active = [x["id"] for x in self.list_all("/v1/devices?group_id=%d&state=active" % g["id"])]
        self.assertEqual(blocked, [did])
        self.assertEqual(sorted(active), sorted(harness.device_id(k) for k in (keys[0], keys[2])))
        self.assertIn(did, [x["id"] for x in self.list_all("/v1/devices?state=blocked")])
        d = self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % did))
        self.assertEqual(d["state"], "active")
        self.assertEqual(self.count(group_id=g["id"], state="blocked"), 0)
        self.assertEqual(self.count(group_id=g["id"], state="active"), 3)
        for q in ("state=bogus", "state=ACTIVE", "group_id=abc", "group_id=-1"):
            with self.subTest(query=q):
                self.assertError(self.api("GET", "/v1/devices?" + q), 400, "bad_request")
        # Reader may look, not block.
        reader = self.create("/v1/tokens", {"name": "dev-reader", "role": "reader"})["token"]
        self.assertOk(self.api("GET", "/v1/devices/" + did, token=reader))
        self.assertError(self.api("POST", "/v1/devices/%s/block" % did, token=reader), 403, "forbidden")

    def test_malformed_device_id(self):
        for bad in ("xyz", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 63 + "%20"):
            with self.subTest(id=bad):
                self.assertError(self.api("GET", "/v1/devices/" + bad), 400, "bad_request")
                self.assertError(self.api("POST", "/v1/devices/%s/block" % bad), 400, "bad_request")
        self.assertError(self.api("GET", "/v1/devices/" + "0" * 64), 404, "not_found")

    # --- tenant isolation ---

    def test_tenant_isolation(self):
        rival = self.token_of("rival")
        g = self.group("iso-a")
        ka = self.take(2)
        self.assertOk(self.import_keys(ka, group_id=g["id"]))
        da = harness.device_id(ka[0])
        rg = self.group("iso-b", token=rival)
        kb = self.take(1)
        self.assertOk(self.import_keys(kb, group_id=rg["id"], token=rival))
        db = harness.device_id(kb[0])

        self.assertError(self.api("GET", "/v1/devices/" + da, token=rival), 404, "not_found")
        self.assertError(self.api("GET", "/v1/products/%d" % g["product_id"], token=rival), 404, "not_found")
        self.assertError(self.api("GET", "/v1/device-groups/%d" % g["id"], token=rival), 404, "not_found")
        self.assertError(self.api("PATCH", "/v1/devices/" + da, {"group_id": rg["id"]}, token=rival), 404,
                         "not_found")
        self.assertError(self.api("POST", "/v1/devices/%s/block" % da, token=rival), 404, "not_found")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + da))["state"], "active")

        a_ids = {x["id"] for x in self.list_all("/v1/devices")}
        b_ids = {x["id"] for x in self.list_all("/v1/devices", token=rival)}
        self.assertIn(da, a_ids)
        self.assertNotIn(db, a_ids)
        self.assertIn(db, b_ids)
        self.assertNotIn(da, b_ids)
        self.assertNotIn(harness.device_id(ka[1]), b_ids)
        self.assertNotIn(rg["id"], {x["id"] for x in self.list_all("/v1/device-groups")})
        self.assertNotIn(g["product_id"], {x["id"] for x in self.list_all("/v1/products", token=rival)})

        # Claiming A's device: 404 as for an unknown device, and it stays A's.
        self.assertError(self.api("POST", "/v1/devices/%s/claim" % da, token=rival), 404, "not_found")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + da))["group_id"], g["id"])

        # Importing a key A claimed: as for a new key; the rival's registration is its own.
        fresh = self.take(1)
        res = self.assertOk(self.import_keys([fresh[0], ka[1]], token=rival, group_id=rg["id"]))
        self.assertEqual((res["imported"], res["created"]), (2, 2))
        for k in (fresh[0], ka[1]):
            self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k), token=rival))["group_id"],
                             rg["id"])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(ka[1])))["group_id"], g["id"])
        self.assert_nothing_stored(fresh)

    FOREIGN_PROBES = (("GET", "", None), ("POST", "/claim", None), ("POST", "/claim", {"group_id": None}),
                      ("PATCH", "", {"group_id": None}), ("POST", "/block", None), ("POST", "/unblock", None),
                      ("POST", "/transfer", None), ("GET", "/attestations", None), ("GET", "/reports", None),
                      ("POST", "/claim", {"transfer_code": "x" * 43}))

    def probe(self, did, token):
        """Every answer about device did, with the id taken out of the bodies."""
        out = []
        for method, suffix, body in self.FOREIGN_PROBES:
            st, _, b = self.api(method, "/v1/devices/" + did + suffix, body, token=token)
            out.append((method, suffix, st, b))
        return out

    def test_foreign_device_answers_as_unknown(self):
        # Issue 10: A's devices (claimed or not) answer the rival exactly as a device that does not exist.
        rival = self.token_of("rival")
        k_unclaimed, k_claimed, k_unknown = self.take(3)
        self.assertOk(self.import_keys([k_unclaimed], claim=False))
        self.assertOk(self.import_keys([k_claimed]))
        unknown = self.probe(harness.device_id(k_unknown), rival)
        self.assertTrue(all(st == 404 for _, _, st, _ in unknown), unknown)
        for k in (k_unclaimed, k_claimed):
            with self.subTest(key=k == k_claimed and "claimed" or "unclaimed"):
                self.assertEqual(self.probe(harness.device_id(k), rival), unknown)
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k_unclaimed)))["state"],
                         "unclaimed")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k_claimed)))["state"],
                         "active")

    def test_foreign_import_answers_as_new(self):
        # Importing keys another tenant holds gives the same answers as importing new keys, and the rival's
        # registrations behave as its own (claim, move, block, transfer), never touching A's.
        rival = self.token_of("rival")
        rg = self.group("fi-b", token=rival)
        k_unclaimed, k_claimed, k_new = self.take(3)
        self.assertOk(self.import_keys([k_unclaimed], claim=False))
        self.assertOk(self.import_keys([k_claimed]))
        for claim in (False, True):
            res = self.assertOk(self.import_keys([k_unclaimed, k_claimed, k_new], token=rival, claim=claim))
            self.assertEqual((res["imported"], res["created"]), (3, 0 if claim else 3))
        views = []
        for k in (k_unclaimed, k_claimed, k_new):
            did = harness.device_id(k)
            d = self.assertOk(self.api("PATCH", "/v1/devices/" + did, {"group_id": rg["id"]}, token=rival))
            d = self.assertOk(self.api("POST", "/v1/devices/%s/block" % did, token=rival))
            self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/%s/attestations" % did, token=rival))["items"],
                             [])
            views.append({f: d[f] for f in ("state", "group_id", "product_id", "attestation")})
            self.assertIn("code", self.create("/v1/devices/%s/transfer" % did, None, token=rival))
        self.assertEqual(views, [views[2]] * 3)
        self.assertEqual(self.count(group_id=rg["id"], state="blocked", token=rival), 3)
        self.assertError(self.api("DELETE", "/v1/device-groups/%d" % rg["id"], token=rival), 409, "conflict")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k_unclaimed)))["state"],
                         "unclaimed")
        d = self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k_claimed)))
        self.assertEqual((d["state"], d["group_id"]), ("active", None))
        self.assert_nothing_stored([k_new])

    def test_transfer_code(self):
        rival = self.token_of("rival")
        g = self.group("xfer-a")
        rg = self.group("xfer-b", token=rival)
        k, other = self.take(2)
        did = harness.device_id(k)
        self.assertOk(self.import_keys([k, other], group_id=g["id"]))
        reader = self.create("/v1/tokens", {"name": "xfer-reader", "role": "reader"})["token"]
        self.assertError(self.api("POST", "/v1/devices/%s/transfer" % did, token=reader), 403, "forbidden")
        self.assertError(self.api("POST", "/v1/devices/%s/claim" % did, {"transfer_code": 5}, token=rival), 400,
                         "validation_failed")
        old = self.create("/v1/devices/%s/transfer" % did, None)
        xfer = self.create("/v1/devices/%s/transfer" % did, None)
        self.assertEqual(set(xfer), {"code", "expires_at"})
        self.assertRegex(xfer["expires_at"], harness.RFC3339)
        claim = "/v1/devices/%s/claim" % did
        # A replaced code, a code of another device, a wrong code: 404, and nothing used up.
        self.assertError(self.api("POST", claim, {"transfer_code": old["code"]}, token=rival), 404, "not_found")
        self.assertError(self.api("POST", "/v1/devices/%s/claim" % harness.device_id(other),
                                  {"transfer_code": xfer["code"]}, token=rival), 404, "not_found")
        self.assertError(self.api("POST", claim, {"transfer_code": xfer["code"] + "x"}, token=rival), 404, "not_found")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + did))["group_id"], g["id"])
        d = self.assertOk(self.api("POST", claim, {"transfer_code": xfer["code"], "group_id": rg["id"]}, token=rival))
        self.assertEqual((d["state"], d["group_id"], d["attestation"]), ("active", rg["id"], None))
        # Used once; the sender no longer has the device; the receiver owns it.
        self.assertError(self.api("POST", claim, {"transfer_code": xfer["code"]}, token=rival), 404, "not_found")
        self.assert_nothing_stored([k])
        self.assertError(self.api("POST", "/v1/devices/%s/transfer" % did), 404, "not_found")
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % did, token=rival))
        actions = [e["action"] for e in self.list_all("/v1/audit", token=rival)]
        self.assertIn("device.claim", actions)
        self.assertIn("device.transfer", [e["action"] for e in self.list_all("/v1/audit")])

    def test_concurrent_import_race(self):
        # Both tenants import (and claim) the same keys at once from several connections: every answer is 200,
        # and each tenant gets exactly one registration of each key (created sums to 30 per tenant).
        shared = self.take(30)
        results = []
        tokens = [self.d.token, self.token_of("rival")] * 4

        def worker(tok):
            c = self.d.client(token=tok)
            try:
                st, _, body = c.api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in shared]})
                results.append((tok, st, body))
            except Exception as e:  # noqa: BLE001 - reported below
                results.append((tok, repr(e), None))
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(results), len(tokens), results)
        for tok, st, body in results:
            self.assertEqual(st, 200, body)
        for tok in set(tokens):
            self.assertEqual(sum(b["created"] for t, _, b in results if t == tok), 30)
            for k in shared:
                d = self.assertOk(self.api("GET", "/v1/devices/" + harness.device_id(k), token=tok))
                self.assertEqual(d["state"], "active")

    # --- audit ---

    def test_audit_log(self):
        admin_id = int(self.d.token.split("_")[1])
        tok = self.create("/v1/tokens", {"name": "audit-op", "role": "operator"})
        p = self.create("/v1/products", {"name": "audited"})
        g = self.create("/v1/device-groups", {"product_id": p["id"], "name": "audited-g"})
        k = self.take(1)[0]
        did = harness.device_id(k)
        self.assertOk(self.import_keys([k], claim=False))
        self.assertOk(self.api("POST", "/v1/devices/%s/claim" % did, {"group_id": g["id"]}))
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % did))
        self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % did))
        self.assertOk(self.api("PATCH", "/v1/devices/" + did, {"group_id": None}))
        self.assertOk(self.api("PATCH", "/v1/products/%d" % p["id"], {"description": "changed"}))
        self.assertEqual(self.api("DELETE", "/v1/tokens/%d" % tok["id"])[0], 204)
        # A failed request leaves no audit entry.
        self.assertError(self.api("POST", "/v1/products", {"name": "audited"}), 409, "conflict")

        body = self.assertOk(self.api("GET", "/v1/audit?limit=20"))
        items = body["items"]
        expected = ["token.revoke", "product.update", "device.move", "device.unblock", "device.block",
                    "device.claim", "device.import", "group.create", "product.create", "token.create"]
        self.assertEqual([e["action"] for e in items[:len(expected)]], expected)
        ids = [e["id"] for e in items]
        self.assertEqual(ids, sorted(ids, reverse=True), "audit not newest first")
        times = [e["created_at"] for e in items]
        self.assertEqual(times, sorted(times, reverse=True))
        for e in items[:len(expected)]:
            self.assertEqual(set(e), {"id", "actor", "action", "object_type", "object_id", "detail", "created_at"})
            self.assertEqual(e["actor"], "token:%d" % admin_id)
            self.assertIsInstance(e["detail"], dict)
            self.assertRegex(e["created_at"], harness.RFC3339)
        by_action = {e["action"]: e for e in items[:len(expected)]}
        self.assertEqual(str(by_action["product.create"]["object_id"]), str(p["id"]))
        self.assertEqual(str(by_action["group.create"]["object_id"]), str(g["id"]))
        self.assertEqual(str(by_action["device.block"]["object_id"]), did)
        self.assertEqual(str(by_action["device.claim"]["object_id"]), did)
        self.assertEqual(str(by_action["token.create"]["object_id"]), str(tok["id"]))
        st, _, raw = self.client.request("GET", "/v1/audit?limit=1000")
        self.assertNotIn(tok["token"].split("_", 2)[2].encode(), raw, "token secret in the audit log")

        # Paging the audit log.
        page1 = self.assertOk(self.api("GET", "/v1/audit?limit=3"))
        self.assertEqual(len(page1["items"]), 3)
        page2 = self.assertOk(self.api("GET", "/v1/audit?limit=3&cursor=" +
                                       harness.urllib.parse.quote(page1["next_cursor"], safe="")))
        self.assertEqual([e["id"] for e in page1["items"] + page2["items"]], ids[:6])

        # Other tenants see none of it; readers and operators may not read it.
        rival_items = self.list_all("/v1/audit", token=self.token_of("rival"))
        self.assertFalse({e["id"] for e in rival_items} & set(ids))
        self.assertNotIn(str(p["id"]), {str(e["object_id"]) for e in rival_items if e["object_type"] == "product"})
        reader = self.create("/v1/tokens", {"name": "audit-reader", "role": "reader"})["token"]
        self.assertError(self.api("GET", "/v1/audit", token=reader), 403, "forbidden")
