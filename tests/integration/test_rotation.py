"""Operations procedures of docs/operations.md checked against the real daemon: rotating a tenant's online TUF
keys (the snapshot, timestamp and director keys the service's signer holds) with the manufacturer's offline
root keys, as "Rotating the TUF keys" says: stop aegisd, move the key files aside, start it, `aegisctl ota root
rotate`, `aegisctl ota sign`."""

import glob
import os
import urllib.parse

import harness


class OnlineKeyRotationTest(harness.DaemonTestCase):
    tenants = ("acme",)

    def test_online_keys_rotated_with_the_offline_root_keys(self):
        st, _, p = self.api("POST", "/v1/products", {"name": "gw"})
        self.assertEqual(st, 201, p)
        q = {"product_id": p["id"], "component": "aegis-os", "kind": "os", "version": "1.0.0", "svn": 1,
             "hardware": "gw"}
        st, _, img = self.api("POST", "/v1/images?" + urllib.parse.urlencode(q), os.urandom(1000),
                              content_type="application/octet-stream")
        self.assertEqual(st, 201, img)
        keydir = os.path.join(self.d.tmp, "ota-keys")
        self.d.ota_publish(keydir)
        old = self.assertOk(self.api("GET", "/v1/ota/keys"))

        # the procedure
        self.d.stop()
        tid = self.d.tenant_ids["acme"]
        aside = os.path.join(self.d.tmp, "retired-online-keys")
        os.mkdir(aside, 0o700)
        files = glob.glob(os.path.join(self.d.pki_dir, "tenants", str(tid), "tuf-*.ed25519"))
        self.assertEqual(len(files), 3, files)
        for f in files:
            os.rename(f, os.path.join(aside, os.path.basename(f)))
        self.d.start()
        p = self.d.ctl("ota", "root", "rotate", "--dir", keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.d.ctl("ota", "sign", "--dir", keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        new = self.assertOk(self.api("GET", "/v1/ota/keys"))
        for role in ("snapshot", "timestamp", "director"):
            self.assertNotEqual(new[role]["keyid"], old[role]["keyid"], role)
        root = self.assertOk(self.api("GET", "/v1/ota/repo/2.root.json"))
        roles = root["signed"]["roles"]
        self.assertEqual(roles["timestamp"]["keyids"], [new["timestamp"]["keyid"]])
        self.assertEqual(roles["snapshot"]["keyids"], [new["snapshot"]["keyid"]])
        droot = self.assertOk(self.api("GET", "/v1/ota/director/2.root.json"))
        self.assertEqual(droot["signed"]["roles"]["targets"]["keyids"], [new["director"]["keyid"]])
        ts = self.assertOk(self.api("GET", "/v1/ota/repo/timestamp.json"))
        self.assertEqual([s["keyid"] for s in ts["signatures"]], [new["timestamp"]["keyid"]])
