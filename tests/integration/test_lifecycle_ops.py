"""Lifecycle operations (issue 14 item 4, docs/api.md "Devices", "Tokens", "Tenant") against the real daemon.

Devices get real certificates by attestation (test_attest.AttestBase) so that "its certificates stop working at
once" is checked on the daemon's mutual-TLS gate, on a connection that stays open across the change: unclaim,
transfer, delete, tenant deletion. Also: what a device delete removes and keeps (records, reports, aggregates),
the hand-over of a key another tenant also imported, tags and their filter, ?id_prefix=, token expiry and
last use, and the CLI commands."""

import http.client
import json
import os
import sqlite3
import ssl
import time
import types
import unittest

import harness
import test_attest
import test_telemetry


class LifecycleBase(test_attest.AttestBase):
    tenants = ("acme", "rival")

    @classmethod
    def prepare(cls):
        super().prepare()
        app = {k: test_attest.APP[k] for k in ("component", "version", "svn", "digest")}
        for tenant in cls.tenants[1:]:  # the app's reference value is per tenant
            st, _, body = cls.client.api("POST", "/v1/reference-values", app, token=cls.d.tokens[tenant])
            assert st == 201, body

    def attested(self, tenant="acme"):
        """A new device of tenant, claimed, with a certificate from attestation: (dev, leaf path, key path)."""
        dev = self.new_device(tenant=tenant)
        csr = dev.csr(name="mtls")
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)
        leaf = os.path.join(dev.dir, "leaf-%s.pem" % tenant)
        with open(leaf, "w") as f:
            f.write(test_attest.pem_blocks(body["chain"])[0])
        return dev, leaf, csr[2]

    def mtls(self, leaf, key):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.load_cert_chain(leaf, key)
        return http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)

    def get(self, conn, path):
        conn.request("GET", path)
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if r.getheader("Content-Type", "").startswith("application/json")
                          else data)

    def actions(self, tenant="acme"):
        return [(e["action"], e["object_id"]) for e in self.list_all("/v1/audit", token=self.token_of(tenant))]

    def db(self):
        c = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"), timeout=30)
        c.execute("PRAGMA busy_timeout = 30000")
        return c


