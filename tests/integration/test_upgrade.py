"""Upgrading: a database of the previous schema, with representative data, upgraded by the current daemon.

The previous release's schema is made by the migrations of db/schema/ up to OLD (no committed binary
database): its tables are created by those files alone. The data comes from a real service run (an aegis-sim
fleet of two tenants attesting and reporting crashes over several boots, a product, a group, an update image
published in the tenant's TUF repository and deployed, a blocked device, an extra token), copied column by
column into the old tables, so it is exactly what such a database holds. The daemon is stopped, the old
database put in place, and the current aegisd started on it: it applies the newer migrations, every object is
as it was through the API, and the service works: devices attest and report, the features of the newer
migrations (device tags, dashboard sessions) work on the old rows, and `aegisctl migrate` finds nothing to do.
"""

import glob
import json
import os
import re
import sqlite3
import time
import urllib.parse

import harness
from test_image_download import RolloutFixtures
from test_sim import SimMixin
from test_sim_telemetry import CONFIG  # every device from 127.0.0.1: no per-address limits

FLEET = 20
OTHER = 5  # the last OTHER devices belong to globex
DB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "db")
SCHEMA_DIR = os.path.join(DB_DIR, "schema")


def previous_release_schema():
    """The schema version of the last release listed in db/RELEASES ("RELEASE VERSION" lines, oldest first)
    whose schema is older than the tree's (the tree being that release itself right after it was cut)."""
    newest = max(int(re.match(r"^(\d+)_", n).group(1)) for n in os.listdir(SCHEMA_DIR) if n.endswith(".sql"))
    with open(os.path.join(DB_DIR, "RELEASES")) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
    if not rows or any(len(r) != 2 or not r[1].isdigit() for r in rows):
        raise RuntimeError("db/RELEASES: lines must be 'RELEASE SCHEMA_VERSION'")
    older = [int(r[1]) for r in rows if int(r[1]) < newest]
    if not older:
        raise RuntimeError("db/RELEASES lists no release older than schema %d" % newest)
    return older[-1]


# The schema of the previous release (db/RELEASES; 13 before issue 14's lifecycle operations and the dashboard's
# sessions).
OLD = previous_release_schema()


def migrations():
    """[(version, name, path)] of db/schema, in order."""
    out = []
    for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.sql"))):
        name = os.path.basename(path)[:-4]
        out.append((int(re.match(r"^(\d+)_", name).group(1)), name, path))
    return out


