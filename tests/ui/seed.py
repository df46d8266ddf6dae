"""The browser test's large fleet (issue 17: "the views stay fast with 100,000 devices and 10,000 buckets"),
written straight into the daemon's SQLite file so that each view's first paint is timed on real-size data:

  * LARGE_DEVICES claimed devices, 2 % blocked, each attesting once a day for ATTEST_DAYS days (3 % of the
    attempts refused, with the verifier's reasons), each pass issuing a certificate of CERT_LIFETIME_S, so the
    fleet view's pass-rate series, refusal reasons and certificate expiries read ~700,000 records;
  * LARGE_BUCKETS crash buckets (a long tail: bucket k has about 2,000 / k reports) with their per-version
    counts over VERSIONS image versions, and CRASH_REPORTS crash reports plus HEARTBEATS heartbeats received
    over REPORT_DAYS days, so the bucket sparklines read the same table a real fleet's would;
  * hourly usage per component and version and the fleet's hours, so the crash-rate chart has more series
    than it draws.

Every seeded time is at least an hour old: the crash wave the test itself uploads stays the most recent.
Rows are copied from ones the daemon wrote where a column's unit or form matters (registered_by, frames).
"""

import random
import sqlite3
import time

LARGE_DEVICES = 100000
LARGE_BUCKETS = 10000
ATTEST_DAYS = 7
CERT_LIFETIME_S = 86400 + 3 * 3600  # renewed daily with 3 h of slack: some expire within hours, a refusal's expire
REFUSALS = ("log_mismatch", "unknown_measurement", "rollback", "bad_csr")
VERSIONS = ("1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.2.1", "2.0.0-rc1", "2.0.0", "2.0.1", "2.1.0")
COMPONENTS = ("aegis-app", "aegis-os")
CRASH_REPORTS = 200000
HEARTBEATS = 300000
REPORT_DAYS = 14
HOUR = 3600
DAY = 86400

NUMBERS = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1) "


def _devices(con, tenant_id, dev, now):
    """The devices, claimed ATTEST_DAYS + 1 days ago (a certificate counts only when issued after the claim),
    and a numbered list of them (temp table sd) for the other tables."""
    con.execute(NUMBERS + """
        INSERT INTO devices (id, public_key_pem, registered_by, tenant_id, group_id, blocked, created_at,
                             claimed_at, updated_at)
        SELECT lower(hex(randomblob(32))), 'seeded', t.registered_by, t.tenant_id, NULL, i % 50 = 0, ?3, ?3, ?3
        FROM n, (SELECT * FROM devices WHERE id = ?2) t""", (LARGE_DEVICES, dev, now - (ATTEST_DAYS + 1) * DAY))
    con.execute("CREATE TEMP TABLE sd (n INTEGER PRIMARY KEY, id TEXT NOT NULL)")
    con.execute("INSERT INTO sd (n, id) SELECT row_number() OVER (ORDER BY id) - 1, id FROM devices "
                "WHERE public_key_pem = 'seeded' AND tenant_id = ?", (tenant_id,))


def _attestations(con, tenant_id, now):
    """One attempt per device and day at a device-specific time of day, day by day (ids in day order, as a
    fleet's would be); one in 33 refused."""
    reasons = " ".join("WHEN %d THEN '%s'" % (i, r) for i, r in enumerate(REFUSALS))
    con.execute(NUMBERS + """
        INSERT INTO attestations (tenant_id, device_id, created_at, result, reason, measurements, cert_serial,
                                  cert_not_after)
        SELECT ?2, id, t, CASE WHEN fail THEN 'fail' ELSE 'pass' END,
               CASE WHEN fail THEN CASE (dn + di) %% 4 %s END END, '[]',
               CASE WHEN fail THEN NULL ELSE printf('%%016x%%08x', dn, di) END,
               CASE WHEN fail THEN NULL ELSE t + ?4 END
        FROM (SELECT d.n AS dn, d.id AS id, k.i AS di, ?3 - k.i * 86400 - (d.n * 7919) %% 82800 AS t,
                     (d.n * 31 + k.i * 17) %% 33 = 0 AS fail
              FROM n k, sd d
              ORDER BY k.i DESC)""" % reasons, (ATTEST_DAYS, tenant_id, now - HOUR, CERT_LIFETIME_S))
    con.execute("""UPDATE devices SET (attest_at, attest_result, attest_reason) =
        (SELECT a.created_at, a.result, a.reason FROM attestations a
         WHERE a.tenant_id = devices.tenant_id AND a.device_id = devices.id ORDER BY a.id DESC LIMIT 1)
        WHERE public_key_pem = 'seeded' AND tenant_id = ?""", (tenant_id,))


