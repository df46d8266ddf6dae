"""Failure reporting (docs/telemetry.md, docs/api.md "Failure reporting") against the real daemon.

Devices get certificates from the openssl CLI and the tenant's issuing CA key in the data dir, as in
test_mtls.py, and upload with http.client over mutual TLS. Covered: per-report validation (one bad report does
not stop the others), dedup under retries, size caps, 429 and 503 back-off with Retry-After, tenant isolation
of buckets, reports and export, the manufacturer API and aegisctl, a streamed CSV export of 100,000 reports
with bounded daemon memory, and durability across SIGKILL (every acknowledged report is stored exactly once).
"""

import csv
import http.client
import io
import json
import os
import re
import signal
import sqlite3
import ssl
import threading
import time
import unittest

import harness
from harness import DaemonTestCase, Daemon
from test_mtls import Device

BOOT = "0123456789abcdef0123456789abcdef"
BOOT2 = "fedcba9876543210fedcba9876543210"


def crash(rid, component="aegis-app", version="1.0.0", reason="hardfault", pc="0x0800abcd",
          ra=("0x08001000", "0x08002000", "0x08003000"), message=None, **extra):
    r = {"type": "crash", "report_id": rid, "boot_id": BOOT, "uptime_s": 100 + rid, "component": component,
         "image_version": version, "reason": reason, "pc": pc, "lr": "0x08000101",
         "return_addresses": list(ra), "fault_registers": {"cfsr": "0x00008200", "hfsr": "0x40000000"},
         "free_memory": 2048}
    if message is not None:
        r["message"] = message
    r.update(extra)
    return r


def heartbeat(rid, period=3600, images=None):
    return {"type": "heartbeat", "report_id": rid, "boot_id": BOOT, "uptime_s": period, "period_s": period,
            "free_memory": 4096, "images": images or {"aegis-app": "1.0.0", "aegis-os": "2.1.0"},
            "counters": {"wifi_reconnects": 3}}


def reboot(rid, reason="crash"):
    return {"type": "reboot", "report_id": rid, "boot_id": BOOT2, "uptime_s": 0, "reason": reason,
            "previous_boot_id": BOOT}


def batch(reports, dropped=0):
    return {"version": 1, "dropped": dropped, "reports": reports}


class DeviceClient:
    """A device's mutual-TLS keep-alive connection to the daemon."""

    def __init__(self, daemon, dev, cert):
        self.daemon = daemon
        self.dev = dev
        self.cert = cert
        self.conn = None

    def connect(self):
        if self.conn is None:
            ctx = ssl.create_default_context(cafile=self.daemon.cacert)
            ctx.load_cert_chain(self.cert, self.dev.key)
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.daemon.port, context=ctx, timeout=60)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, body, raw=None):
        """POSTs a batch (dict) or raw bytes; returns (status, headers, parsed JSON or None)."""
        data = raw if raw is not None else json.dumps(body).encode()
        for attempt in (1, 2):
            conn = self.connect()
            reused = conn.sock is not None
            try:
                conn.request("POST", "/v1/device/telemetry", body=data,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read()
                return r.status, r.headers, json.loads(text) if text else None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2 or not reused:
                    raise
            except Exception:
                self.close()
                raise


class TelemetryBase(DaemonTestCase):
    tenants = ("acme", "other")
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000}

    @classmethod
    def prepare(cls):
        cls.devdir = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.devdir, exist_ok=True)
        cls.ndev = 0

    @classmethod
    def make_device(cls, tenant="acme", group=None):
        """Imports and claims a new device into tenant and returns a DeviceClient with a fresh certificate."""
        cls.ndev += 1
        dev = Device(cls.devdir, "dev%d" % cls.ndev)
        body = {"devices": [{"public_key": dev.pub}], "claim": True}
        if group is not None:
            body["group_id"] = group
        st, _, out = cls.client.api("POST", "/v1/devices/import", body, token=cls.d.tokens[tenant])
        if st != 201 and st != 200:
            raise RuntimeError("import failed: %d %r" % (st, out))
        tid = cls.d.tenant_ids[tenant]
        base = os.path.join(cls.d.pki_dir, "tenants", str(tid), "ca-1")
        cert = dev.issue(base + ".crt", base + ".key", tid)
        c = DeviceClient(cls.d, dev, cert)
        return c

    def reports_of(self, dev, tenant="acme"):
        return self.list_all("/v1/devices/%s/reports" % dev.dev.id, token=self.token_of(tenant))


