"""Interoperability with a public TUF client (issue 11 item 7, docs/update.md 3): tuf-js, pinned in
tests/interop/tufjs/package-lock.json and installed with `npm ci` when missing, refreshes a tenant's image
repository served by aegisd over mutual TLS with a device certificate (tests/interop/tufjs/client.mjs), from the
trusted 1.root.json through a root rotation with a changed threshold and a targets update, and downloads and
verifies targets. Then tuf-js refuses, each with its own error: an expired timestamp (the client under
libfaketime), a rolled-back snapshot version and targets signed by a key the server holds (both written into the
database by a compromised server that holds the online keys), and a target whose bytes were changed on disk."""

import calendar
import contextlib
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse

import harness
import test_mtls
import test_sim
from test_ota import Key, canonical, iso

CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "tufjs")
NODE_TIMEOUT = 60


def tufjs_node():
    """The node binary, with the pinned packages installed in CLIENT_DIR/node_modules (npm ci when one is missing
    or of another version); raises with what to do when node or npm is missing or npm ci fails."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("the tuf-js interoperability test needs node and npm on the PATH "
                           "(deploy/install-deps.sh installs Debian's nodejs and npm)")
    with open(os.path.join(CLIENT_DIR, "package.json")) as f:
        pinned = json.load(f)["dependencies"]
    installed = {}
    for name in pinned:
        try:
            with open(os.path.join(CLIENT_DIR, "node_modules", name, "package.json")) as f:
                installed[name] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
    if installed != pinned:
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("npm ci in %s failed (%d; it needs the npm registry):\n%s"
                               % (CLIENT_DIR, p.returncode, harness.tail(p.stdout)))
    return node


class TufJsTest(harness.DaemonTestCase):
    """One daemon and one tenant; the tests run in order (test_1 ... test_7). The refusals run on copies of the
    client's trusted metadata, and every file or row a refusal changes is put back, so none depends on
    another's damage."""

    tenants = ("acme",)

    @classmethod
    def prepare(cls):
        cls.node = tufjs_node()
        cls.tid = cls.d.tenant_ids["acme"]
        cls.work = os.path.join(cls.d.tmp, "tufjs")
        os.makedirs(cls.work)
        st, _, body = cls.client.api("POST", "/v1/products", {"name": "gateway"})
        assert st == 201, body
        cls.product = body["id"]
        st, _, body = cls.client.api("POST", "/v1/device-groups", {"name": "fleet", "product_id": cls.product})
        assert st == 201, body
        cls.group = body["id"]
        cls.os_data = os.urandom(20000)
        cls.os_img = cls.upload(cls.os_data, "aegis-os", "os", "2.0.0")
        cls.keydir = os.path.join(cls.work, "keys")
        p = cls.d.ctl("ota", "keys", "init", "--dir", cls.keydir, "--root-keys", "2", "--root-threshold", "1",
                      "--yes")
        assert p.returncode == 0, p.stdout + p.stderr
        cls.deployment = cls.deploy([cls.os_img])
        # a device of the group, with a certificate of the tenant's issuing CA (valid past the faketime case)
        cls.dev = test_mtls.Device(cls.work, "dev")
        st, _, body = cls.client.api("POST", "/v1/devices/import", {"devices": [{"public_key": cls.dev.pub}],
                                                                    "claim": True, "group_id": cls.group})
        assert st in (200, 201), body
        base = os.path.join(cls.d.pki_dir, "tenants", str(cls.tid), "ca-1")
        cls.cert = cls.dev.issue(base + ".crt", base + ".key", cls.tid, days=10)
        # the device's trusted metadata: the image repository's 1.root.json, obtained out of band
        cls.cache = os.path.join(cls.work, "trusted")
        os.makedirs(cls.cache)
        st, _, raw = cls.client.request("GET", "/v1/ota/repo/1.root.json")
        assert st == 200, raw
        with open(os.path.join(cls.cache, "root.json"), "wb") as f:
            f.write(raw)

    @classmethod
    def upload(cls, data, component, kind, version):
        q = urllib.parse.urlencode({"product_id": cls.product, "component": component, "kind": kind,
                                    "version": version, "svn": 1, "hardware": "gw-rev-b"})
        st, _, body = cls.client.api("POST", "/v1/images?" + q, data, content_type="application/octet-stream")
        assert st == 201, body
        return body

    @classmethod
    def deploy(cls, images):
        st, _, body = cls.client.api("POST", "/v1/deployments", {
            "group_id": cls.group, "name": "release", "images": [i["sha256"] for i in images], "waves": [100],
            "soak_seconds": 3600, "failure_threshold_pct": 50, "min_attempts": 1})
        assert st == 201, body
        return body

    # --- the client ---

    def tufjs(self, cache=None, target=None, faketime=None):
        """Runs client.mjs on the trusted metadata in cache (default: the device's); returns its JSON line."""
        cache = cache or self.cache
        n = len(os.listdir(self.work))
        cfg = {"base": self.d.url(), "ca": self.d.cacert, "cert": self.cert, "key": self.dev.key,
               "metadata_dir": cache, "target": target, "out": os.path.join(self.work, "target-%d.bin" % n)}
        path = os.path.join(self.work, "client-%d.json" % n)
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ)
        if faketime:
            env.update(LD_PRELOAD=test_sim.FAKETIME_LIB, FAKETIME=faketime)
        p = subprocess.run([self.node, os.path.join(CLIENT_DIR, "client.mjs"), path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=NODE_TIMEOUT, env=env)
        lines = p.stdout.strip().splitlines()
        self.assertTrue(lines, "client.mjs printed nothing (%d):\n%s" % (p.returncode, p.stderr[-2000:]))
        out = json.loads(lines[-1])
        self.assertEqual(p.returncode, 0 if out["ok"] else 1, p.stderr[-2000:])
        if out["ok"] and target:
            with open(cfg["out"], "rb") as f:
                out["bytes"] = f.read()
        return out

    def refused(self, out, error, message):
        self.assertFalse(out["ok"], out)
        self.assertEqual(out["error"], error, out)
        self.assertIn(message, out["message"], out)

    def copy_of_trust(self):
        """A copy of the device's trusted metadata, for a refusal that must not touch the real one."""
        n = len(os.listdir(self.work))
        dst = os.path.join(self.work, "copy-%d" % n)
        shutil.copytree(self.cache, dst)
        return dst

    def trusted(self, role):
        with open(os.path.join(self.cache, role + ".json")) as f:
            return json.load(f)["signed"]

    def status(self):
        return self.assertOk(self.api("GET", "/v1/ota/status"))["image"]

    # --- a compromised server: the online keys and the database ---

    def online_key(self, role):
        return Key.from_file(os.path.join(self.d.pki_dir, "tenants", str(self.tid), "tuf-%s.ed25519" % role))

    @contextlib.contextmanager
    def db(self):
        """The daemon's database, in one transaction (committed when the block ends without an exception)."""
        c = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"), timeout=30)
        try:
            with c:
                yield c
        finally:
            c.close()

    def stored(self, role, version):
        with self.db() as c:
            row = c.execute("SELECT body FROM tuf_meta WHERE tenant_id = ? AND repo = 'image' AND role = ? AND "
                            "version = ?", (self.tid, role, version)).fetchone()
        self.assertIsNotNone(row, (role, version))
        return bytes(row[0])

    def insert(self, files):
        """Stores signed files (role -> envelope) as the service would; returns what undo() needs."""
        rows = []
        with self.db() as c:
            for role, env in files.items():
                body = json.dumps(env, separators=(",", ":")).encode()
                s = env["signed"]
                exp = calendar.timegm(time.strptime(s["expires"], "%Y-%m-%dT%H:%M:%SZ"))
                c.execute("INSERT INTO tuf_meta (tenant_id, repo, role, version, expires, body, created_at) "
                          "VALUES (?, 'image', ?, ?, ?, ?, ?)", (self.tid, role, s["version"], exp, body,
                                                                int(time.time())))
                rows.append((role, s["version"]))
        return rows

    def undo(self, rows):
        with self.db() as c:
            for role, version in rows:
                c.execute("DELETE FROM tuf_meta WHERE tenant_id = ? AND repo = 'image' AND role = ? AND version = ?",
                          (self.tid, role, version))

    def online_timestamp(self, version, snapshot_version):
        raw = self.stored("snapshot", snapshot_version)
        s = {"_type": "timestamp", "spec_version": "1.0.31", "version": version, "expires": iso(time.time() + 86400),
             "meta": {"snapshot.json": {"version": snapshot_version, "length": len(raw),
                                        "hashes": {"sha256": hashlib.sha256(raw).hexdigest()}}}}
        return self.online_key("timestamp").sign({"signed": s, "signatures": []})

    # --- the flow ---

    def test_1_refresh_and_download(self):
        out = self.tufjs(target="aegis-os/" + self.os_img["sha256"])
        self.assertTrue(out["ok"], out)
        st = self.status()
        self.assertEqual((out["root"], out["timestamp"], out["snapshot"], out["targets"]),
                         (1, st["timestamp"]["version"], st["snapshot"]["version"], st["targets"]["version"]))
        self.assertEqual(out["target"], {"path": "aegis-os/" + self.os_img["sha256"], "length": len(self.os_data),
                                         "sha256": self.os_img["sha256"]})
        self.assertEqual(out["bytes"], self.os_data)
        # tuf-js keeps what it verified
        self.assertEqual(self.trusted("timestamp")["version"], st["timestamp"]["version"])

    def test_2_root_rotation_with_changed_threshold(self):
        before = self.trusted("root")
        self.assertEqual((before["version"], before["roles"]["root"]["threshold"]), (1, 1))
        p = self.d.ctl("ota", "root", "rotate", "--dir", self.keydir, "--new-root-keys", "3", "--root-threshold",
                       "2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = self.tufjs()
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["root"], 2)
        after = self.trusted("root")
        self.assertEqual((after["version"], after["roles"]["root"]["threshold"]), (2, 2))
        self.assertEqual(len(after["roles"]["root"]["keyids"]), 3)
        self.assertFalse(set(after["roles"]["root"]["keyids"]) & set(before["roles"]["root"]["keyids"]))

    def test_3_targets_update(self):
        before = self.trusted("targets")["version"]
        type(self).app_data = os.urandom(7777)
        type(self).app_img = self.upload(self.app_data, "aegis-app", "app", "1.4.0")
        p = self.d.ctl("ota", "sign", "--dir", self.keydir, "--yes")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # the group's release now offers both images (the service serves only images the director names)
        self.assertOk(self.api("POST", "/v1/deployments/%d/abort" % self.deployment["id"]))
        type(self).deployment = self.deploy([self.os_img, self.app_img])
        out = self.tufjs(target="aegis-app/" + self.app_img["sha256"])
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["targets"], before + 1)
        self.assertEqual(out["targets"], self.status()["targets"]["version"])
        self.assertEqual(out["target"]["sha256"], self.app_img["sha256"])
        self.assertEqual(out["bytes"], self.app_data)

    # --- refusals ---

    def test_4_expired_timestamp(self):
        """Two days on, the timestamp (1 day) has expired: a server that stopped re-signing freezes nothing."""
        out = self.tufjs(cache=self.copy_of_trust(), faketime="+2d")
        # tuf-js checks the final timestamp's expiry when it loads the snapshot, and wraps the failure there
        self.refused(out, "RuntimeError", "ExpiredMetadataError: Final timestamp.json is expired")
        # today it is valid
        self.assertTrue(self.tufjs(cache=self.copy_of_trust())["ok"])

    def test_5_rolled_back_snapshot(self):
        """A newer timestamp, validly signed with the online key, naming an older snapshot than the device has."""
        trusted_snap = self.trusted("snapshot")["version"]
        self.assertGreaterEqual(trusted_snap, 2)
        ts = self.online_timestamp(self.status()["timestamp"]["version"] + 1, trusted_snap - 1)
        rows = self.insert({"timestamp": ts})
        try:
            out = self.tufjs(cache=self.copy_of_trust())
        finally:
            self.undo(rows)
        self.refused(out, "BadVersionError", "New snapshot version %d is less than current version %d"
                     % (trusted_snap - 1, trusted_snap))
        self.assertTrue(self.tufjs(cache=self.copy_of_trust())["ok"])

    def test_6_target_changed_on_disk(self):
        path, = glob.glob(os.path.join(self.d.data_dir, "images", "**", self.os_img["sha256"]), recursive=True)
        with open(path, "rb") as f:
            good = f.read()
        self.assertEqual(good, self.os_data)
        os.chmod(path, 0o600)
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(bytes(b ^ 0xFF for b in good[1000:1010]))  # the same length, other bytes
        try:
            out = self.tufjs(cache=self.copy_of_trust(), target="aegis-os/" + self.os_img["sha256"])
        finally:
            with open(path, "wb") as f:
                f.write(good)
        self.refused(out, "LengthOrHashMismatchError", "Expected hash %s but got" % self.os_img["sha256"])
        self.assertTrue(self.tufjs(cache=self.copy_of_trust(), target="aegis-os/" + self.os_img["sha256"])["ok"])

    def test_7_targets_signed_by_online_key(self):
        """A server that signs targets with its online snapshot key, with a valid snapshot and timestamp naming
        them: the targets role's keys are the manufacturer's offline keys, so tuf-js refuses the targets."""
        st = self.status()
        tg = json.loads(self.stored("targets", st["targets"]["version"]))["signed"]
        tg["version"] += 1
        # a target the manufacturer never signed, listed with the custom fields of a real one
        evil = hashlib.sha256(b"evil").hexdigest()
        custom = tg["targets"]["aegis-os/" + self.os_img["sha256"]]["custom"]
        tg["targets"]["aegis-os/" + evil] = {"length": 4, "hashes": {"sha256": evil}, "custom": custom}
        snap_key = self.online_key("snapshot")
        targets = snap_key.sign({"signed": tg, "signatures": []})
        snap = {"_type": "snapshot", "spec_version": "1.0.31", "version": st["snapshot"]["version"] + 1,
                "expires": iso(time.time() + 7 * 86400), "meta": {"targets.json": {"version": tg["version"]}}}
        snap = snap_key.sign({"signed": snap, "signatures": []})
        rows = self.insert({"targets": targets, "snapshot": snap})
        try:
            rows += self.insert({"timestamp": self.online_timestamp(st["timestamp"]["version"] + 1,
                                                                    snap["signed"]["version"])})
            out = self.tufjs(cache=self.copy_of_trust())
        finally:
            self.undo(rows)
        # tuf-js wraps the targets' failure: "Unable to load targets error UnsignedMetadataError: ..."
        self.refused(out, "RuntimeError", "UnsignedMetadataError: targets was signed by 0/")
        self.assertTrue(self.tufjs(cache=self.copy_of_trust())["ok"])
        self.assertEqual(canonical(self.status()), canonical(st))
