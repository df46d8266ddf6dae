#!/usr/bin/env python3
"""Update check benchmark (issue 11 item 10a): GET /v1/device/update answered 304 from memory, next to nginx serving
a small static file over TLS, to the same client (bench/conns/connload, OpenSSL, mutual-TLS keep-alive) with the
same connections, in the same run; and aegisd's RSS while a fleet of --devices devices polls.

1. A fleet of D attested devices (benchlib.provision_fleet), all imported into one device group that has a
   deployment of one image (waves [100], soak 0): every device is eligible, so every answer names the image.
2. Pass 1: every device opens a connection with its own certificate, GETs /v1/device/update once (200: its answer
   is built, signed and cached) and closes it (connload pass --save-etags: the ETag to DIR/dev-I.etag). RSS.
3. Pass 2: the same with If-None-Match: the device's ETag (connload pass --send-etags --expect 304). RSS.
4. --rounds rounds, each of --seconds per server: --conns keep-alive connections, connection i with device i's
   certificate and If-None-Match (each device's ETag differs: "<generation>-<16 hex of the body's SHA-256>", so
   connload sends every device's own, read from DIR/dev-I.etag), counting 304s; then nginx (mutual TLS as in
   bench/conns: it asks for the client certificate) serving a file of the director answer's bytes (200), and the
   same file conditionally (If-None-Match: nginx's ETag, 304). Rates are medians over the rounds. RSS after.

ratio_check = aegisd 304s per second / nginx 200s per second (the issue's reference: a small static file);
ratio_check_304 is against nginx's own 304s; ratio_check_cpu = nginx's CPU per request / aegisd's (steadier than
the rates when other work shares the machine). rss_growth_pass2_kib = RSS after pass 2 - RSS after pass 1;
rss_growth_load_kib = RSS after the load window - RSS after pass 1. Provisioning 10,000 devices takes about 1.5
minutes here and each full pass about 20 s (a full mutual-TLS handshake per device); --devices 1000 for a quick run.

usage: bench/update/checks.py [--build build] [--devices 10000] [--conns 20] [--seconds 5] [--rounds 5]
                              [--inflight 32] [--set key=value]...
Last output line: key=value figures.
"""

import argparse
import http.client
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402
from test_images import rss_kib  # noqa: E402

PATH = "/v1/device/update"


def connload(build):
    return os.path.join(build, "bench", "conns", "connload")


def setup_fleet(d, sim, tmp, devices):
    """Product, group, D devices in it, an image and a deployment of it; returns (certdir, seconds provisioning)."""
    c = d.client()
    st, _, prod = c.api("POST", "/v1/products", {"name": "bench"})
    assert st == 201, prod
    st, _, grp = c.api("POST", "/v1/device-groups", {"name": "fleet", "product_id": prod["id"]})
    assert st == 201, grp
    fleet, certdir = os.path.join(tmp, "fleet"), os.path.join(tmp, "certs")
    t0 = time.monotonic()
    benchlib.provision_fleet(d, sim, fleet, devices, group=grp["id"])
    took = time.monotonic() - t0
    benchlib.fleet_certs(fleet, devices, certdir)
    q = urllib.parse.urlencode({"product_id": prod["id"], "component": "aegis-os", "kind": "os",
                                "version": "2.2.0", "svn": 4, "hardware": "gw"})
    st, _, img = c.api("POST", "/v1/images?" + q, os.urandom(4096), content_type="application/octet-stream")
    assert st == 201, img
    d.ota_publish(os.path.join(tmp, "ota-keys"))
    st, _, dep = c.api("POST", "/v1/deployments", {"group_id": grp["id"], "name": "bench", "images": [img["sha256"]],
                                                   "waves": [100], "soak_seconds": 0, "failure_threshold_pct": 50,
                                                   "min_attempts": 1})
    assert st == 201, dep
    # With soak 0 the cron step completes the one wave within a second or two, which bumps the tenant's director
    # generation (every answer and ETag changes): the passes start once it has.
    deadline = time.monotonic() + 30
    while dep["state"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.2)
        st, _, dep = c.api("GET", "/v1/deployments/%d" % dep["id"])
    assert dep["state"] == "completed", dep
    return certdir, took