def build_old_database(path, current):
    """A database at schema OLD made by the migration files alone, holding current's rows (the columns the
    old tables have). Returns the tables of current that the old schema has not."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "applied_at INTEGER NOT NULL)")
        for version, name, sql in migrations():
            if version > OLD:
                break
            with open(sql) as f:
                db.executescript("BEGIN;" + f.read() + ";COMMIT;")
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, 1700000000)", (version, name))
        db.execute("ATTACH DATABASE ? AS cur", ("file:%s?mode=ro" % current,))
        old = [r[0] for r in db.execute("SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name NOT IN "
                                        "('sqlite_sequence', 'schema_migrations')")]
        new = [r[0] for r in db.execute("SELECT name FROM cur.sqlite_schema WHERE type = 'table' AND name NOT IN "
                                        "('sqlite_sequence', 'schema_migrations')")]
        db.execute("BEGIN")
        for t in old:
            cols = ", ".join('"%s"' % r[1] for r in db.execute("SELECT * FROM main.pragma_table_info(?)", (t,)))
            db.execute('INSERT INTO main."%s" (%s) SELECT %s FROM cur."%s"' % (t, cols, cols, t))
        db.execute("INSERT INTO main.sqlite_sequence SELECT * FROM cur.sqlite_sequence WHERE name IN (%s)"
                   % ",".join("?" * len(old)), old)
        db.execute("COMMIT")
        db.execute("DETACH DATABASE cur")
        return sorted(set(new) - set(old))
    finally:
        db.close()


class UpgradeTest(RolloutFixtures, SimMixin, harness.DaemonTestCase):
    tenants = ("acme", "globex")
    config = CONFIG

    @classmethod
    def prepare(cls):
        cls.provision(FLEET)
        cls.import_devices(range(FLEET - OTHER), "acme")
        cls.import_devices(range(FLEET - OTHER, FLEET), "globex")
        cls.add_refvals(("acme", "globex"))
        s = cls.sim_run("--boots", 3, "--crash", "0.5", "--drain")
        assert s["attest"]["outcomes"].get("pass", 0) > 0, s["attest"]
        cls.ngroups = 0
        cls.product = cls.client.api("POST", "/v1/products", {"name": "gw", "description": "gateways"})[2]["id"]
        q = {"product_id": cls.product, "component": "aegis-os", "kind": "os", "version": "3.0.0", "svn": 4,
             "hardware": "gw"}
        st, _, body = cls.client.api("POST", "/v1/images?" + urllib.parse.urlencode(q), os.urandom(4096),
                                     content_type="application/octet-stream")
        assert st == 201, body
        sha = body["sha256"]
        cls.group = cls.new_group()
        st, _, body = cls.client.api("PATCH", "/v1/devices/" + cls.ids[0], {"group_id": cls.group})
        assert st == 200, body
        dep = cls.deploy(cls.group, [sha])
        # soak 0, one wave: the rollout step completes it within seconds; the views need it settled
        deadline = time.monotonic() + 30
        while cls.client.api("GET", "/v1/deployments/%d" % dep["id"])[2]["state"] != "completed":
            assert time.monotonic() < deadline, "the deployment did not complete"
            time.sleep(0.1)
        st, _, body = cls.client.api("POST", "/v1/devices/%s/block" % cls.ids[1])
        assert st == 200, body
        st, _, body = cls.client.api("POST", "/v1/tokens", {"name": "ci", "role": "operator"})
        assert st == 201, body
        cls.before = cls.views()
        # the previous release's database, put in place of the current one
        cls.d.stop()
        db = os.path.join(cls.d.data_dir, "aegis.db")
        old = os.path.join(cls.d.tmp, "old.db")
        cls.not_in_old = build_old_database(old, db)
        for suffix in ("", "-wal", "-shm", "-devgen"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        os.rename(old, db)
        os.chmod(db, 0o600)
        cls.old_version = sqlite3.connect(db).execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        cls.d.start()

    @classmethod
    def views(cls):
        """What the API says of everything, per tenant: compared before and after the upgrade."""
        out = {}
        for tenant in cls.tenants:
            c = cls.d.client(token=cls.d.tokens[tenant])
            v = {}
            for path in ("/v1/tenant", "/v1/devices?limit=1000", "/v1/products", "/v1/device-groups",
                         "/v1/images", "/v1/deployments", "/v1/failures/buckets?limit=1000",
                         "/v1/attestations?limit=1000", "/v1/reference-values", "/v1/ota/keys",
                         "/v1/ota/status", "/v1/tokens", "/v1/audit?limit=1000"):
                st, _, body = c.api("GET", path)
                assert st == 200, (path, st, body)
                v[path] = body
            for dev in v["/v1/devices?limit=1000"]["items"]:
                st, _, body = c.api("GET", "/v1/devices/%s/reports?limit=1000" % dev["id"])
                assert st == 200, body
                v["reports " + dev["id"]] = body
            for t in v["/v1/tokens"]["items"]:
                t.pop("last_used_at", None)  # a column of migration 14: not in the old database
            out[tenant] = v
        return out

    def test_migrated_on_start(self):
        self.assertEqual(self.old_version, OLD)
        newest = migrations()[-1][0]
        self.assertGreater(newest, OLD)
        log = self.d.log()
        for version, name, _ in migrations():
            if version > OLD:
                self.assertIn("msg=\"store: migration applied\" version=%d name=%s" % (version, name), log)
        self.assertRegex(log, r"database ready\" .*schema_version=%d migrations_applied=%d" % (newest, newest - OLD))
        p = self.d.ctl_local("migrate", "--json")
        self.assertEqual(json.loads(p.stdout)["applied"], 0)
        self.assertEqual(json.loads(p.stdout)["version"], newest)

    def test_old_schema_is_the_old_migrations(self):
        # the tables the old schema lacks are those of the newer migrations (device_tags, sessions)
        later = ""
        for version, _, path in migrations():
            if version > OLD:
                with open(path) as f:
                    later += f.read()
        for t in self.not_in_old:
            self.assertRegex(later, r"CREATE TABLE %s \(" % t)

    def test_data_intact(self):
        after = self.views()
        for tenant in self.tenants:
            for key in self.before[tenant]:
                if key == "/v1/audit?limit=1000":
                    continue  # the upgrade audits nothing, but the views themselves may have; below
                self.assertEqual(after[tenant][key], self.before[tenant][key], "%s %s" % (tenant, key))
            old_audit = self.before[tenant]["/v1/audit?limit=1000"]["items"]
            new_audit = after[tenant]["/v1/audit?limit=1000"]["items"]
            self.assertEqual([a for a in new_audit if a["id"] <= max(x["id"] for x in old_audit)], old_audit)
        acme = self.before["acme"]
        self.assertEqual(len(acme["/v1/devices?limit=1000"]["items"]), FLEET - OTHER)
        self.assertGreater(len(acme["/v1/failures/buckets?limit=1000"]["items"]), 0)
        self.assertGreater(len(acme["/v1/attestations?limit=1000"]["items"]), FLEET - OTHER)
        self.assertEqual(len(acme["/v1/deployments"]["items"]), 1)

    def test_service_works_after_upgrade(self):
        s = self.sim_run("--fresh", "--boots", 1, "--crash", "1.0")
        outcomes = s["attest"]["outcomes"]
        self.assertEqual(outcomes, {"pass": FLEET - 1, "blocked": 1}, s["attest"])  # ids[1] is blocked
        self.assertGreater(s["telemetry"]["reports_acked"], 0, s["telemetry"])
        # migration 14's device tags on a device of the old database
        st, _, body = self.api("PATCH", "/v1/devices/" + self.ids[2], {"tags": {"site": "lab"}})
        self.assertEqual((st, body.get("tags")), (200, {"site": "lab"}), body)
        # migration 15's dashboard sessions with a token of the old database
        st, hdrs, body = self.api("POST", "/v1/session", {"token": self.d.token}, token=None)
        self.assertEqual(st, 201, body)
        self.assertEqual(body["tenant_name"], "acme")
