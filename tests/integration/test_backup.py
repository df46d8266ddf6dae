"""aegisctl backup and restore against the real daemon (docs/operations.md "Backup and restore").

A backup is taken while the daemon ingests failure reports at full speed: an aegis-sim fleet living many
boots (attest, report crashes, heartbeats and reboots over mutual TLS) plus devices whose every acknowledged
report is recorded. The backup is restored into a new data directory and a second daemon started on it:
every report acknowledged before the backup started is there, the aggregates agree with the reports (one
snapshot), and the restored service works: its devices attest again, the API answers with the old tokens,
an old device certificate still authenticates, the online TUF keys are the same ones and sign again, and
an update image downloads. Then what restore refuses: a running service's data (also with --force), a
non-empty target without --force, a damaged or incomplete backup; and the modes of what it writes.
"""

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
import urllib.parse

import harness
from test_image_download import RolloutFixtures
from test_mtls import Device
from test_sim import SimMixin
from test_sim_telemetry import CONFIG  # every device from 127.0.0.1: no per-address limits
from test_telemetry import DeviceClient, batch, heartbeat, upload_loop

FLEET = int(os.environ.get("AEGIS_BACKUP_FLEET", "40"))
TRACKED = 6  # devices whose acknowledged reports are recorded one by one
EXTRA = 10 ** 9  # the report_id a tracked device sends to the restored service


def ctl_local(data_dir, *args):
    return harness.run_tool([harness.binary("aegisctl"), "--data-dir", data_dir] + list(args), timeout=300)


def reports_in(db_path, device_id):
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    try:
        return {r[0] for r in db.execute("SELECT report_id FROM telemetry_reports WHERE device_id = ?",
                                         (device_id,))}
    finally:
        db.close()