class DeviceLifecycleTest(LifecycleBase):

    def test_unclaim_stops_certificates_at_once_and_keeps_the_registration(self):
        g = self.create("/v1/device-groups", {"product_id": self.create("/v1/products", {"name": "p-unclaim"})["id"],
                                              "name": "g-unclaim"})
        dev, leaf, key = self.attested()
        self.assertOk(self.api("PATCH", "/v1/devices/" + dev.id, {"group_id": g["id"], "tags": {"site": "b"}}))
        c = self.mtls(leaf, key)
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 200)
        reader = self.create("/v1/tokens", {"name": "unclaim-reader", "role": "reader"})["token"]
        self.assertError(self.api("POST", "/v1/devices/%s/unclaim" % dev.id, token=reader), 403, "forbidden")
        self.assertError(self.api("POST", "/v1/devices/%s/unclaim" % dev.id, token=self.token_of("rival")), 404,
                         "not_found")
        d = self.assertOk(self.api("POST", "/v1/devices/%s/unclaim" % dev.id))
        self.assertEqual((d["state"], d["group_id"], d["claimed_at"], d["tags"]), ("unclaimed", None, None,
                                                                                  {"site": "b"}))
        self.assertIsNotNone(d["attestation"])  # the last attestation stays with the registration
        st, body = self.get(c, "/v1/device/whoami")  # the same open connection, a still-valid certificate
        self.assertEqual(st, 401, body)
        c.close()
        self.assertEqual(self.assertOk(self.api("POST", "/v1/devices/%s/unclaim" % dev.id))["state"], "unclaimed")
        self.assertEqual([a for a in self.actions() if a == ("device.unclaim", dev.id)], [("device.unclaim", dev.id)])
        # Claimed again, the device must attest again: a certificate counts only for the registration
        # it was issued under (else a blocked device, unblocked by the unclaim, would come back with its
        # old certificate). Certificates carry whole seconds: the claim comes a second after the issuance.
        self.assertOk(self.api("POST", "/v1/devices/%s/claim" % dev.id))
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % dev.id))
        self.assertOk(self.api("POST", "/v1/devices/%s/unclaim" % dev.id))
        time.sleep(1.1)
        self.assertOk(self.api("POST", "/v1/devices/%s/claim" % dev.id))
        c = self.mtls(leaf, key)
        st, body = self.get(c, "/v1/device/whoami")
        c.close()
        self.assertEqual(st, 401, body)
        self.assertIn("current registration", body["message"])
        self.assertIn("claimed_device=%s" % dev.id, self.d.log())
        csr = dev.csr(name="reclaimed")
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)
        new_leaf = os.path.join(dev.dir, "leaf-reclaimed.pem")
        with open(new_leaf, "w") as f:
            f.write(test_attest.pem_blocks(body["chain"])[0])
        c = self.mtls(new_leaf, csr[2])
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 200)
        c.close()

    def test_transfer_stops_the_old_tenants_certificates_on_every_device_route(self):
        dev, leaf, key = self.attested()
        c = self.mtls(leaf, key)
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 200)
        code = self.create("/v1/devices/%s/transfer" % dev.id, None)["code"]
        self.assertOk(self.api("POST", "/v1/devices/%s/claim" % dev.id, {"transfer_code": code},
                               token=self.token_of("rival")))
        for path in ("/v1/device/whoami", "/v1/device/trust-bundle", "/v1/device/update", "/v1/device/tuf/1.root.json"):
            st, body = self.get(c, path)
            self.assertEqual(st, 401, (path, body))
        c.close()
        dc = test_telemetry.DeviceClient(self.d, types.SimpleNamespace(key=key), leaf)
        st, _, body = dc.post(test_telemetry.batch([test_telemetry.heartbeat(1)]))
        dc.close()
        self.assertEqual(st, 401, body)
        # Audited on both sides; the receiver's device attests again under its own CA.
        self.assertIn(("device.transfer", dev.id), self.actions())
        claims = [e for e in self.list_all("/v1/audit", token=self.token_of("rival"))
                  if e["action"] == "device.claim" and e["object_id"] == dev.id]
        self.assertEqual([e["detail"].get("transfer") for e in claims], [True])
        csr = dev.csr(name="after")  # a new certificate key: the old one stays the old leaf's
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)

    def test_delete_removes_records_keeps_aggregates_and_stops_certificates(self):
        dev, leaf, key = self.attested()
        other, _, _ = self.attested()
        dc = test_telemetry.DeviceClient(self.d, types.SimpleNamespace(key=key), leaf)
        st, _, body = dc.post(test_telemetry.batch([test_telemetry.crash(1, pc="0x0800dead"),
                                                     test_telemetry.heartbeat(2)]))
        self.assertEqual(st, 200, body)
        buckets = [b for b in self.list_all("/v1/failures/buckets") if b["pc"] == "0x800dead"]
        self.assertEqual([(b["count"], b["devices"]) for b in buckets], [(1, 1)])
        self.assertEqual(len(self.records(dev)), 1)
        self.assertError(self.api("DELETE", "/v1/devices/" + dev.id, token=self.token_of("rival")), 404, "not_found")
        self.assertEqual(self.api("DELETE", "/v1/devices/" + dev.id)[0], 204)
        # The device and what names it are gone; the aggregates keep its share.
        self.assertError(self.api("GET", "/v1/devices/" + dev.id), 404, "not_found")
        self.assertError(self.api("GET", "/v1/devices/%s/reports" % dev.id), 404, "not_found")
        self.assertEqual([a for a in self.list_all("/v1/attestations") if a["device_id"] == dev.id], [])
        self.assertEqual(len(self.records(other)), 1)
        st, _, text = self.client.request("GET", "/v1/failures/export?format=jsonl")
        self.assertEqual(st, 200)
        self.assertNotIn(dev.id, text.decode() if isinstance(text, bytes) else text)
        b = self.assertOk(self.api("GET", "/v1/failures/buckets/%d" % buckets[0]["id"]))
        self.assertEqual((b["count"], b["devices"], b["samples"]), (1, 1, []))
        st, _, body = dc.post(test_telemetry.batch([test_telemetry.heartbeat(3)]))
        dc.close()
        self.assertEqual(st, 401, body)
        self.assertIn(("device.delete", dev.id), self.actions())
        self.assertError(self.api("DELETE", "/v1/devices/" + dev.id), 404, "not_found")
        # The key can be imported again: a new device.
        time.sleep(1.1)  # certificates carry whole seconds (see the unclaim test)
        res = self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}],
                                                                    "claim": True}))
        self.assertEqual(res["created"], 1)
        self.assertIsNone(self.assertOk(self.api("GET", "/v1/devices/" + dev.id))["attestation"])
        # Imported and claimed again: the old certificate does not come back with it.
        dc = test_telemetry.DeviceClient(self.d, types.SimpleNamespace(key=key), leaf)
        st, _, body = dc.post(test_telemetry.batch([test_telemetry.heartbeat(4)]))
        dc.close()
        self.assertEqual(st, 401, body)

    def test_delete_hands_a_shared_key_to_the_other_importer(self):
        dev, leaf, key = self.attested()
        rival = self.token_of("rival")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}]}, token=rival))
        self.assertOk(self.api("PATCH", "/v1/devices/" + dev.id, {"tags": {"owner": "rival"}}, token=rival))
        st, _, body = self.attest(dev)
        self.assertEqual(st, 200, body)  # acme's device: rival's registration never hears from it
        self.assertEqual(self.api("DELETE", "/v1/devices/" + dev.id)[0], 204)
        c = self.mtls(leaf, key)
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 401)
        c.close()
        d = self.assertOk(self.api("GET", "/v1/devices/" + dev.id, token=rival))
        self.assertEqual((d["state"], d["tags"], d["attestation"]), ("active", {"owner": "rival"}, None))
        csr = dev.csr(name="rival")
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)  # now rival's device
        self.assertEqual(len(self.records(dev, tenant="rival")), 1)
        self.assertEqual(self.api("DELETE", "/v1/devices/" + dev.id, token=rival)[0], 204)
        self.assertError(self.api("GET", "/v1/devices/" + dev.id, token=rival), 404, "not_found")

    def test_deleting_a_shadow_leaves_the_holder_alone(self):
        dev, leaf, key = self.attested()
        rival = self.token_of("rival")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}]}, token=rival))
        self.assertEqual(self.api("DELETE", "/v1/devices/" + dev.id, token=rival)[0], 204)
        self.assertError(self.api("GET", "/v1/devices/" + dev.id, token=rival), 404, "not_found")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + dev.id))["state"], "active")
        c = self.mtls(leaf, key)
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 200)
        c.close()