class IngestTest(TelemetryBase):
    def test_batch_with_one_bad_report_stores_the_others(self):
        dc = self.make_device()
        bad = crash(3, pc="0xZZ")
        st, _, body = dc.post(batch([crash(1), heartbeat(2), bad, reboot(4), {"type": "nope", "report_id": 5}]))
        self.assertEqual(st, 200, body)
        self.assertEqual((body["stored"], body["duplicates"], body["rejected"]), (3, 0, 2), body)
        res = body["results"]
        self.assertEqual([r["status"] for r in res], ["stored", "stored", "rejected", "stored", "rejected"])
        self.assertEqual(res[2]["index"], 2)
        self.assertEqual(res[2]["report_id"], 3)
        self.assertEqual(res[2]["error"], "invalid_report")
        self.assertIn("pc", res[2]["message"])
        stored = self.reports_of(dc)
        self.assertEqual(sorted(r["report_id"] for r in stored), [1, 2, 4])
        self.assertEqual([r["report_id"] for r in stored], [4, 2, 1], "newest first")
        c = [r for r in stored if r["type"] == "crash"][0]
        self.assertEqual(c["pc"], "0x800abcd", "addresses are normalised")
        self.assertEqual(c["fault_registers"], {"cfsr": "0x8200", "hfsr": "0x40000000"})
        self.assertIsInstance(c["bucket_id"], int)
        h = [r for r in stored if r["type"] == "heartbeat"][0]
        self.assertEqual(h["images"], {"aegis-app": "1.0.0", "aegis-os": "2.1.0"})
        self.assertEqual(h["period_s"], 3600)

    def test_every_field_is_checked(self):
        dc = self.make_device()
        cases = [
            crash(1, component="App"), crash(2, version="1 0"), crash(3, reason="Hard"),
            crash(4, pc="0x"), crash(5, pc="0x" + "1" * 17), crash(6, ra=["0x1"] * 9),
            crash(7, fault_registers={"r" * 17: "0x1"}), crash(8, free_memory=2 ** 32),
            crash(9, message="x" * 257), crash(10, extra_field=1), dict(crash(11), boot_id="A" * 32),
            dict(crash(12), uptime_s=-1), dict(crash(13), report_id=2 ** 53), dict(crash(14), report_id=1.5),
            dict(heartbeat(15), period_s=0), dict(heartbeat(16), images={}),
            dict(heartbeat(17), counters={"c%d" % i: 1 for i in range(17)}),
            dict(reboot(18), reason="meteor"), dict(reboot(19), previous_boot_id="xyz"),
            "not an object", crash(20, fault_registers=[]),
        ]
        st, _, body = dc.post(batch(cases))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["rejected"], len(cases), body)
        self.assertEqual(body["stored"], 0)
        # a report without a valid report_id has none in its result
        self.assertNotIn("report_id", body["results"][13])
        self.assertNotIn("report_id", body["results"][19])

    def test_dropped_counted_once_when_every_report_is_rejected(self):
        dc = self.make_device()
        bad = batch([crash(1, pc="0xZZ"), crash(2, component="App")], dropped=5)
        for _ in range(3):  # the answer was lost twice: the same batch again
            st, _, body = dc.post(bad)
            self.assertEqual(st, 200, body)
            self.assertEqual(body["rejected"], 2, body)
        self.assertEqual(dc.post(batch([crash(3)], dropped=2))[0], 200)
        st, _, body = self.api("GET", "/v1/devices/%s/reports" % dc.dev.id)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["summary"]["dropped"], 7, body["summary"])
        self.assertEqual(body["summary"]["reports"], 1)

    def test_crash_running_time(self):
        dc = self.make_device()
        images = {"aegis-app": "9.0.0", "aegis-os": "2.1.0"}
        st, _, body = dc.post(batch([
            crash(1, version="9.0.0", period_s=1800, images=images),
            crash(2, version="9.0.0", period_s=1800),  # a period needs what ran
            crash(3, version="9.0.0", images=images),  # and the reverse
            crash(4, version="9.0.0", period_s=0, images=images),
            crash(5, version="9.0.0", period_s=1800, images={}),
        ]))
        self.assertEqual(st, 200, body)
        self.assertEqual([r["status"] for r in body["results"]], ["stored"] + ["rejected"] * 4, body)
        got = [r for r in self.reports_of(dc) if r["report_id"] == 1][0]
        self.assertEqual((got["period_s"], got["images"]), (1800, images))
        st, _, rates = self.api("GET", "/v1/failures/crash-rates?component=aegis-app")
        v = [x for x in rates["versions"] if x["image_version"] == "9.0.0"][0]
        self.assertEqual((v["crashes"], v["device_hours"]), (1, 0.5), v)
        self.assertEqual(v["crash_rate"], 2.0)

    def test_cli_shows_device_text_inert(self):
        """A device's message reaches the terminal without escape sequences or bidirectional overrides."""
        dc = self.make_device()
        nasty = "x\u009b31m\u202eevil\u2066y\u001b[2J\u2028z"
        st, _, body = dc.post(batch([crash(1, pc="0x7777", message=nasty)]))
        self.assertEqual(st, 200, body)
        p = self.d.ctl("failures", "device", dc.dev.id)
        self.assertEqual(p.returncode, 0, p.stderr)
        for bad in ("\u009b", "\u202e", "\u2066", "\u001b", "\u2028"):
            self.assertNotIn(bad, p.stdout)
        self.assertIn("x?31m?evil?y?[2J?z", p.stdout)

    def test_unknown_multibyte_field_is_a_per_report_error(self):
        # the quoted name is cut to a length limit: never inside a character, which would make the answer
        # invalid JSON (it was a 500 for the whole upload, sent again forever)
        dc = self.make_device()
        for key in ("a" + "\u00e9" * 40, "\U0001F600" * 20, "ab" + "\u20ac" * 30):
            st, _, body = dc.post(batch([crash(1), dict(crash(2), **{key: 1})]))
            self.assertEqual(st, 200, body)
            self.assertEqual([r["status"] for r in body["results"]][1], "rejected", body)
            self.assertIn("unknown field", body["results"][1]["message"])
        st, _, body = self.api("POST", "/v1/products", {"name": "p-utf8", "\u00e9" * 60: 1})
        self.assertEqual(st, 400, body)
        self.assertEqual(body["error"], "validation_failed")
        self.assertIn("unknown field", body["message"])

    def test_free_text_is_data(self):
        dc = self.make_device()
        msg = "'; DROP TABLE telemetry_reports; --\n<script>\"x\",\t\u00e9\U0001F600\u001b[31m"
        st, _, body = dc.post(batch([crash(1, message=msg), crash(2, message="=cmd|' /C calc'!A0")]))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["stored"], 2)
        got = {r["report_id"]: r["message"] for r in self.reports_of(dc)}
        self.assertEqual(got[1], msg, "the message comes back byte for byte")

    def test_dedup_under_retries(self):
        dc = self.make_device()
        b = batch([crash(i) for i in range(1, 6)] + [heartbeat(6)], dropped=4)
        first = dc.post(b)
        self.assertEqual(first[0], 200, first[2])
        self.assertEqual(first[2]["stored"], 6)
        for _ in range(2):
            st, _, body = dc.post(b)
            self.assertEqual(st, 200, body)
            self.assertEqual((body["stored"], body["duplicates"]), (0, 6), body)
            self.assertTrue(all(r["status"] == "duplicate" for r in body["results"]))
        # a duplicate inside one batch is stored once too
        st, _, body = dc.post(batch([crash(7), crash(7)]))
        self.assertEqual([r["status"] for r in body["results"]], ["stored", "duplicate"])
        page = self.assertOk(self.api("GET", "/v1/devices/%s/reports" % dc.dev.id))
        ids = [r["report_id"] for r in self.reports_of(dc)]
        self.assertEqual(sorted(ids), [1, 2, 3, 4, 5, 6, 7], "each report stored exactly once")
        self.assertEqual(page["summary"]["reports"], 7)
        self.assertEqual(page["summary"]["dropped"], 4, "a retry (only duplicates) does not count dropped again")
        # the bucket counted the crashes once
        buckets = self.list_all("/v1/failures/buckets?component=aegis-app")
        mine = self.assertOk(self.api("GET", "/v1/failures/buckets/%d" % self.reports_of(dc)[-1]["bucket_id"]))
        self.assertGreaterEqual(mine["count"], 6)
        self.assertTrue(buckets)

    def test_batch_limits(self):
        dc = self.make_device()
        st, _, body = dc.post(batch([heartbeat(i) for i in range(1, 102)]))
        self.assertEqual(st, 400, body)
        self.assertEqual(body["error"], "invalid_batch")
        for bad in ({"version": 2, "dropped": 0, "reports": [heartbeat(1)]},
                    {"version": 1, "dropped": 0, "reports": []},
                    {"version": 1, "dropped": -1, "reports": [heartbeat(1)]},
                    {"version": 1, "reports": [heartbeat(1)]},
                    {"version": 1, "dropped": 0, "reports": [heartbeat(1)], "extra": 1}):
            st, _, body = dc.post(bad)
            self.assertEqual(st, 400, (bad, body))
            self.assertEqual(body["error"], "invalid_batch")
        # just under 256 KiB is taken; above is 413 (answered from Content-Length, without reading the body, to a
        # client that waits for "100 Continue"; one that sends the body gets the 413 after it, docs/api.md)
        big = batch([crash(1000 + i, message="m" * 256) for i in range(1, 101)])
        raw = json.dumps(big).encode()
        raw = raw[:-1] + b" " * (256 * 1024 - len(raw)) + b"}"
        self.assertEqual(len(raw), 256 * 1024)
        st, _, body = dc.post(None, raw=raw)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["stored"], 100)
        conn = dc.connect()
        conn.putrequest("POST", "/v1/device/telemetry")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(256 * 1024 + 1))
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        self.assertEqual(resp.status, 413, data)
        self.assertEqual(json.loads(data)["error"], "payload_too_large")
        dc.close()
        st, _, body = dc.post(None, raw=b"{not json")
        self.assertEqual(st, 400)
        self.assertEqual(body["error"], "invalid_json")

    def test_needs_a_device_certificate(self):
        st, _, body = self.api("POST", "/v1/device/telemetry", batch([heartbeat(1)]))
        self.assertEqual(st, 401, body)

    def ingest_counters(self):
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        return {k: int(v) for k, v in re.findall(r"^aegis_ingest_(\w+_total) (\d+)$", text, re.M)}

    def test_metrics_count_reports(self):
        dc = self.make_device()
        before = self.ingest_counters()
        dc.post(batch([crash(1), crash(2), crash(3, pc="bad")]))
        st, _, raw = self.client.request("GET", "/metrics", token=None)
        text = raw.decode()
        self.assertRegex(text, r'aegis_telemetry_reports_total\{status="stored"\} [1-9]')
        self.assertRegex(text, r'aegis_telemetry_reports_total\{status="rejected"\} [1-9]')
        self.assertIn('aegis_failure_flags_total{kind="new_bucket"}', text)
        # one upload is one group transaction of its two valid reports, made durable by one flush
        after = self.ingest_counters()
        self.assertEqual(after["group_commits_total"] - before["group_commits_total"], 1)
        self.assertEqual(after["group_reports_total"] - before["group_reports_total"], 2)
        self.assertEqual(after["flushes_total"] - before["flushes_total"], 1)


