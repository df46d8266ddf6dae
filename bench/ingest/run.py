#!/usr/bin/env python3
"""Ingest benchmark: crash reports acknowledged (durably) per second over mutual-TLS keep-alive from many devices,
each sending batches of 1 to 10 reports, next to two references measured in the same run:
  (a) the raw SQLite insert rate of the same rows (into a copy of the daemon's database, rows replayed from
      inside SQLite so no client overhead is counted), twice: 1,000 rows per synchronous=FULL transaction
      (bulk, the headline ratio_raw), and as many rows per synchronous=FULL transaction as the daemon made
      durable per flush of its log in this run (the same durability points: ratio_raw_same_tx);
  (b) nginx serving a small static file over TLS to the same client (bench/ingest/loadgen.c, same connections).
Last output line: key=value figures, ratios included.

usage: bench/ingest/run.py [--build build] [--devices 256] [--concurrency 64] [--seconds 10]
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402


def loadgen(build, *args):
    p = subprocess.run([os.path.join(build, "bench", "ingest", "loadgen")] + list(args),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("loadgen failed: %s" % p.stderr)
    sys.stdout.write(p.stdout)
    last = p.stdout.strip().splitlines()[-1]
    return dict(kv.split("=") for kv in last.split())


def raw_sqlite_rate(db_path, per_tx=1000):
    """Rows per second of plain INSERTs of the same rows the daemon stored in this run, in the order
    it stored them, into an emptied telemetry_reports of a copy of its database (same schema,
    constraints and indexes), per_tx rows per synchronous=FULL transaction. The rows come from an
    in-memory table inside SQLite, so no client overhead is counted. Returns (rate, rows)."""
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA temp_store=MEMORY")
    con.execute("CREATE TEMP TABLE src AS SELECT * FROM telemetry_reports ORDER BY id")
    rows = con.execute("SELECT count(*) FROM temp.src").fetchone()[0]
    con.execute("DELETE FROM telemetry_reports")
    con.execute("VACUUM")
    t0 = time.time()
    for start in range(0, rows, per_tx):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO telemetry_reports SELECT * FROM temp.src WHERE rowid > ?1 AND rowid <= ?2",
                    (start, start + per_tx))
        con.execute("COMMIT")
    rate = rows / (time.time() - t0)
    con.close()
    return rate, rows


def ingest_counters(d):
    """The daemon's aegis_ingest_*_total counters (group commits, reports in them, log flushes)."""
    text = d.client(token=None).request("GET", "/metrics", token=None)[2].decode()
    return {k: int(v) for k, v in re.findall(r"^aegis_ingest_(\w+_total) (\d+)$", text, re.M)}


def start_nginx(tmp, cert, key):
    """nginx answering a telemetry-like acknowledgement from a static file over TLS."""
    body = json.dumps({"stored": 5, "duplicates": 0, "rejected": 0,
                       "results": [{"report_id": i, "status": "stored"} for i in range(5)]})
    return benchlib.start_nginx(tmp, cert, key, "ack.json", body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--devices", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["AEGIS_BUILD"] = build
    import harness  # noqa: E402

    if shutil.which("nginx") is None:
        subprocess.run(["sh", "-c", "apt-get install -y -qq nginx >/dev/null"], check=True)
    sim = harness.binary("aegis-sim")
    d = harness.Daemon(config={"challenge_rate": "1000000", "challenge_burst": "1000000",
                               "telemetry_rate": "1000000", "telemetry_burst": "1000000",
                               "max_connections": "4096", "per_ip_connections": "0"}, log_level="warn")
    fleet_root = tempfile.mkdtemp(prefix="aegis-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    nginx = None
    try:
        d.start()
        fleet = os.path.join(fleet_root, "fleet")
        benchlib.provision_fleet(d, sim, fleet, args.devices)
        ingest = loadgen(build, "telemetry", "--url", d.url() + "/v1/device/telemetry", "--cacert",
                         d.cacert, "--fleet", fleet, "--devices", str(args.devices), "--concurrency",
                         str(args.concurrency), "--seconds", str(args.seconds))
        counters = ingest_counters(d)
        per_flush = max(1, round(counters["group_reports_total"] / max(1, counters["flushes_total"])))
        print("daemon: %d group commits, %d log flushes, %.1f reports per commit, %d per flush"
              % (counters["group_commits_total"], counters["flushes_total"],
                 counters["group_reports_total"] / max(1, counters["group_commits_total"]), per_flush))
        d.stop()
        raws = {}
        for per_tx in (1000, per_flush):
            db_copy = os.path.join(fleet_root, "raw.db")
            shutil.copy(os.path.join(d.data_dir, "aegis.db"), db_copy)
            raws[per_tx], raw_rows = raw_sqlite_rate(db_copy, per_tx)
            os.unlink(db_copy)
            print("raw SQLite: %.0f rows/s (the run's %d rows again, %d per synchronous=FULL transaction)"
                  % (raws[per_tx], raw_rows, per_tx))
        raw, raw_same = raws[1000], raws[per_flush]
        nginx, port = start_nginx(fleet_root, os.path.join(d.pki_dir, "server.crt"),
                                  os.path.join(d.pki_dir, "server.key"))
        ng = loadgen(build, "get", "--url", "https://127.0.0.1:%d/ack.json" % port, "--cacert", d.cacert,
                     "--concurrency", str(args.concurrency), "--seconds", str(args.seconds))
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        d.cleanup()
        shutil.rmtree(fleet_root, ignore_errors=True)
    reports = float(ingest["reports_per_s"])
    reqs = float(ingest["requests_per_s"])
    ngx = float(ng["requests_per_s"])
    print("reports_per_s=%.0f requests_per_s=%.0f p99_ms=%s raw_sqlite_rows_per_s=%.0f ratio_raw=%.2f "
          "raw_sqlite_same_tx_rows_per_s=%.0f ratio_raw_same_tx=%.2f nginx_requests_per_s=%.0f ratio_nginx=%.2f"
          % (reports, reqs, ingest["p99_ms"], raw, reports / raw, raw_same, reports / raw_same, ngx, reqs / ngx))


if __name__ == "__main__":
    main()