def _buckets(con, tenant_id, bkt, now):
    con.execute(NUMBERS + """
        INSERT INTO failure_buckets (tenant_id, signature, component, reason, pc, frames, first_seen)
        SELECT t.tenant_id, lower(hex(randomblob(32))), CASE WHEN i % 3 = 0 THEN 'aegis-os' ELSE 'aegis-app' END,
               'seeded_' || (i % 50), printf('0x%x', 4096 + i), t.frames, ?3
        FROM n, (SELECT * FROM failure_buckets WHERE id = ?2) t""",
                (LARGE_BUCKETS, bkt, now - REPORT_DAYS * DAY))
    con.execute("CREATE TEMP TABLE sb (n INTEGER PRIMARY KEY, id INTEGER NOT NULL)")
    con.execute("INSERT INTO sb (n, id) SELECT row_number() OVER (ORDER BY id) - 1, id FROM failure_buckets "
                "WHERE tenant_id = ? AND reason GLOB 'seeded_*'", (tenant_id,))


def _reports(con, tenant_id, now):
    """Crash reports in a long tail over the buckets (bucket k gets about 1/k of the most reported one's, each
    bucket over one to three neighbouring versions), heartbeats from every device, over REPORT_DAYS days; the
    buckets' counters and per-version counts derived from them."""
    rnd = random.Random(17)
    devs = [r[0] for r in con.execute("SELECT id FROM sd ORDER BY n")]
    bkts = list(con.execute("SELECT b.id, b.component, b.reason, b.pc FROM sb s JOIN failure_buckets b "
                            "ON b.id = s.id ORDER BY s.n"))
    span = REPORT_DAYS * DAY

    def crash(i):
        k = min(int(LARGE_BUCKETS ** rnd.random()) - 1, LARGE_BUCKETS - 1)
        b = bkts[k]
        v = VERSIONS[(k + rnd.randrange(3)) % len(VERSIONS)]
        return (tenant_id, rnd.choice(devs), 1000000 + i, "%032x" % i, i % 86400, b[1], v, b[2], b[3],
                "seeded crash %d" % i, now - HOUR - rnd.randrange(span), b[0])
    con.executemany("""INSERT INTO telemetry_reports (tenant_id, device_id, report_id, type, boot_id, uptime_s,
                           component, image_version, reason, pc, return_addresses, message, received_at, bucket_id)
                       VALUES (?, ?, ?, 'crash', ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?)""",
                    (crash(i) for i in range(CRASH_REPORTS)))
    con.execute(NUMBERS + """
        INSERT INTO telemetry_reports (tenant_id, device_id, report_id, type, boot_id, uptime_s, free_memory,
                                       period_s, images, received_at)
        SELECT ?2, d.id, 2000000 + i, 'heartbeat', printf('%032x', i), 3600, 40000, 3600,
               json_object('aegis-app', ?6), ?3 - (i * 104723) % (?4 * 86400)
        FROM n JOIN sd d ON d.n = (i * 6151) % ?5""",
                (HEARTBEATS, tenant_id, now - HOUR, REPORT_DAYS, LARGE_DEVICES, VERSIONS[-1]))
    con.execute("""INSERT INTO bucket_versions (bucket_id, image_version, count, first_seen, last_seen)
        SELECT bucket_id, image_version, count(*), min(received_at), max(received_at) FROM telemetry_reports
        WHERE tenant_id = ? AND report_id BETWEEN 1000000 AND 1999999 GROUP BY bucket_id, image_version""",
                (tenant_id,))
    con.execute("""INSERT INTO bucket_stats (bucket_id, last_seen, count, devices, devices_first_hour, last_report)
        SELECT s.id, coalesce(v.last, b.first_seen), coalesce(v.cnt, 0), coalesce(v.cnt, 0), 0, 0
        FROM sb s JOIN failure_buckets b ON b.id = s.id
        LEFT JOIN (SELECT bucket_id, sum(count) AS cnt, max(last_seen) AS last FROM bucket_versions
                   GROUP BY bucket_id) v ON v.bucket_id = s.id""")