class BackupUnderLoadTest(RolloutFixtures, SimMixin, harness.DaemonTestCase):
    tenants = ("acme",)
    config = CONFIG

    @classmethod
    def prepare(cls):
        cls.r = None
        cls.provision(FLEET)
        cls.import_devices(range(FLEET), "acme")
        cls.add_refvals(("acme",))
        first = cls.sim_run("--devices", FLEET)
        assert first["attest"]["outcomes"] == {"pass": FLEET}, first["attest"]
        # an update image in a deployment, published in the tenant's TUF repository (online keys made)
        cls.ngroups = 0
        cls.product = cls.client.api("POST", "/v1/products", {"name": "gw"})[2]["id"]
        cls.image = os.urandom(300 * 1024 + 17)
        q = {"product_id": cls.product, "component": "aegis-os", "kind": "os", "version": "3.0.0", "svn": 4,
             "hardware": "gw"}
        st, _, body = cls.client.api("POST", "/v1/images?" + urllib.parse.urlencode(q), cls.image,
                                     content_type="application/octet-stream")
        assert st == 201, body
        cls.sha = body["sha256"]
        cls.group = cls.new_group()
        cls.deploy(cls.group, [cls.sha])
        cls.keys_before = cls.client.api("GET", "/v1/ota/keys")[2]
        cls.devdir = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.devdir)
        cls.tracked = [cls.make_device("t%d" % i, None) for i in range(TRACKED)]
        cls.downloader = cls.make_device("dl", cls.group)
        cls.backup_under_load()
        cls.restore_and_start()

    @classmethod
    def make_device(cls, name, group):
        dev = Device(cls.devdir, name)
        imp = {"devices": [{"public_key": dev.pub}], "claim": True}
        if group is not None:
            imp["group_id"] = group
        st, _, body = cls.client.api("POST", "/v1/devices/import", imp)
        assert st in (200, 201), body
        tid = cls.d.tenant_ids["acme"]
        base = os.path.join(cls.d.pki_dir, "tenants", str(tid), "ca-1")
        return DeviceClient(cls.d, dev, dev.issue(base + ".crt", base + ".key", tid))

    @classmethod
    def backup_under_load(cls):
        sim = subprocess.Popen(
            [harness.binary("aegis-sim"), "run", "--dir", cls.fleet, "--server", cls.d.url(), "--cacert",
             cls.d.cacert, "--boots", "1000", "--uptime", "600", "--crash", "0.3", "--concurrency", "16",
             "--no-fsync", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stop = threading.Event()
        cls.runs = []
        for dc in cls.tracked:
            run = {"acked": set(), "attempted": [], "statuses": []}
            run["thread"] = threading.Thread(target=upload_loop, args=(dc, 1, 20, 100000, run["acked"],
                                                                      run["attempted"], stop, run["statuses"]))
            cls.runs.append(run)
        try:
            for run in cls.runs:
                run["thread"].start()
            deadline = time.monotonic() + 60
            while (sum(len(r["acked"]) for r in cls.runs) < 1000 or cls.sim_reports() < 50) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            # what was acknowledged before the backup starts must be in it
            cls.acked_before = [set(r["acked"]) for r in cls.runs]
            cls.backup = os.path.join(cls.d.tmp, "backup")
            t0 = time.monotonic()
            cls.backup_proc = ctl_local(cls.d.data_dir, "backup", cls.backup, "--json")
            cls.t_backup = time.monotonic() - t0
            n0 = sum(len(r["acked"]) for r in cls.runs)
            cls.acked_during = n0 - sum(map(len, cls.acked_before))
            deadline = time.monotonic() + 20
            while sum(len(r["acked"]) for r in cls.runs) < n0 + 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            cls.acked_after = sum(len(r["acked"]) for r in cls.runs) - n0
            cls.sim_alive = sim.poll() is None
        finally:
            stop.set()
            sim.kill()
            sim.wait(30)
            for run in cls.runs:
                run["thread"].join(60)
        print("\n[test_backup] backup under load: %.2f s, %d reports of the tracked devices acknowledged before "
              "it, %d sim reports stored" % (cls.t_backup, sum(map(len, cls.acked_before)), cls.sim_reports()),
              flush=True)

    @classmethod
    def sim_reports(cls):
        """Reports the service holds of the sim fleet (read apart from the daemon)."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(cls.d.data_dir, "aegis.db"), uri=True)
        try:
            q = "SELECT count(*) FROM telemetry_reports WHERE device_id IN (%s)" % ",".join("?" * len(cls.ids))
            return db.execute(q, cls.ids).fetchone()[0]
        finally:
            db.close()

    @classmethod
    def restore_and_start(cls):
        """A second daemon on a new data directory restored from the backup."""
        cls.r = harness.Daemon(tenants=())
        cls.r.data_dir = os.path.join(cls.r.tmp, "restored")
        cls.r.pki_dir = os.path.join(cls.r.data_dir, "pki")
        cls.r.cacert = os.path.join(cls.r.pki_dir, "root.crt")
        cls.r.tokens, cls.r.tenant_ids, cls.r.token = dict(cls.d.tokens), dict(cls.d.tenant_ids), cls.d.token
        cls.r.write_config(CONFIG)
        cls.restore_proc = ctl_local(cls.r.data_dir, "restore", cls.backup, "--json")
        if cls.restore_proc.returncode == 0:
            cls.r.start()

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.r is not None:
                cls.r.stop()
        finally:
            if cls.r is not None:
                cls.r.cleanup()
            super().tearDownClass()

    # --- the backup ---

    def test_backup_taken_while_serving(self):
        p = self.backup_proc
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["backup"], self.backup)
        self.assertGreater(out["schema_version"], 0)
        self.assertEqual(out["images"], 1)
        self.assertGreater(out["pki_files"], 5)
        self.assertTrue(self.sim_alive, "the simulated fleet ran through the backup")
        self.assertGreater(self.acked_during, 0, "reports were acknowledged while the backup ran")
        self.assertGreater(self.acked_after, 0, "uploads went on after the backup")
        for run in self.runs:
            self.assertEqual({s[0] for s in run["statuses"]}, {200}, "every upload answered 200")

    def test_backup_files_private(self):
        for root, dirs, files in os.walk(self.backup):
            self.assertEqual(stat.S_IMODE(os.stat(root).st_mode), 0o700, root)
            for f in files:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode), 0o600, f)
        with open(os.path.join(self.backup, "MANIFEST.json")) as f:
            m = json.load(f)
        paths = {e["path"] for e in m["files"]}
        tid = self.d.tenant_ids["acme"]
        for p in ("aegis.db", "pki/root.crt", "pki/root.key", "pki/server.key",
                  "pki/tenants/%d/ca-1.key" % tid, "images/%d/%s" % (tid, self.sha)):
            self.assertIn(p, paths)
        self.assertTrue(any(p.endswith("tuf-timestamp.ed25519") for p in paths), "online TUF keys")
        self.assertFalse(os.path.exists(os.path.join(self.backup, "aegis.db-wal")))

    def test_backup_holds_every_report_acknowledged_before_it(self):
        db = os.path.join(self.backup, "aegis.db")
        total = 0
        for dc, before in zip(self.tracked, self.acked_before):
            self.assertGreater(len(before), 0)
            self.assertEqual(before - reports_in(db, dc.dev.id), set(), "acknowledged before the backup, missing")
            total += len(before)
        self.assertGreaterEqual(total, 1000)
        # one snapshot: the aggregates were committed with the reports
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
        try:
            crashes = con.execute("SELECT count(*) FROM telemetry_reports WHERE type = 'crash'").fetchone()[0]
            counted = con.execute("SELECT coalesce(sum(count), 0) FROM bucket_stats").fetchone()[0]
            per_dev = con.execute("SELECT coalesce(sum(reports), 0) FROM telemetry_devices").fetchone()[0]
            stored = con.execute("SELECT count(*) FROM telemetry_reports").fetchone()[0]
        finally:
            con.close()
        self.assertGreater(crashes, 0)
        self.assertEqual(crashes, counted)
        self.assertEqual(stored, per_dev)

    # --- the restored service ---

    def test_restored_holds_the_reports(self):
        self.assertEqual(self.restore_proc.returncode, 0, self.restore_proc.stderr)
        c = self.r.client()
        for dc, before, run in zip(self.tracked, self.acked_before, self.runs):
            ids = set()
            path = "/v1/devices/%s/reports?limit=1000" % dc.dev.id
            while True:
                st, _, page = c.api("GET", path)
                self.assertEqual(st, 200, page)
                ids |= {r["report_id"] for r in page["items"]}
                if page["next_cursor"] is None:
                    break
                path = "/v1/devices/%s/reports?limit=1000&cursor=%s" % (
                    dc.dev.id, urllib.parse.quote(page["next_cursor"], safe=""))
            self.assertEqual(before - ids, set())
            sent = {i for batch_ids in run["attempted"] for i in batch_ids}
            self.assertEqual(ids - sent - {EXTRA}, set())

    def test_restored_devices_attest_and_report(self):
        self.assertTrue(self.r.running())
        p = harness.run_tool([harness.binary("aegis-sim"), "run", "--dir", self.fleet, "--server", self.r.url(),
                              "--cacert", self.r.cacert, "--devices", "10", "--fresh", "--json"], timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        s = json.loads(p.stdout)
        self.assertEqual(s["attest"]["outcomes"], {"pass": 10}, s["attest"])
        self.assertEqual(s["whoami"]["outcomes"], {"ok": 10}, s["whoami"])
        # a certificate issued before the backup still authenticates; a new report is stored
        dc = DeviceClient(self.r, self.tracked[0].dev, self.tracked[0].cert)
        try:
            st, _, body = dc.post(batch([heartbeat(EXTRA)]))
        finally:
            dc.close()
        self.assertEqual(st, 200, body)
        self.assertEqual(body["stored"], 1, body)

    def test_restored_api_and_tokens(self):
        c = self.r.client()
        st, _, t = c.api("GET", "/v1/tenant")
        self.assertEqual(st, 200, t)
        st, _, page = c.api("GET", "/v1/devices?limit=1000")
        self.assertEqual(st, 200, page)
        devices = page["items"]
        self.assertEqual(len(devices), FLEET + TRACKED + 1)
        st, _, images = c.api("GET", "/v1/images")
        self.assertEqual([i["sha256"] for i in images["items"]], [self.sha])

    def test_restored_update_keys_and_image(self):
        c = self.r.client()
        st, _, keys = c.api("GET", "/v1/ota/keys")
        self.assertEqual((st, keys), (200, self.keys_before), "the same online TUF keys")
        st, _, ts = c.api("GET", "/v1/ota/repo/timestamp.json")
        self.assertEqual(st, 200, ts)
        self.assertEqual({s["keyid"] for s in ts["signatures"]}, {keys["timestamp"]["keyid"]})
        # the image's bytes, over mutual TLS with the device's old certificate
        dc = DeviceClient(self.r, self.downloader.dev, self.downloader.cert)
        try:
            conn = dc.connect()
            conn.request("GET", "/v1/device/images/" + self.sha)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            dc.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(data, self.image)

    # --- what restore refuses ---

    def test_restore_refuses_a_running_service(self):
        for target in (self.d.data_dir, self.r.data_dir):
            for extra in ((), ("--force",)):
                p = ctl_local(target, "restore", self.backup, *extra)
                self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
                self.assertIn("open in another process", p.stderr)
        self.assertTrue(self.d.running() and self.r.running())

    def test_restore_refuses_data_without_force(self):
        target = os.path.join(self.r.tmp, "second")
        p = ctl_local(target, "restore", self.backup)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = ctl_local(target, "restore", self.backup)
        self.assertEqual(p.returncode, 4)
        self.assertIn("--force", p.stderr)
        with open(os.path.join(target, "pki", "marker"), "w") as f:
            f.write("old")
        p = ctl_local(target, "restore", self.backup, "--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        aside = [n for n in os.listdir(target) if n.startswith("pre-restore-")]
        self.assertEqual(len(aside), 1, os.listdir(target))
        self.assertTrue(os.path.exists(os.path.join(target, aside[0], "pki", "marker")))
        self.assertTrue(os.path.exists(os.path.join(target, aside[0], "aegis.db")))
        self.assertFalse(os.path.exists(os.path.join(target, "pki", "marker")))
        for root, dirs, files in os.walk(os.path.join(target, "pki")):
            self.assertEqual(stat.S_IMODE(os.stat(root).st_mode), 0o700, root)
            for f in files:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode), 0o600, f)

    def test_restore_refuses_a_damaged_backup(self):
        tid = self.d.tenant_ids["acme"]
        cases = (("pki/tenants/%d/ca-1.key" % tid, "damaged"), ("aegis.db", "damaged"),
                 ("MANIFEST.json", "not a complete backup"))
        for i, (victim, why) in enumerate(cases):
            copy = os.path.join(self.r.tmp, "damaged-%d" % i)
            shutil.copytree(self.backup, copy)
            path = os.path.join(copy, victim)
            if victim == "MANIFEST.json":
                os.unlink(path)
            else:
                with open(path, "r+b") as f:
                    f.seek(100)
                    b = f.read(1)
                    f.seek(100)
                    f.write(bytes([b[0] ^ 1]))
            target = os.path.join(self.r.tmp, "target-%d" % i)
            p = ctl_local(target, "restore", copy)
            self.assertEqual(p.returncode, 4, victim)
            self.assertIn(why, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(target, "aegis.db")), "nothing restored")
            self.assertFalse(os.path.exists(os.path.join(target, "pki")), "nothing restored")

    def test_backup_refuses_a_non_empty_directory(self):
        p = ctl_local(self.d.data_dir, "backup", self.backup)
        self.assertEqual(p.returncode, 4)
        self.assertIn("not empty", p.stderr)