class TagsAndPrefixTest(LifecycleBase):

    def import_n(self, n, tenant="acme"):
        devs = [self.new_device(tenant=tenant, register=False) for _ in range(n)]
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": d.pub} for d in devs]},
                               token=self.token_of(tenant)))
        return devs

    def ids(self, query, tenant="acme"):
        return [d["id"] for d in self.list_all("/v1/devices" + query, token=self.token_of(tenant))]

    def test_tags_set_remove_filter_and_bounds(self):
        a, b, c = self.import_n(3)
        self.assertEqual(self.assertOk(self.api("PATCH", "/v1/devices/" + a.id,
                                                {"tags": {"site": "berlin", "rack": "4"}}))["tags"],
                         {"site": "berlin", "rack": "4"})
        self.assertOk(self.api("PATCH", "/v1/devices/" + b.id, {"tags": {"site": "berlin", "rack": "5"}}))
        self.assertOk(self.api("PATCH", "/v1/devices/" + c.id, {"tags": {"site": "paris"}}))
        self.assertEqual(sorted(self.ids("?tag=site=berlin")), sorted([a.id, b.id]))
        self.assertEqual(self.ids("?tag=site=berlin&tag=rack=5"), [b.id])
        self.assertEqual(self.ids("?tag=site=berlin&tag=site=paris"), [])
        self.assertEqual(self.ids("?tag=site=berlin&state=active"), sorted([a.id, b.id]))
        self.assertEqual(self.ids("?tag=site=berlin&tag=site=berlin&id_prefix=" + a.id[:8]), [a.id])
        d = self.assertOk(self.api("PATCH", "/v1/devices/" + a.id, {"tags": {"rack": None, "note": ""}}))
        self.assertEqual(d["tags"], {"site": "berlin", "note": ""})
        self.assertEqual(self.ids("?tag=note="), [a.id])
        # Another tenant neither sees nor filters on them, and its own registration of the key has its own.
        self.assertEqual(self.ids("?tag=site=berlin", tenant="rival"), [])
        self.assertError(self.api("PATCH", "/v1/devices/" + a.id, {"tags": {"x": "y"}}, token=self.token_of("rival")),
                         404, "not_found")
        # Bounds: 16 tags, key characters, value type and length; nothing changed by a refused patch.
        self.assertError(self.api("PATCH", "/v1/devices/" + c.id, {"tags": {"k%d" % i: "v" for i in range(16)}}),
                         400, "validation_failed")
        self.assertOk(self.api("PATCH", "/v1/devices/" + c.id, {"tags": {"k%d" % i: "v" for i in range(15)}}))
        self.assertError(self.api("PATCH", "/v1/devices/" + c.id, {"tags": {"one-more": "v"}}), 400,
                         "validation_failed")
        self.assertEqual(len(self.assertOk(self.api("GET", "/v1/devices/" + c.id))["tags"]), 16)
        for bad in ({"tags": {"bad key": "v"}}, {"tags": {"k": 5}}, {"tags": {"k": "x" * 129}}, {"tags": []},
                    {"tags": {"k": "a\u0001"}}, {"tags": {"": "v"}}, {}):
            self.assertError(self.api("PATCH", "/v1/devices/" + a.id, bad), 400, "validation_failed")
        for bad in ("site", "=x", "bad key=x", "k=" + "x" * 129):
            self.assertError(self.api("GET", "/v1/devices" + harness.qs(tag=bad)), 400, "bad_request")
        self.assertError(self.api("GET", "/v1/devices?" + "&".join(["tag=k%d=v" % i for i in range(9)])), 400,
                         "bad_request")
        self.assertIn(("device.tag", a.id), self.actions())

    def test_id_prefix(self):
        devs = self.import_n(40)
        ids = sorted(d.id for d in devs)
        everything = self.ids("")
        self.assertTrue(set(ids) <= set(everything))
        for dev in devs[:5]:
            for n in (4, 6, 64):
                want = [i for i in everything if i.startswith(dev.id[:n])]
                self.assertEqual(self.ids("?id_prefix=" + dev.id[:n]), want)
                self.assertIn(dev.id, want)
        self.assertEqual(self.ids("?id_prefix=" + "f" * 6), [i for i in everything if i.startswith("ffffff")])
        # Pages of one through a prefix that matches several devices (one hex digit, padded with 0: the
        # 4-character prefix of the smallest id's range).
        pre = ids[0][:4]
        got = [d["id"] for d in self.list_all("/v1/devices?id_prefix=" + pre, limit=1)]
        self.assertEqual(got, [i for i in everything if i.startswith(pre)])
        self.assertEqual(self.ids("?id_prefix=" + pre, tenant="rival"), [])
        for bad in ("abc", "ABCD", "abcg", "a" * 65, "", "ab cd"):
            self.assertError(self.api("GET", "/v1/devices" + harness.qs(id_prefix=bad) if bad else
                                      "/v1/devices?id_prefix="), 400, "bad_request")

    def test_id_prefix_is_an_index_range(self):
        # The list statements bound the id as here (store_devices.c D_RANGE, S_RANGE): the schema's indexes
        # must turn that into a range, not a scan of the tenant's devices.
        plans = []
        with self.db() as c:
            for sql in ("SELECT id FROM devices WHERE tenant_id = 1 AND id >= 'abcd' AND id < 'abce'",
                        "SELECT id FROM devices WHERE tenant_id IS NULL AND registered_by = 1 AND id >= 'abcd' "
                        "AND id < 'abce'",
                        "SELECT id FROM devices WHERE group_id = 1 AND tenant_id = 1 AND id >= 'abcd' "
                        "AND id < 'abce'",
                        "SELECT device_id FROM device_shadows WHERE tenant_id = 1 AND device_id >= 'abcd' "
                        "AND device_id < 'abce'"):
                plans += [row[-1] for row in c.execute("EXPLAIN QUERY PLAN " + sql)]
        for p in plans:
            self.assertRegex(p, r"SEARCH .* USING (COVERING )?(INDEX|PRIMARY KEY).*[<>]", plans)