class RateLimitTest(TelemetryBase):
    config = {"telemetry_rate": 1, "telemetry_burst": 2}

    def test_429_with_retry_after_per_device(self):
        dc, other = self.make_device(), self.make_device()
        self.assertEqual(dc.post(batch([heartbeat(1)]))[0], 200)
        self.assertEqual(dc.post(batch([heartbeat(2)]))[0], 200)
        st, hdrs, body = dc.post(batch([heartbeat(3)]))
        self.assertEqual(st, 429, body)
        self.assertEqual(body["error"], "rate_limited")
        retry = int(hdrs["Retry-After"])
        self.assertGreaterEqual(retry, 1)
        self.assertEqual(other.post(batch([heartbeat(1)]))[0], 200, "another device has its own bucket")
        self.assertEqual(sorted(r["report_id"] for r in self.reports_of(dc)), [1, 2], "nothing stored on 429")
        time.sleep(retry)
        st, _, body = dc.post(batch([heartbeat(3)]))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["stored"], 1)


def upload_loop(dc, first_id, per_batch, nbatches, acked, attempted, stop, statuses):
    """Uploads nbatches batches of crash and heartbeat reports with ids from first_id, recording the ids of
    every batch sent (attempted) and of every report acknowledged (acked), until stop is set or the
    connection fails."""
    rid = first_id
    for _ in range(nbatches):
        if stop.is_set():
            return
        reports = [crash(rid + i, pc="0x%x" % (0x8000 + (rid + i) % 7)) if (rid + i) % 3 else heartbeat(rid + i)
                   for i in range(per_batch)]
        attempted.append([r["report_id"] for r in reports])
        try:
            st, hdrs, body = dc.post(batch(reports))
        except (OSError, http.client.HTTPException):
            return
        statuses.append((st, hdrs.get("Retry-After"), body))
        if st == 200:
            for r in body["results"]:
                if r["status"] in ("stored", "duplicate"):
                    acked.add(r["report_id"])
        rid += per_batch