def answer_body(d, certdir):
    """Device 0's director answer (the bytes nginx serves)."""
    ctx = ssl.create_default_context(cafile=d.cacert)
    ctx.load_cert_chain(os.path.join(certdir, "dev-0.crt"), os.path.join(certdir, "dev-0.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=30)
    try:
        conn.request("GET", PATH)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:200])
        return body
    finally:
        conn.close()


def full_pass(build, d, certdir, devices, inflight, extra):
    """Every device once, on its own connection; returns seconds."""
    args = [connload(build), "pass", "--port", str(d.port), "--cacert", d.cacert, "--certdir", certdir,
            "--devices", str(devices), "--inflight", str(inflight), "--path", PATH] + extra
    p = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0:
        raise RuntimeError("connload pass %s: %s %s" % (extra, line, p.stderr[-2000:]))
    return float(line.split("seconds=")[1])


def load(build, port, cacert, certdir, devices, conns, seconds, path, pids, extra):
    """One window of keep-alive load; returns connload's key=value figures."""
    args = [connload(build), "load", "--port", str(port), "--cacert", cacert, "--certdir", certdir,
            "--devices", str(min(devices, conns)), "--conns", str(conns), "--seconds", str(seconds), "--path", path,
            "--pid", ",".join(str(x) for x in pids)] + extra
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 300)
    if p.returncode != 0:
        raise RuntimeError("connload load failed: %s" % p.stderr[-2000:])
    kv = dict(x.split("=") for x in p.stdout.strip().splitlines()[-1].split())
    if int(kv["errors"]) or int(kv["failed_conns"]):
        raise RuntimeError("connload load %s: %s" % (path, kv))
    return kv


def nginx_pids(master):
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        return [master] + [int(x) for x in f.read().split()]


def nginx_etag(path):
    """nginx's ETag of a static file: hex mtime - hex size."""
    st = os.stat(path)
    return '"%x-%x"' % (int(st.st_mtime), st.st_size)


def daemon_config(devices, extra):
    cfg = {"challenge_rate": "1000000", "challenge_burst": "1000000", "per_ip_connections": "0",
           "max_connections": "4096", "connection_timeout": "3600"}
    cfg.update(extra)
    return cfg