class TokenLifecycleTest(LifecycleBase):

    def test_expiry_and_last_used(self):
        made = self.create("/v1/tokens", {"name": "short", "role": "reader", "expires_in": 3600})
        self.assertRegex(made["expires_at"], harness.RFC3339)
        self.assertIsNone(made["last_used_at"])
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 30))
        at = self.create("/v1/tokens", {"name": "dated", "role": "reader", "expires_at": when})
        self.assertEqual(at["expires_at"], when)
        for bad in ({"expires_in": 59}, {"expires_in": "60"}, {"expires_in": 400000000},
                    {"expires_at": "2000-01-01T00:00:00Z"}, {"expires_at": "soon"},
                    {"expires_in": 3600, "expires_at": "2099-01-01T00:00:00Z"}):
            body = {"name": "bad", "role": "reader"}
            body.update(bad)
            self.assertError(self.api("POST", "/v1/tokens", body), 400, "validation_failed")
        forever = self.create("/v1/tokens", {"name": "forever", "role": "reader"})
        self.assertIsNone(forever["expires_at"])
        self.assertOk(self.api("GET", "/v1/tenant", token=made["token"]))
        listed = {t["id"]: t for t in self.list_all("/v1/tokens")}
        self.assertRegex(listed[made["id"]]["last_used_at"], harness.RFC3339)
        self.assertEqual(listed[made["id"]]["expires_at"], made["expires_at"])
        # At most one write a minute: a use within the minute leaves the stored time as it is.
        with self.db() as c:
            c.execute("UPDATE api_tokens SET last_used_at = strftime('%s','now') - 30 WHERE id = ?", (made["id"],))
        self.assertOk(self.api("GET", "/v1/tenant", token=made["token"]))
        with self.db() as c:
            (age,) = c.execute("SELECT strftime('%s','now') - last_used_at FROM api_tokens WHERE id = ?",
                               (made["id"],)).fetchone()
        self.assertGreaterEqual(age, 29)
        with self.db() as c:
            c.execute("UPDATE api_tokens SET last_used_at = strftime('%s','now') - 120 WHERE id = ?", (made["id"],))
        self.assertOk(self.api("GET", "/v1/tenant", token=made["token"]))
        with self.db() as c:
            (age,) = c.execute("SELECT strftime('%s','now') - last_used_at FROM api_tokens WHERE id = ?",
                               (made["id"],)).fetchone()
        self.assertLess(age, 10)
        # Expired: 401 with its own error code, at once (the row is read on every request).
        with self.db() as c:
            c.execute("UPDATE api_tokens SET expires_at = strftime('%s','now') - 1 WHERE id = ?", (made["id"],))
        st, hdrs, body = self.api("GET", "/v1/tenant", token=made["token"])
        self.assertEqual((st, body["error"]), (401, "token_expired"), body)
        self.assertEqual(hdrs.get("WWW-Authenticate"), "Bearer")
        self.assertError(self.api("GET", "/v1/tenant", token=made["token"][:-1] + "x"), 401, "unauthorized")
        self.assertOk(self.api("GET", "/v1/tenant", token=forever["token"]))

    def test_cli_tokens_devices_and_columns(self):
        p = self.d.ctl("tokens", "create", "cli-exp", "--role", "reader", "--expires-in", "2h", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertRegex(out["expires_at"], harness.RFC3339)
        p = self.d.ctl("tokens", "create", "cli-bad", "--role", "reader", "--expires-in", "2w")
        self.assertEqual(p.returncode, 2, p.stderr)
        p = self.d.ctl("tokens", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("EXPIRES_AT", p.stdout)
        self.assertIn("LAST_USED_AT", p.stdout)
        dev = self.new_device()
        p = self.d.ctl("devices", "tag", dev.id, "site=lyon", "rack=7", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["tags"], {"site": "lyon", "rack": "7"})
        p = self.d.ctl("devices", "tag", dev.id[:12], "rack-", json_out=True)  # a unique prefix
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["tags"], {"site": "lyon"})
        self.assertEqual(self.d.ctl("devices", "tag", dev.id, "nonsense").returncode, 2)
        p = self.d.ctl("devices", "list", "--tag", "site=lyon", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = json.loads(p.stdout)
        items = listed["items"] if isinstance(listed, dict) else listed
        self.assertEqual([d["id"] for d in items], [dev.id])
        # --tag is repeatable (AND), each one K=V as typed: a comma belongs to the value
        p = self.d.ctl("devices", "tag", dev.id, "x=a,b", json_out=True)
        self.assertEqual(p.returncode, 0, p.stderr)

        def listed_ids(*tags):
            args = [a for t in tags for a in ("--tag", t)]
            p = self.d.ctl("devices", "list", *args, "-o", "name")
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.split()
        self.assertEqual(listed_ids("x=a,b"), [dev.id])
        self.assertEqual(listed_ids("site=lyon", "x=a,b"), [dev.id])
        self.assertEqual(listed_ids("site=lyon", "x=a"), [])
        self.assertEqual(listed_ids("site=lyon,x=a,b"), [])
        self.assertEqual(self.d.ctl("devices", "list", "--tag", "novalue").returncode, 2)
        p = self.d.ctl("devices", "list", *["--tag=k=v"] * 9)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = self.d.ctl("devices", "unclaim", dev.id, json_out=True)
        self.assertEqual((p.returncode, json.loads(p.stdout)["state"]), (0, "unclaimed"), p.stderr)
        p = self.d.ctl("devices", "delete", dev.id)  # not confirmed: nothing deleted
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("add --yes", p.stderr)
        self.assertOk(self.api("GET", "/v1/devices/" + dev.id))
        p = self.d.ctl("devices", "delete", dev.id[:12], "--yes")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("device %s deleted" % dev.id, p.stdout)
        self.assertError(self.api("GET", "/v1/devices/" + dev.id), 404, "not_found")


class TenantDeleteTest(LifecycleBase):
    tenants = ("acme", "rival", "doomed")

    def test_tenant_delete(self):
        doomed = self.token_of("doomed")
        tid = self.d.tenant_ids["doomed"]
        dev, leaf, key = self.attested(tenant="doomed")
        shared, sleaf, skey = self.attested(tenant="doomed")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": shared.pub}]},
                               token=self.token_of("rival")))
        p = self.create("/v1/products", {"name": "doomed-p"}, doomed)
        self.create("/v1/device-groups", {"product_id": p["id"], "name": "doomed-g"}, doomed)
        c = self.mtls(leaf, key)
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 200)
        tdir = os.path.join(self.d.pki_dir, "tenants", str(tid))
        self.assertTrue(os.path.isdir(tdir))
        # No confirmation, no deletion; an unknown tenant is exit 6.
        self.assertEqual(self.d.ctl_local("tenant", "delete", "doomed", check=False).returncode, 2)
        self.assertOk(self.api("GET", "/v1/tenant", token=doomed))
        self.assertEqual(self.d.ctl_local("tenant", "delete", "nobody", "--yes", check=False).returncode, 6)
        out = json.loads(self.d.ctl_local("tenant", "delete", "doomed", "--yes", "--json").stdout)
        self.assertEqual((out["id"], out["devices"]), (tid, 2))
        # Tokens, certificates and files go at once, with the daemon running.
        self.assertError(self.api("GET", "/v1/tenant", token=doomed), 401, "unauthorized")
        self.assertEqual(self.get(c, "/v1/device/whoami")[0], 401)
        c.close()
        self.assertFalse(os.path.exists(tdir))
        names = json.loads(self.d.ctl_local("tenant", "list", "--json").stdout)
        self.assertNotIn("doomed", [t["name"] for t in names])
        with self.db() as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                cols = [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]
                for col in ("tenant_id", "registered_by"):
                    if col in cols:
                        (n,) = db.execute("SELECT count(*) FROM %s WHERE %s = ?" % (table, col), (tid,)).fetchone()
                        self.assertEqual(n, 0, "%s.%s" % (table, col))
            (n,) = db.execute("SELECT count(*) FROM devices WHERE id = ?", (dev.id,)).fetchone()
            self.assertEqual(n, 0)
        # The key rival had imported too is rival's device now.
        d = self.assertOk(self.api("GET", "/v1/devices/" + shared.id, token=self.token_of("rival")))
        self.assertEqual((d["state"], d["attestation"]), ("active", None))
        self.assertOk(self.api("GET", "/v1/tenant"))  # the others are untouched


if __name__ == "__main__":
    unittest.main()