def start_uploads(devs, first_id, per_batch):
    """Starts upload_loop for every device (its connection closed first); returns (stop event, runs)."""
    stop = threading.Event()
    runs = []
    for dc in devs:
        dc.close()
        run = {"acked": set(), "attempted": [], "statuses": []}
        run["thread"] = threading.Thread(target=upload_loop, args=(dc, first_id, per_batch, 100000, run["acked"],
                                                                  run["attempted"], stop, run["statuses"]))
        runs.append(run)
    for run in runs:
        run["thread"].start()
    return stop, runs


def sigterm_during_uploads(test, runs, stop, enough):
    """Once the runs have enough (runs -> count), SIGTERMs the daemon; checks its exit (status 0, no sanitizer
    report), that every upload was answered or refused, and after a restart that every acknowledged report is
    stored."""
    deadline = time.monotonic() + 20
    while not enough(runs) and time.monotonic() < deadline:
        time.sleep(0.02)
    test.d.signal(signal.SIGTERM)
    rc = test.d.wait()
    stop.set()
    for run in runs:
        run["thread"].join(60)
    test.d.check_exit(rc)
    statuses = [s[0] for run in runs for s in run["statuses"]]
    test.assertTrue(all(st in (200, 503) for st in statuses),
                    "a request in flight at SIGTERM is answered (or refused), never dropped: %r" % sorted(set(statuses)))
    test.d.start()
    test.d.close_clients()
    return rc


class OverloadTest(TelemetryBase):
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "ingest_queue_max": 150}

    def test_503_when_the_writer_is_behind(self):
        devs = [self.make_device() for _ in range(12)]
        stop = threading.Event()
        runs = []
        for dc in devs:
            run = {"acked": set(), "attempted": [], "statuses": []}
            t = threading.Thread(target=upload_loop, args=(dc, 1, 100, 6, run["acked"], run["attempted"], stop,
                                                          run["statuses"]))
            run["thread"] = t
            runs.append(run)
        for run in runs:
            run["thread"].start()
        for run in runs:
            run["thread"].join(120)
        over = [s for run in runs for s in run["statuses"] if s[0] == 503]
        others = [s[0] for run in runs for s in run["statuses"] if s[0] != 503]
        self.assertTrue(over, "no 503 with ingest_queue_max = 150 and 12 devices sending 100 reports at once")
        for st, retry, body in over:
            self.assertEqual(body["error"], "overloaded")
            self.assertGreaterEqual(int(retry), 1)
        self.assertEqual(set(others), {200})
        for dc, run in zip(devs, runs):
            stored = [r["report_id"] for r in self.reports_of(dc)]
            self.assertEqual(len(stored), len(set(stored)))
            self.assertEqual(set(stored), run["acked"], "stored = acknowledged (nothing stored on 503)")
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        self.assertIn("aegis_ingest_in_flight_reports 0", text)


