"""The tenants' TUF repositories (docs/update.md 2-3, docs/api.md "Update repositories", issue 11 items 2, 8)
against the real daemon: aegisctl ota keys init / sign / root rotate, the files as a device fetches them over
mutual TLS (verified here independently with the cryptography package's Ed25519 and Python's canonical JSON),
every refusal of uploaded metadata, tenant isolation, and the online re-signing of the cron step under
libfaketime."""

import hashlib
import json
import os
import time
import unittest
import urllib.parse

import harness
import test_mtls
import test_sim
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FAKETIME_LIB = test_sim.FAKETIME_LIB


def canonical(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def keyid_of(pub_hex):
    obj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": pub_hex}}
    return hashlib.sha256(canonical(obj)).hexdigest(), obj


class Key:
    """An ed25519 key made here (or from a seed file of ota_keys.h)."""

    def __init__(self, seed=None):
        self.sk = Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        pub = self.sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.keyid, self.obj = keyid_of(pub)

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(bytes.fromhex(json.load(f)["keyval"]["private"]))

    def sign(self, env):
        env["signatures"].append({"keyid": self.keyid, "sig": self.sk.sign(canonical(env["signed"])).hex()})
        return env


def signed(env, keys):
    """A copy of env signed by keys only."""
    env = json.loads(json.dumps(env))
    env["signatures"] = []
    for k in keys:
        k.sign(env)
    return env


def valid_sigs(env, keys, keyids):
    """Distinct key ids of keyids with a valid signature over env's signed."""
    msg = canonical(env["signed"])
    ok = set()
    for s in env["signatures"]:
        if s["keyid"] not in keyids or s["keyid"] in ok:
            continue
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[s["keyid"]]["keyval"]["public"]))
        try:
            pub.verify(bytes.fromhex(s["sig"]), msg)
            ok.add(s["keyid"])
        except Exception:
            pass
    return len(ok)