def _usage(con, tenant_id, now):
    """Hourly device-seconds and crashes per component and version for REPORT_DAYS days (each version run by a
    share of the fleet), and the fleet's hours: the crash-rate chart has len(COMPONENTS) * len(VERSIONS)
    candidate series."""
    first = (now - REPORT_DAYS * DAY) // HOUR * HOUR
    hours = REPORT_DAYS * 24
    con.execute(NUMBERS + """
        INSERT OR REPLACE INTO telemetry_usage (tenant_id, component, hour, image_version, device_seconds, crashes)
        SELECT ?2, c.value, ?3 + h.i * 3600, v.value, (1000 + 1000 * v.key) * 3600,
               (h.i * 7 + v.key * 13) % (5 + 3 * v.key)
        FROM n h, json_each(?4) c, json_each(?5) v""",
                (hours, tenant_id, first, '["%s"]' % '","'.join(COMPONENTS), '["%s"]' % '","'.join(VERSIONS)))
    con.execute("""INSERT OR REPLACE INTO telemetry_versions (tenant_id, component, image_version, first_seen,
                                                              device_seconds, crashes)
        SELECT tenant_id, component, image_version, min(hour), sum(device_seconds), sum(crashes)
        FROM telemetry_usage WHERE tenant_id = ? GROUP BY component, image_version""", (tenant_id,))
    con.execute(NUMBERS + """
        INSERT OR REPLACE INTO telemetry_fleet (tenant_id, hour, device_seconds, crashes, crash_hours)
        SELECT ?2, ?3 + i * 3600, 90000 * 3600, 40 + i % 17, 35 + i % 13 FROM n""", (hours, tenant_id, first))


def seed_large(db_path, tenant_id):
    """Writes the large fleet for tenant_id; returns what it wrote (row counts) and how long it took."""
    t0 = time.monotonic()
    now = int(time.time())
    con = sqlite3.connect(db_path, timeout=60)
    try:
        dev = con.execute("SELECT id FROM devices WHERE tenant_id = ? LIMIT 1", (tenant_id,)).fetchone()
        bkt = con.execute("SELECT id FROM failure_buckets WHERE tenant_id = ? LIMIT 1", (tenant_id,)).fetchone()
        if dev is None or bkt is None:
            raise RuntimeError("seed_large needs a device and a bucket written by the daemon first")
        con.execute("PRAGMA cache_size = -262144")  # 256 MiB: the indexes grow in memory, written once
        steps = {}
        for name, fn, arg in (("devices", _devices, dev[0]), ("attestations", _attestations, None),
                              ("buckets", _buckets, bkt[0]), ("reports", _reports, None), ("usage", _usage, None)):
            t1 = time.monotonic()
            fn(con, tenant_id, arg, now) if arg is not None else fn(con, tenant_id, now)
            steps[name] = round(time.monotonic() - t1, 1)
        con.commit()
        # Into the database file now, as a fleet's rows would long have been: else the daemon's first reads
        # search a WAL of some 400 MB while its own checkpoint copies it, and the first view's time is that.
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = {t: con.execute("SELECT count(*) FROM %s WHERE tenant_id = ?" % t, (tenant_id,)).fetchone()[0]
                  for t in ("devices", "attestations", "failure_buckets", "telemetry_reports")}
        counts["seconds"] = round(time.monotonic() - t0, 1)
        counts["steps"] = steps
        return counts
    finally:
        con.close()