class DurabilityTest(TelemetryBase):
    def test_sigkill_keeps_every_acknowledged_report_once(self):
        devs = [self.make_device() for _ in range(8)]
        stop = threading.Event()
        runs = []
        for dc in devs:
            run = {"acked": set(), "attempted": [], "statuses": []}
            run["thread"] = threading.Thread(target=upload_loop, args=(dc, 1, 20, 100000, run["acked"],
                                                                      run["attempted"], stop, run["statuses"]))
            runs.append(run)
        for run in runs:
            run["thread"].start()
        deadline = time.monotonic() + 20
        while sum(len(r["acked"]) for r in runs) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait(10)
        stop.set()
        for run in runs:
            run["thread"].join(60)
        self.d.kill()
        acked_total = sum(len(r["acked"]) for r in runs)
        self.assertGreater(acked_total, 0)
        # Restart on the same data directory: every acknowledged report is there, once.
        self.d.start()
        self.d.close_clients()
        for dc in devs:
            dc.close()
        db = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"))
        try:
            dups = db.execute("SELECT count(*) FROM (SELECT 1 FROM telemetry_reports GROUP BY device_id, "
                              "report_id HAVING count(*) > 1)").fetchone()[0]
            self.assertEqual(dups, 0)
            crashes = db.execute("SELECT count(*) FROM telemetry_reports WHERE type = 'crash'").fetchone()[0]
            counted = db.execute("SELECT coalesce(sum(count), 0) FROM bucket_stats").fetchone()[0]
            self.assertEqual(crashes, counted, "bucket counts and reports were committed together")
        finally:
            db.close()
        for dc, run in zip(devs, runs):
            stored = [r["report_id"] for r in self.reports_of(dc)]
            self.assertEqual(len(stored), len(set(stored)))
            missing = run["acked"] - set(stored)
            self.assertEqual(missing, set(), "acknowledged reports lost by SIGKILL")
        # Sending the unacknowledged batches again stores them (or finds them stored): all sent = all stored.
        for dc, run in zip(devs, runs):
            sent = set()
            for ids in run["attempted"]:
                sent.update(ids)
                if set(ids) <= run["acked"]:
                    continue
                reports = [crash(i, pc="0x%x" % (0x8000 + i % 7)) if i % 3 else heartbeat(i) for i in ids]
                st, _, body = dc.post(batch(reports))
                self.assertEqual(st, 200, body)
                self.assertEqual(body["rejected"], 0)
            stored = [r["report_id"] for r in self.reports_of(dc)]
            self.assertEqual(sorted(stored), sorted(sent))
        print("\n    durability: %d reports acknowledged before SIGKILL, all found after restart" % acked_total)

    def test_sigterm_answers_what_is_queued_and_exits_0(self):
        devs = [self.make_device() for _ in range(6)]
        stop, runs = start_uploads(devs, 1, 50)
        sigterm_during_uploads(self, runs, stop, lambda rs: sum(len(r["acked"]) for r in rs) >= 1000)
        for dc, run in zip(devs, runs):
            dc.close()
            stored = set(r["report_id"] for r in self.reports_of(dc))
            self.assertEqual(run["acked"] - stored, set())


class ShutdownRaceTest(TelemetryBase):
    """SIGTERM with drain_timeout = 0 while uploads are in flight: the daemon stops its telemetry writer (answers
    what is queued, refuses the rest) before the HTTP layer, and frees it only after, so an upload that is still
    dispatched during the teardown meets a refusal, never freed memory (under ASan a use-after-free is a report in
    the log; without it, a crash or a hang). The window of the old race (a handler read the writer's pointer, the
    teardown freed the writer before the handler locked it) is a few instructions wide, so the daemon runs with
    tests/tools/preload/race_delay.c preloaded: its HTTP threads sleep before they lock a hand-off queue (the
    writer's), and sleep on after the HTTP layer is quiesced, while the teardown runs at full speed. Without that
    shim the old code (ffab4ed) passed this test; with it, ASan reports the use-after-free in the first round of
    every run (RACE_DELAY_MS=0 RACE_DELAY_STOP_MS=0 in the environment turns the delays off).
    Several rounds of many devices uploading small batches back to back, bounded in rounds and time."""
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "drain_timeout": 0}
    ROUNDS = 4
    DEVICES = 16
    SHIM = "tests/tools/race_delay.so"

    @classmethod
    def daemon_env(cls):
        asan = os.environ.get("ASAN_OPTIONS")
        # The shim comes before the sanitizer runtime in the link order, which ASan refuses unless told.
        return {"LD_PRELOAD": harness.binary(cls.SHIM),
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}

    def test_sigterm_with_zero_drain_during_uploads(self):
        devs = [self.make_device() for _ in range(self.DEVICES)]
        started = time.monotonic()
        for rnd in range(self.ROUNDS):
            if rnd > 0 and time.monotonic() - started > 90:
                break
            with open("/proc/%d/maps" % self.d.proc.pid) as f:
                self.assertIn(os.path.basename(self.SHIM), f.read(), "the daemon runs without the race shim")
            stop, runs = start_uploads(devs, 1 + rnd * 1000000, 5)
            sigterm_during_uploads(self, runs, stop, lambda rs: sum(len(r["statuses"]) for r in rs) >= 200)
            stopped_log = harness.read_text(os.path.join(self.d.tmp, "aegisd.%d.stderr" % (self.d.starts - 1)))
            self.assertIn("race_delay: delaying", stopped_log, "the shim delayed no upload: the test tests nothing")
            for dc, run in zip(devs, runs):
                dc.close()
                stored = set(r["report_id"] for r in self.reports_of(dc))
                self.assertEqual(run["acked"] - stored, set(), "an acknowledged report was lost")