def measure(a, out):
    """The whole run; fills out (key -> figure) and returns the rounds' rows."""
    import harness
    d = harness.Daemon(config=daemon_config(a.devices, dict(kv.split("=", 1) for kv in a.set)), log_level="warn")
    tmp = tempfile.mkdtemp(prefix="aegis-checks-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(tmp, 0o755)  # nginx's unprivileged workers read the file below it
    nginx, rows = None, []
    try:
        d.start()
        pid = d.proc.pid
        certdir, out["provision_s"] = setup_fleet(d, harness.binary("aegis-sim"), tmp, a.devices)
        out["rss_start_kib"] = rss_kib(pid)
        out["pass1_s"] = full_pass(a.build, d, certdir, a.devices, a.inflight, ["--save-etags"])
        out["rss_pass1_kib"] = rss_kib(pid)
        out["pass2_s"] = full_pass(a.build, d, certdir, a.devices, a.inflight, ["--send-etags", "--expect", "304"])
        out["rss_pass2_kib"] = rss_kib(pid)
        body = answer_body(d, certdir)
        nginx, nport = benchlib.start_nginx(
            os.path.join(tmp, "nginx"), os.path.join(d.pki_dir, "server.crt"), os.path.join(d.pki_dir, "server.key"),
            "update.json", body.decode(), main_extra="worker_rlimit_nofile 8192;",
            server_extra="ssl_verify_client optional_no_ca; ssl_session_tickets off; keepalive_timeout 3600s;")
        netag = nginx_etag(os.path.join(tmp, "nginx", "www", "update.json"))
        runs = [("aegisd 304", lambda: load(a.build, d.port, d.cacert, certdir, a.devices, a.conns, a.seconds, PATH,
                                            [pid], ["--send-etags", "--expect", "304"])),
                ("nginx 200", lambda: load(a.build, nport, d.cacert, certdir, a.devices, a.conns, a.seconds,
                                           "/update.json", nginx_pids(nginx.pid), [])),
                ("nginx 304", lambda: load(a.build, nport, d.cacert, certdir, a.devices, a.conns, a.seconds,
                                           "/update.json", nginx_pids(nginx.pid),
                                           ["--header", "If-None-Match: " + netag, "--expect", "304"]))]
        for i in range(a.rounds):
            for name, fn in runs:
                kv = fn()
                rows.append((name, i, kv))
                print("round %d %-10s %8s req/s p50=%s p99=%s ms cpu=%s us/req" % (
                    i + 1, name, kv["requests_per_s"], kv["p50_ms"], kv["p99_ms"], kv["cpu_us_per_req"]), flush=True)
        out["rss_load_kib"] = rss_kib(pid)
        out["answer_bytes"] = len(body)
    finally:
        benchlib.stop(nginx, d, tmp)
    return rows


def summarise(rows, out):
    """Medians per server into out; returns {name: (rate, p99, cpu)}."""
    med = {}
    for name in ("aegisd 304", "nginx 200", "nginx 304"):
        kvs = [kv for n, _, kv in rows if n == name]
        med[name] = tuple(statistics.median(float(kv[k]) for kv in kvs)
                          for k in ("requests_per_s", "p99_ms", "cpu_us_per_req"))
    out["aegisd_checks_s"], out["nginx_200_s"], out["nginx_304_s"] = (med[n][0] for n in med)
    out["aegisd_cpu_us"], out["nginx_200_cpu_us"] = med["aegisd 304"][2], med["nginx 200"][2]
    out["ratio_check"] = out["aegisd_checks_s"] / out["nginx_200_s"]
    out["ratio_check_304"] = out["aegisd_checks_s"] / out["nginx_304_s"]
    # CPU per request moves less than the rates on a shared machine: nginx's / aegisd's (> 1: aegisd uses less).
    out["ratio_check_cpu"] = out["nginx_200_cpu_us"] / max(out["aegisd_cpu_us"], 1e-9)
    out["rss_growth_pass2_kib"] = out["rss_pass2_kib"] - out["rss_pass1_kib"]
    out["rss_growth_load_kib"] = out["rss_load_kib"] - out["rss_pass1_kib"]
    return med


def add_args(ap):
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--set", action="append", default=[], help="more aegisd configuration, key=value")


def run(a):
    """Measures; returns (out, medians)."""
    if shutil.which("nginx") is None:
        subprocess.run(["sh", "-c", "apt-get install -y -qq nginx >/dev/null"], check=True)
    a.build = os.path.abspath(a.build)
    os.environ["AEGIS_BUILD"] = a.build
    out = {"devices": a.devices, "conns": a.conns}
    rows = measure(a, out)
    return out, summarise(rows, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    add_args(ap)
    out, med = run(ap.parse_args())
    print("provisioned %d devices in %.0f s; full passes %.1f s (200) and %.1f s (304)"
          % (out["devices"], out["provision_s"], out["pass1_s"], out["pass2_s"]))
    for name, (rate, p99, cpu) in med.items():
        print("%-10s %8.0f req/s  p99 %.1f ms  %.0f us CPU/req" % (name, rate, p99, cpu))
    print("RSS: start %.1f MiB, after pass 1 %.1f, pass 2 %.1f, load %.1f"
          % tuple(out[k] / 1024 for k in ("rss_start_kib", "rss_pass1_kib", "rss_pass2_kib", "rss_load_kib")))
    print(" ".join("%s=%s" % (k, "%d" % v if isinstance(v, int) else "%.2f" % v) for k, v in out.items()))


if __name__ == "__main__":
    main()