def verified(env, root_signed, role):
    r = root_signed["roles"][role]
    return valid_sigs(env, root_signed["keys"], r["keyids"]) >= r["threshold"]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class OtaTest(harness.DaemonTestCase):
    tenants = ("acme", "globex")

    @classmethod
    def prepare(cls):
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gateway"})
        assert st == 201, body
        cls.product = body["id"]
        cls.keydir = os.path.join(cls.d.tmp, "ota-keys")
        cls.tmp = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.tmp)
        cls.image = cls.upload_image(b"os image 1" * 1000, "2.0.0", 5)
        p = cls.d.ctl("ota", "keys", "init", "--dir", cls.keydir, "--root-keys", "3", "--root-threshold", "2",
                      "--targets-keys", "2", "--targets-threshold", "2", "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        cls.init_out = p.stdout
        # a device of acme, with a certificate from the tenant's issuing CA
        cls.dev = cls.device("acme", "dev1")

    @classmethod
    def upload_image(cls, data, version, svn, component="aegis-os"):
        path = os.path.join(cls.d.tmp, "img-%s-%s" % (component, version))
        with open(path, "wb") as f:
            f.write(data)
        p = cls.d.ctl("images", "upload", path, "--product", str(cls.product), "--component", component,
                      "--kind", "os", "--image-version", version, "--svn", str(svn), "--hardware", "gw-rev-b",
                      json_out=True)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)

    @classmethod
    def device(cls, tenant, name):
        dev = test_mtls.Device(cls.tmp, name)
        st, _, body = cls.client.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}],
                                                                    "claim": True}, token=cls.d.tokens[tenant])
        assert st == 200 or st == 201, body
        tid = cls.d.tenant_ids[tenant]
        base = os.path.join(cls.d.pki_dir, "tenants", str(tid), "ca-1")
        dev.cert = dev.issue(base + ".crt", base + ".key", tid)
        return dev

    def dev_get(self, path, dev=None):
        dev = dev or self.dev
        c = test_mtls.MutualTLSTest.conn(self, dev.cert, dev.key)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            c.close()

    def dev_json(self, path):
        st, ctype, raw = self.dev_get(path)
        self.assertEqual(st, 200, raw[:300])
        self.assertTrue(ctype.startswith("application/json"), ctype)
        return json.loads(raw), raw

    def status(self):
        return self.assertOk(self.api("GET", "/v1/ota/status"))

    def root(self, repo="image"):
        v = self.status()[repo]["root"]["version"]
        path = "/v1/ota/%s/%d.root.json" % ("repo" if repo == "image" else "director", v)
        return self.assertOk(self.api("GET", path))

    def key_files(self, role):
        return [Key.from_file(os.path.join(self.keydir, n)) for n in sorted(os.listdir(self.keydir))
                if n.startswith(role + ".")]

    def targets_keys(self):
        ids = self.root()["signed"]["roles"]["targets"]["keyids"]
        return [k for k in self.key_files("targets") if k.keyid in ids]

    def proposal(self, **q):
        path = "/v1/ota/targets/proposal" + ("?" + urllib.parse.urlencode(q) if q else "")
        return self.assertOk(self.api("GET", path))["proposal"]

    def put_targets(self, env):
        return self.api("PUT", "/v1/ota/targets", env)

    # --- the flow ---

    def test_1_device_fetch_and_verify(self):
        self.assertIn("image root version 1 published", self.init_out)
        self.assertIn("director root version 1 published", self.init_out)
        for n in os.listdir(self.keydir):
            self.assertEqual(os.stat(os.path.join(self.keydir, n)).st_mode & 0o077, 0, n)
        # the TUF client workflow, root chain first (docs/update.md 3)
        root, _ = self.dev_json("/v1/device/tuf/1.root.json")
        rs = root["signed"]
        self.assertTrue(verified(root, rs, "root"))
        self.assertEqual(rs["roles"]["root"]["threshold"], 2)
        self.assertEqual(len(rs["roles"]["root"]["keyids"]), 3)
        self.assertTrue(rs["consistent_snapshot"])
        keys = self.assertOk(self.api("GET", "/v1/ota/keys"))
        self.assertEqual(rs["roles"]["snapshot"]["keyids"], [keys["snapshot"]["keyid"]])
        self.assertEqual(rs["roles"]["timestamp"]["keyids"], [keys["timestamp"]["keyid"]])
        self.assertEqual(keyid_of(keys["director"]["key"]["keyval"]["public"])[0], keys["director"]["keyid"])
        n = 1
        while True:
            st, _, raw = self.dev_get("/v1/device/tuf/%d.root.json" % (n + 1))
            if st == 404:
                break
            nxt = json.loads(raw)
            self.assertTrue(verified(nxt, rs, "root") and verified(nxt, nxt["signed"], "root"))
            rs, n = nxt["signed"], n + 1
        ts, _ = self.dev_json("/v1/device/tuf/timestamp.json")
        self.assertTrue(verified(ts, rs, "timestamp"))
        self.assertGreater(ts["signed"]["expires"], iso(time.time()))
        sm = ts["signed"]["meta"]["snapshot.json"]
        snap, raw = self.dev_json("/v1/device/tuf/%d.snapshot.json" % sm["version"])
        self.assertEqual(len(raw), sm["length"])
        self.assertEqual(hashlib.sha256(raw).hexdigest(), sm["hashes"]["sha256"])
        self.assertTrue(verified(snap, rs, "snapshot"))
        tv = snap["signed"]["meta"]["targets.json"]["version"]
        tg, _ = self.dev_json("/v1/device/tuf/%d.targets.json" % tv)
        self.assertTrue(verified(tg, rs, "targets"))
        self.assertEqual(tg["signed"]["version"], tv)
        path = "aegis-os/" + self.image["sha256"]
        t = tg["signed"]["targets"][path]
        self.assertEqual(t["length"], self.image["size"])
        self.assertEqual(t["hashes"], {"sha256": self.image["sha256"]})
        self.assertEqual(t["custom"], {"component": "aegis-os", "kind": "os", "version": "2.0.0", "svn": 5,
                                       "hardware": "gw-rev-b", "product_id": self.product})
        # the director root: the same root keys, the director key for its other roles
        droot, _ = self.dev_json("/v1/device/director/1.root.json")
        ds = droot["signed"]
        self.assertTrue(verified(droot, ds, "root"))
        self.assertEqual(ds["roles"]["root"]["keyids"], root["signed"]["roles"]["root"]["keyids"])
        for role in ("targets", "snapshot", "timestamp"):
            self.assertEqual(ds["roles"][role]["keyids"], [keys["director"]["keyid"]])
        # served bytes are what the token routes serve
        st, _, raw = self.dev_get("/v1/device/tuf/timestamp.json")
        st2, _, raw2 = self.client.request("GET", "/v1/ota/repo/timestamp.json")
        self.assertEqual((st, raw), (st2, raw2))
        for bad in ("root.json", "0.root.json", "01.root.json", "1.root.json.x", "targets.json", "x",
                    "99.targets.json", "1.timestamp.json"):
            self.assertEqual(self.dev_get("/v1/device/tuf/" + bad)[0], 404, bad)
        for bad in ("timestamp.json", "1.targets.json", "1.snapshot.json", "2.root.json"):
            self.assertEqual(self.dev_get("/v1/device/director/" + bad)[0], 404, bad)

    def test_2_sign_new_image(self):
        before = self.status()["image"]
        img = self.upload_image(b"app image" * 333, "1.4.0", 2, component="aegis-app")
        p = self.d.ctl("ota", "sign", "--dir", self.keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("+ aegis-app  os 1.4.0 svn 2  gw-rev-b  sha256 %s  length %d" % (img["sha256"], img["size"]),
                      p.stdout)
        self.assertIn("1 added, 0 removed, 0 changed", p.stdout)
        after = self.status()["image"]
        for role in ("targets", "snapshot", "timestamp"):
            self.assertEqual(after[role]["version"], before[role]["version"] + 1, role)
        tg, _ = self.dev_json("/v1/device/tuf/%d.targets.json" % after["targets"]["version"])
        self.assertIn("aegis-app/" + img["sha256"], tg["signed"]["targets"])
        # the older version is still served (consistent snapshots)
        self.dev_json("/v1/device/tuf/%d.targets.json" % before["targets"]["version"])
        # without --yes and no terminal: refused, nothing published
        p = self.d.ctl("ota", "sign", "--dir", self.keydir)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertEqual(self.status()["image"]["targets"], after["targets"])
        audit = [e["action"] for e in self.assertOk(self.api("GET", "/v1/audit"))["items"]]
        self.assertIn("ota.targets.publish", audit)
        self.assertIn("ota.root.publish", audit)

    def test_3_refusals(self):
        good = self.targets_keys()
        cur = self.status()["image"]["targets"]["version"]

        prop = self.proposal()
        self.assertEqual(prop["signed"]["version"], cur + 1)
        # below the threshold (2 of 2 needed), or a wrong signature
        self.assertError(self.put_targets(signed(prop, good[:1])), 422, "signatures")
        bad = signed(prop, good)
        bad["signatures"][1]["sig"] = bad["signatures"][0]["sig"]
        self.assertError(self.put_targets(bad), 422, "signatures")
        self.assertError(self.put_targets(signed(prop, [Key(), Key()])), 422, "signatures")
        # the server's own online key cannot sign targets
        tid = self.d.tenant_ids["acme"]
        online = [Key.from_file(os.path.join(self.d.pki_dir, "tenants", str(tid), "tuf-%s.ed25519" % r))
                  for r in ("snapshot", "timestamp", "director")]
        self.assertError(self.put_targets(signed(prop, online)), 422, "signatures")
        self.assertError(self.put_targets(signed(prop, online[:1] + good[:1])), 422, "signatures")
        # version not +1
        for v in (cur, cur + 2):
            p = json.loads(json.dumps(prop))
            p["signed"]["version"] = v
            self.assertError(self.put_targets(signed(p, good)), 409, "version")
        # expired, or too far ahead
        for exp in (iso(time.time() - 60), iso(time.time() + 3651 * 86400)):
            p = json.loads(json.dumps(prop))
            p["signed"]["expires"] = exp
            self.assertError(self.put_targets(signed(p, good)), 422, "expires")
        # a target that is not an image, or with the wrong length, hash or custom fields
        path, t = next(iter(prop["signed"]["targets"].items()))
        fake = "f" * 64
        for mutate, st, code in (
                (lambda ts: ts.__setitem__("aegis-os/" + fake, dict(t, hashes={"sha256": fake})), 422,
                 "unknown_target"),
                (lambda ts: ts[path].__setitem__("length", t["length"] + 1), 422, "unknown_target"),
                (lambda ts: ts[path]["custom"].__setitem__("svn", 99), 422, "unknown_target"),
                # a path whose component is not the target's own is not even well-formed
                (lambda ts: ts.__setitem__("other/" + path.split("/")[1], ts.pop(path)), 400, "bad_metadata")):
            p = json.loads(json.dumps(prop))
            mutate(p["signed"]["targets"])
            self.assertError(self.put_targets(signed(p, good)), st, code)
        # not metadata at all
        self.assertError(self.put_targets({"signed": {"_type": "snapshot"}, "signatures": []}), 400,
                         "bad_metadata")
        self.assertError(self.api("PUT", "/v1/ota/targets", b"[1]", content_type="application/json"), 400,
                         "invalid_json")
        # none of it was published
        self.assertEqual(self.status()["image"]["targets"]["version"], cur)
        # a reader cannot publish
        tok = self.assertOk(self.api("POST", "/v1/tokens", {"name": "r", "role": "reader"}), 201)["token"]
        self.assertError(self.api("PUT", "/v1/ota/targets", signed(prop, good), token=tok), 403, "forbidden")
        # and the valid one is accepted
        self.assertEqual(self.assertOk(self.put_targets(signed(prop, good)), 201)["targets"], cur + 1)

    def test_3b_hostile_uploads(self):
        """What a compromised client or a careless manufacturer could upload is refused: online key material
        under another key id, thresholds above the key count, delegations or other members in targets, work
        beyond the caps (signatures, keys), files above the sizes docs/update.md 2.1 states."""
        good = self.targets_keys()
        roots = self.key_files("root")
        cur = self.root()
        cs = cur["signed"]
        rkeys = [k for k in roots if k.keyid in cs["roles"]["root"]["keyids"]]
        nxt = json.loads(json.dumps(cur))
        nxt["signed"]["version"] = cs["version"] + 1
        nxt["signed"]["expires"] = iso(time.time() + 86400 * 30)
        put = lambda env: self.api("PUT", "/v1/ota/root?repo=image", env)
        # the online snapshot key's public key as a targets (or root) key, under another key id
        keys = self.assertOk(self.api("GET", "/v1/ota/keys"))
        for role in ("targets", "root"):
            p = json.loads(json.dumps(nxt))
            obj = dict(keys["snapshot"]["key"], keyid_hash_algorithms=["sha256"])
            kid = hashlib.sha256(canonical(obj)).hexdigest()
            self.assertNotEqual(kid, keys["snapshot"]["keyid"])
            p["signed"]["keys"][kid] = obj
            p["signed"]["roles"][role]["keyids"].append(kid)
            self.assertError(put(signed(p, rkeys)), 422, "keys")
        # a threshold above the number of keys would brick the repository
        p = json.loads(json.dumps(nxt))
        p["signed"]["roles"]["targets"]["threshold"] = len(p["signed"]["roles"]["targets"]["keyids"]) + 1
        r = put(signed(p, rkeys))
        self.assertError(r, 422, "keys")
        self.assertIn("threshold", r[2]["message"])
        # more than 64 keys in a root
        p = json.loads(json.dumps(nxt))
        for _ in range(65):
            k = Key()
            p["signed"]["keys"][k.keyid] = k.obj
        self.assertError(put(signed(p, rkeys)), 400, "bad_metadata")
        # a root file above 64 KiB
        p = json.loads(json.dumps(nxt))
        p["signed"]["padding"] = "x" * (64 * 1024)
        self.assertError(put(signed(p, rkeys)), 413, "payload_too_large")
        self.assertEqual(self.status()["image"]["root"]["version"], cs["version"])

        prop = self.proposal()
        # delegations (or any other member) in targets
        for extra in ({"delegations": {"keys": {}, "roles": []}}, {"custom": {}}):
            p = json.loads(json.dumps(prop))
            p["signed"].update(extra)
            self.assertError(self.put_targets(signed(p, good)), 400, "bad_metadata")
        # more signatures than 2 x (number of targets keys) + 8
        p = signed(prop, good)
        p["signatures"] += [p["signatures"][0]] * (2 * len(good) + 8)
        r = self.put_targets(p)
        self.assertError(r, 400, "bad_metadata")
        self.assertIn("signatures", r[2]["message"])
        self.assertEqual(self.status()["image"]["targets"]["version"], prop["signed"]["version"] - 1)

    def test_4_root_refusals(self):
        roots = self.key_files("root")
        cur = self.root()
        cs = cur["signed"]
        ids = cs["roles"]["root"]["keyids"]
        rkeys = [k for k in roots if k.keyid in ids]
        self.assertGreaterEqual(len(rkeys), 2)
        nxt = json.loads(json.dumps(cur))
        nxt["signed"]["version"] = cs["version"] + 1
        nxt["signed"]["expires"] = iso(time.time() + 86400 * 30)

        put = lambda env, repo="image": self.api("PUT", "/v1/ota/root?repo=" + repo, env)
        # chain break: not signed by a threshold of the current root keys
        self.assertError(put(signed(nxt, rkeys[:1])), 422, "signatures")
        self.assertError(put(signed(nxt, [Key(), Key()])), 422, "signatures")
        # skipped version, or the same
        for v in (cs["version"], cs["version"] + 2):
            p = json.loads(json.dumps(nxt))
            p["signed"]["version"] = v
            self.assertError(put(signed(p, rkeys)), 409, "version")
        # online keys moved: snapshot role not the online key, or an online key as a root key
        keys = self.assertOk(self.api("GET", "/v1/ota/keys"))
        stranger = Key()
        p = json.loads(json.dumps(nxt))
        p["signed"]["keys"][stranger.keyid] = stranger.obj
        p["signed"]["roles"]["snapshot"]["keyids"] = [stranger.keyid]
        self.assertError(put(signed(p, rkeys)), 422, "keys")
        p = json.loads(json.dumps(nxt))
        p["signed"]["roles"]["targets"]["keyids"].append(keys["snapshot"]["keyid"])
        self.assertError(put(signed(p, rkeys)), 422, "keys")
        # expired
        p = json.loads(json.dumps(nxt))
        p["signed"]["expires"] = iso(time.time() - 10)
        self.assertError(put(signed(p, rkeys)), 422, "expires")
        self.assertError(put(signed(nxt, rkeys), repo="other"), 400, "validation_failed")
        # a director root with the image roles is refused
        self.assertError(put(signed(nxt, rkeys), repo="director"), 422, "keys")
        # an operator token cannot publish roots
        tok = self.assertOk(self.api("POST", "/v1/tokens", {"name": "op", "role": "operator"}), 201)["token"]
        self.assertError(self.api("PUT", "/v1/ota/root?repo=image", signed(nxt, rkeys), token=tok), 403,
                         "forbidden")
        self.assertEqual(self.status()["image"]["root"]["version"], cs["version"])

    def test_5_tenant_isolation(self):
        other = self.token_of("globex")
        st = self.assertOk(self.api("GET", "/v1/ota/status", token=other))
        self.assertIsNone(st["image"]["root"])
        self.assertIsNone(st["director"]["root"])
        self.assertError(self.api("GET", "/v1/ota/repo/1.root.json", token=other), 404, "not_found")
        self.assertError(self.api("GET", "/v1/ota/repo/timestamp.json", token=other), 404, "not_found")
        self.assertError(self.api("GET", "/v1/ota/director/1.root.json", token=other), 404, "not_found")
        gdev = self.device("globex", "gdev")
        for path in ("/v1/device/tuf/1.root.json", "/v1/device/tuf/timestamp.json",
                     "/v1/device/tuf/1.targets.json", "/v1/device/director/1.root.json"):
            self.assertEqual(self.dev_get(path, dev=gdev)[0], 404, path)
        # a reader's look makes no keys: 404 until an operator or admin asks (or the first root)
        tid = self.d.tenant_ids["globex"]
        reader = self.assertOk(self.api("POST", "/v1/tokens", {"name": "r", "role": "reader"}, token=other),
                               201)["token"]
        self.assertError(self.api("GET", "/v1/ota/keys", token=reader), 404, "not_found")
        self.assertFalse(os.path.exists(os.path.join(self.d.pki_dir, "tenants", str(tid), "tuf-snapshot.ed25519")))
        # globex's keys are its own
        ka = self.assertOk(self.api("GET", "/v1/ota/keys"))
        kg = self.assertOk(self.api("GET", "/v1/ota/keys", token=other))
        for r in ("snapshot", "timestamp", "director"):
            self.assertNotEqual(ka[r]["keyid"], kg[r]["keyid"])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/ota/keys", token=reader)), kg)
        # targets for globex before a root: no_root
        prop = self.assertOk(self.api("GET", "/v1/ota/targets/proposal", token=other))["proposal"]
        self.assertEqual(prop["signed"]["targets"], {})
        self.assertError(self.api("PUT", "/v1/ota/targets", prop, token=other), 409, "no_root")
        # a first root that does not list the online keys
        k = Key()
        signed = {"_type": "root", "spec_version": "1.0.31", "version": 1, "expires": iso(time.time() + 86400),
                  "consistent_snapshot": True, "keys": {k.keyid: k.obj},
                  "roles": {r: {"keyids": [k.keyid], "threshold": 1}
                            for r in ("root", "targets", "snapshot", "timestamp")}}
        env = k.sign({"signed": signed, "signatures": []})
        self.assertError(self.api("PUT", "/v1/ota/root?repo=image", env, token=other), 422, "keys")
        # a first root of version 2
        signed = dict(signed, version=2)
        env = k.sign({"signed": signed, "signatures": []})
        self.assertError(self.api("PUT", "/v1/ota/root?repo=image", env, token=other), 409, "version")

    def test_6_root_rotation(self):
        before = self.status()
        old_ids = set(self.root()["signed"]["roles"]["root"]["keyids"])
        p = self.d.ctl("ota", "root", "rotate", "--dir", self.keydir, "--new-root-keys", "2", "--root-threshold",
                       "1", "--targets-keys", "3", "--targets-threshold", "3", "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        after = self.status()
        self.assertEqual(after["image"]["root"]["version"], before["image"]["root"]["version"] + 1)
        self.assertEqual(after["director"]["root"]["version"], before["director"]["root"]["version"] + 1)
        self.assertEqual(after["image"]["targets"]["version"], before["image"]["targets"]["version"] + 1)
        v = after["image"]["root"]["version"]
        old = self.assertOk(self.api("GET", "/v1/ota/repo/%d.root.json" % (v - 1)))
        new, _ = self.dev_json("/v1/device/tuf/%d.root.json" % v)
        ns = new["signed"]
        # signed by a threshold of the old root keys and of the new ones
        self.assertTrue(verified(new, old["signed"], "root"))
        self.assertTrue(verified(new, ns, "root"))
        self.assertEqual(ns["roles"]["root"]["threshold"], 1)
        self.assertEqual(ns["roles"]["targets"]["threshold"], 3)
        self.assertFalse(old_ids & set(ns["roles"]["root"]["keyids"]))
        # the retired key files are gone, the new ones are there
        self.assertEqual({k.keyid for k in self.key_files("root")}, set(ns["roles"]["root"]["keyids"]))
        self.assertEqual({k.keyid for k in self.key_files("targets")}, set(ns["roles"]["targets"]["keyids"]))
        tg, _ = self.dev_json("/v1/device/tuf/%d.targets.json" % after["image"]["targets"]["version"])
        self.assertTrue(verified(tg, ns, "targets"))
        dnew, _ = self.dev_json("/v1/device/director/%d.root.json" % after["director"]["root"]["version"])
        self.assertEqual(dnew["signed"]["roles"]["root"]["keyids"], ns["roles"]["root"]["keyids"])
        # a changed threshold alone
        p = self.d.ctl("ota", "root", "rotate", "--dir", self.keydir, "--root-threshold", "2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.root()["signed"]["roles"]["root"]["threshold"], 2)
        p = self.d.ctl("ota", "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"image\s+root\s+%d\s" % (v + 1))


class OtaResignTest(harness.DaemonTestCase):
    """The cron step re-signs the timestamp and snapshot of a repository when less than half of their lifetime
    is left (timestamp 1 day, snapshot 7 days): the daemon restarted four days in its future publishes a new
    timestamp and snapshot expiring in that future."""

    tenants = ("acme",)

    @unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime missing (deploy/install-deps.sh installs it)")
    def test_resign_in_the_future(self):
        keydir = os.path.join(self.d.tmp, "keys")
        p = self.d.ctl("ota", "keys", "init", "--dir", keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        before = self.assertOk(self.api("GET", "/v1/ota/status"))["image"]
        self.restart_in_future("+4d")
        deadline = time.monotonic() + 30
        after = before
        while time.monotonic() < deadline:
            after = self.assertOk(self.api("GET", "/v1/ota/status"))["image"]
            if after["timestamp"]["version"] > before["timestamp"]["version"]:
                break
            time.sleep(0.3)
        self.assertEqual(after["timestamp"]["version"], before["timestamp"]["version"] + 1)
        self.assertEqual(after["snapshot"]["version"], before["snapshot"]["version"] + 1)
        self.assertEqual(after["targets"], before["targets"])
        self.assertGreater(after["timestamp"]["expires"], iso(time.time() + 4 * 86400))
        self.assertGreater(after["snapshot"]["expires"], iso(time.time() + 10 * 86400))
        ts = self.assertOk(self.api("GET", "/v1/ota/repo/timestamp.json"))
        self.assertEqual(ts["signed"]["meta"]["snapshot.json"]["version"], after["snapshot"]["version"])
        self.assertIn("online TUF metadata re-signed", self.d.log())

    restart_in_future = test_sim.ExpiredCertTest.restart_in_future