def sanitized(pid):
    """True when the process runs with AddressSanitizer (its runtime is mapped)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def vm_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


class ApiTest(TelemetryBase):
    """Buckets, reports, crash rates, flags, export and the CLI over a small fleet of two tenants."""

    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "flag_new_bucket_devices": 2,
              "flag_min_device_hours": 1, "flag_rate_factor_pct": 200}

    @classmethod
    def prepare(cls):
        super().prepare()
        tok = cls.d.tokens["acme"]
        st, _, p = cls.client.api("POST", "/v1/products", {"name": "sensor"}, token=tok)
        st, _, g = cls.client.api("POST", "/v1/device-groups", {"name": "beta", "product_id": p["id"]}, token=tok)
        cls.product, cls.group = p["id"], g["id"]
        cls.a1 = cls.make_device()
        cls.a2 = cls.make_device(group=cls.group)
        cls.a3 = cls.make_device()
        cls.b1 = cls.make_device(tenant="other")

        def post(dc, reports, dropped=0):
            st, _, body = dc.post(batch(reports, dropped))
            if st != 200 or body["rejected"]:
                raise RuntimeError("upload failed: %d %r" % (st, body))

        # acme, version 1.0: 2 device-hours, 1 crash (pc 0x100); version 2.0: 2 device-hours, 5 crashes
        # (pc 0x200 on all three devices: a new bucket on 3 > 2 devices in its first hour)
        post(cls.a1, [heartbeat(1, images={"aegis-app": "1.0"}), crash(2, version="1.0", pc="0x100"),
                      heartbeat(3, images={"aegis-app": "2.0"}), crash(4, version="2.0", pc="0x200",
                                                                        message='oops, "quoted",\nline 2'),
                      crash(5, version="2.0", pc="0x200", message="=HYPERLINK(\"http://x\")")], dropped=2)
        post(cls.a2, [heartbeat(1, images={"aegis-app": "1.0"}), heartbeat(2, images={"aegis-app": "2.0"}),
                      crash(3, version="2.0", pc="0x200"), crash(4, version="2.0", pc="0x200"),
                      reboot(5)])
        post(cls.a3, [crash(1, version="2.0", pc="0x200")])
        # other tenant: same signature as acme's 0x200 bucket
        post(cls.b1, [crash(1, version="2.0", pc="0x200"), heartbeat(2, images={"aegis-app": "2.0"})])

    def buckets(self, query="", tenant="acme"):
        return self.assertOk(self.api("GET", "/v1/failures/buckets" + query, token=self.token_of(tenant)))

    def test_bucket_list_sort_and_filters(self):
        items = self.buckets()["items"]
        self.assertEqual([(b["pc"], b["count"], b["devices"]) for b in items], [("0x200", 5, 3), ("0x100", 1, 1)])
        b = items[0]
        self.assertRegex(b["signature"], r"^[0-9a-f]{64}$")
        self.assertEqual(b["frames"], ["0x8001000", "0x8002000", "0x8003000"])
        self.assertEqual(b["reason"], "hardfault")
        self.assertEqual(b["component"], "aegis-app")
        recent = [b["last_seen"] for b in self.buckets("?sort=recent")["items"]]
        self.assertEqual(recent, sorted(recent, reverse=True))
        self.assertEqual(self.buckets("?sort=devices")["items"][0]["devices"], 3)
        self.assertEqual(self.buckets("?component=other-thing")["items"], [])
        v1 = self.buckets("?image_version=1.0")["items"]
        self.assertEqual([(b["pc"], b["count"]) for b in v1], [("0x100", 1)])
        grp = self.buckets("?group_id=%d" % self.group)["items"]
        self.assertEqual([(b["pc"], b["count"], b["devices"]) for b in grp], [("0x200", 2, 1)])
        self.assertEqual(self.buckets("?product_id=%d" % self.product)["items"][0]["count"], 2)
        self.assertEqual(self.buckets("?since=2100-01-01T00:00:00Z")["items"], [])
        page = self.buckets("?limit=1")
        self.assertEqual(len(page["items"]), 1)
        nxt = self.buckets("?limit=1&cursor=" + page["next_cursor"])
        self.assertEqual(nxt["items"][0]["pc"], "0x100")
        self.assertIsNone(nxt["next_cursor"])
        for bad in ("?sort=size", "?since=yesterday", "?component=UP", "?group_id=0", "?cursor=x.y",
                    "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"):
            st, _, body = self.api("GET", "/v1/failures/buckets" + bad)
            self.assertEqual(st, 400, (bad, body))
        # the other tenant: its own bucket for the same signature, with its own figures
        other = self.buckets(tenant="other")["items"]
        self.assertEqual([(b["count"], b["devices"]) for b in other], [(1, 1)])
        self.assertEqual(other[0]["signature"], b["signature"])
        self.assertNotEqual(other[0]["id"], b["id"])

    def test_bucket_detail_and_isolation(self):
        b = self.buckets()["items"][0]
        d = self.assertOk(self.api("GET", "/v1/failures/buckets/%d" % b["id"]))
        self.assertEqual(d["count"], 5)
        self.assertEqual(d["versions"][0]["image_version"], "2.0")
        self.assertEqual(d["versions"][0]["count"], 5)
        self.assertEqual(len(d["samples"]), 5)
        self.assertTrue(all(s["bucket_id"] == b["id"] for s in d["samples"]))
        self.assertError(self.api("GET", "/v1/failures/buckets/%d" % b["id"], token=self.token_of("other")),
                         404, "not_found")
        self.assertError(self.api("GET", "/v1/failures/buckets/999999"), 404, "not_found")
        self.assertError(self.api("GET", "/v1/failures/buckets/x"), 400, "bad_request")

    def test_device_reports(self):
        page = self.assertOk(self.api("GET", "/v1/devices/%s/reports" % self.a1.dev.id))
        self.assertEqual([r["report_id"] for r in page["items"]], [5, 4, 3, 2, 1])
        self.assertEqual(page["summary"]["dropped"], 2)
        self.assertEqual(page["summary"]["reports"], 5)
        self.assertRegex(page["summary"]["last_upload"], r"Z$")
        crashes = self.assertOk(self.api("GET", "/v1/devices/%s/reports?type=crash" % self.a1.dev.id))
        self.assertEqual([r["report_id"] for r in crashes["items"]], [5, 4, 2])
        self.assertEqual(crashes["items"][1]["message"], 'oops, "quoted",\nline 2')
        rb = self.assertOk(self.api("GET", "/v1/devices/%s/reports?type=reboot" % self.a2.dev.id))["items"][0]
        self.assertEqual((rb["reason"], rb["previous_boot_id"]), ("crash", BOOT))
        self.assertError(self.api("GET", "/v1/devices/%s/reports" % self.a1.dev.id, token=self.token_of("other")),
                         404, "not_found")
        self.assertError(self.api("GET", "/v1/devices/%s/reports" % ("0" * 64)), 404, "not_found")
        self.assertError(self.api("GET", "/v1/devices/%s/reports?type=x" % self.a1.dev.id), 400, "bad_request")

    def test_crash_rates(self):
        r = self.assertOk(self.api("GET", "/v1/failures/crash-rates?component=aegis-app"))
        versions = {v["image_version"]: v for v in r["versions"]}
        self.assertEqual(versions["1.0"]["device_hours"], 2.0)
        self.assertEqual(versions["1.0"]["crashes"], 1)
        self.assertEqual(versions["1.0"]["crash_rate"], 0.5)
        self.assertEqual(versions["2.0"]["device_hours"], 2.0)
        self.assertEqual(versions["2.0"]["crashes"], 5)
        self.assertEqual(versions["2.0"]["crash_rate"], 2.5)
        self.assertEqual(r["granularity"], "day")
        self.assertEqual(sum(i["crashes"] for i in r["items"]), 6)
        self.assertGreater(r["fleet"]["device_hours"], 0)
        self.assertIn("crash_free_device_hours", r["fleet"])
        h = self.assertOk(self.api("GET", "/v1/failures/crash-rates?granularity=hour"))
        self.assertEqual(h["granularity"], "hour")
        other = self.assertOk(self.api("GET", "/v1/failures/crash-rates", token=self.token_of("other")))
        self.assertEqual([v["crashes"] for v in other["versions"]], [1])
        for bad in ("?granularity=week", "?granularity=hour&since=2020-01-01T00:00:00Z",
                    "?component=A"):
            self.assertError(self.api("GET", "/v1/failures/crash-rates" + bad), 400, "bad_request")

    def test_export_csv_and_jsonl_isolated(self):
        st, hdrs, raw = self.client.request("GET", "/v1/failures/export?format=csv")
        self.assertEqual(st, 200, raw[:200])
        self.assertTrue(hdrs["Content-Type"].startswith("text/csv"))
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
        header, rows = rows[0], rows[1:]
        self.assertEqual(header[:6], ["received_at", "device_id", "report_id", "type", "boot_id", "uptime_s"])
        self.assertIn("message", header)
        self.assertEqual(len(rows), 11)
        devs = {r[1] for r in rows}
        self.assertEqual(devs, {self.a1.dev.id, self.a2.dev.id, self.a3.dev.id}, "only the tenant's reports")
        msgs = [r[header.index("message")] for r in rows if r[header.index("message")]]
        self.assertIn('oops, "quoted",\nline 2', msgs)
        self.assertIn("'=HYPERLINK(\"http://x\")", msgs, "a formula is neutralised")
        st, hdrs, raw = self.client.request("GET", "/v1/failures/export?format=jsonl",
                                            token=self.token_of("other"))
        self.assertEqual(st, 200)
        lines = [json.loads(l) for l in raw.decode().splitlines()]
        self.assertEqual(len(lines), 2)
        self.assertEqual({l["device_id"] for l in lines}, {self.b1.dev.id})
        st, _, raw = self.client.request("GET", "/v1/failures/export?format=csv&since=2100-01-01T00:00:00Z")
        self.assertEqual(raw.decode().count("\r\n"), 1, "only the header")
        self.assertError(self.api("GET", "/v1/failures/export?format=xml"), 400, "bad_request")
        self.assertError(self.api("GET", "/v1/failures/export"), 400, "bad_request")

    def test_flags(self):
        deadline = time.monotonic() + 15
        while True:
            items = self.assertOk(self.api("GET", "/v1/failures/flags"))["items"]
            kinds = {f["kind"]: f for f in items}
            if len(kinds) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertIn("new_bucket", kinds, items)
        self.assertIn("rate_regression", kinds, items)
        nb = kinds["new_bucket"]
        self.assertEqual(nb["bucket_id"], self.buckets()["items"][0]["id"])
        self.assertEqual(nb["detail"]["devices_first_hour"], 3)
        rr = kinds["rate_regression"]
        self.assertEqual((rr["component"], rr["image_version"], rr["previous_version"]), ("aegis-app", "2.0", "1.0"))
        self.assertEqual(rr["detail"]["crash_rate"], 2.5)
        self.assertEqual(len(items), 2, "each condition flagged once")
        self.assertEqual(self.assertOk(self.api("GET", "/v1/failures/flags", token=self.token_of("other")))["items"],
                         [])
        text = self.client.request("GET", "/metrics", token=None)[2].decode()
        self.assertIn('aegis_failure_flags_total{kind="new_bucket"} 1', text)
        self.assertIn('aegis_failure_flags_total{kind="rate_regression"} 1', text)

    def test_cli(self):
        p = self.d.ctl("failures", "buckets", "--sort", "devices")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ID"), p.stdout)
        self.assertIn("0x200", lines[1])
        bid = lines[1].split()[0]
        p = self.d.ctl("failures", "show", bid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("signature:", p.stdout)
        self.assertIn("samples", p.stdout)
        self.assertIn("oops", p.stdout)
        p = self.d.ctl("failures", "device", self.a1.dev.id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("dropped on the device: 2", p.stdout)
        p = self.d.ctl("failures", "rates", "--component", "aegis-app")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2.5000", p.stdout)
        self.assertIn("crash-free device-hours", p.stdout)
        p = self.d.ctl("failures", "flags")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.d.ctl("failures", "export", "--format", "csv")
        self.assertEqual(p.returncode, 0, p.stderr)
        st, _, raw = self.client.request("GET", "/v1/failures/export?format=csv")
        self.assertEqual(p.stdout, raw.decode().replace("\r\n", "\n"))
        p = self.d.ctl("failures", "export", "--format", "jsonl", json_out=False)
        self.assertEqual(len(p.stdout.splitlines()), 11)
        self.assertEqual(self.d.ctl("failures", "export").returncode, 2)
        self.assertEqual(self.d.ctl("failures", "buckets", "--sort", "x").returncode, 2)
        self.assertEqual(self.d.ctl("failures", "show", "999999").returncode, 6)  # 404
        p = self.d.ctl("failures", "buckets", json_out=True)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(len(json.loads(p.stdout)["items"]), 2)


class ExportMemoryTest(TelemetryBase):
    """100,000 reports uploaded through the API, exported as one streamed CSV: the daemon's peak memory
    barely moves while the CSV is tens of MB."""

    tenants = ("acme",)
    config = {"telemetry_rate": 100000, "telemetry_burst": 100000, "log_level": "info"}
    NDEV, NBATCH, PER = 10, 100, 100

    def test_streamed_csv_export_of_100k_reports(self):
        devs = [self.make_device() for _ in range(self.NDEV)]
        errors = []

        def upload(dc, k):
            try:
                for b in range(self.NBATCH):
                    base = 1 + b * self.PER
                    reports = [crash(base + i, version="1.%d" % (i % 4), pc="0x%x" % (0x8000 + i % 50),
                                     message="device %d batch %d report %d: assertion failed, \"x\" > 0" % (k, b, i))
                               for i in range(self.PER)]
                    st, _, body = dc.post(batch(reports))
                    if st != 200 or body["stored"] != self.PER:
                        errors.append((st, body))
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=upload, args=(dc, k)) for k, dc in enumerate(devs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        ingest_s = time.monotonic() - t0
        self.assertEqual(errors, [])
        total = self.NDEV * self.NBATCH * self.PER
        pid = self.d.proc.pid
        hwm_before = vm_kib(pid, "VmHWM")
        # stream the export, reading it in pieces
        t0 = time.monotonic()
        conn = self.client.connect()
        conn.request("GET", "/v1/failures/export?format=csv", headers={"Authorization": "Bearer " + self.d.token})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        nbytes = 0
        nlines = 0
        reader = csv.reader(io.TextIOWrapper(resp, encoding="utf-8", newline=""))
        header = next(reader)
        ids = set()
        for row in reader:
            nlines += 1
            ids.add((row[1], row[2]))
            nbytes += sum(len(x) for x in row) + len(row)
        export_s = time.monotonic() - t0
        hwm_after = vm_kib(pid, "VmHWM")
        self.assertEqual(header[0], "received_at")
        self.assertEqual(nlines, total)
        self.assertEqual(len(ids), total, "every report once")
        self.assertGreater(nbytes, 10 * 1024 * 1024)
        growth_mb = (hwm_after - hwm_before) / 1024.0
        print("\n    export: %d reports uploaded in %.1f s (%.0f/s); CSV %.1f MB streamed in %.1f s; daemon VmHWM "
              "%.1f MB -> %.1f MB (+%.1f MB)" % (total, ingest_s, total / ingest_s, nbytes / 1048576.0, export_s,
                                                 hwm_before / 1024.0, hwm_after / 1024.0, growth_mb))
        if sanitized(pid):
            # ASan keeps freed memory in its quarantine (256 MB by default): peak RSS says nothing there.
            return
        # a third of the CSV's size: an export held in memory (29.6 MB of text, more as rows) cannot pass
        self.assertLess(growth_mb, 10, "the export must not hold the reports in memory")


if __name__ == "__main__":
    unittest.main()
