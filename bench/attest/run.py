#!/usr/bin/env python3
"""Attestation throughput benchmark: attestations per second of the real aegisd next to nginx's rate of new TLS
connections, with the same client (bench/attest/attload) in the same run, and the one-core crypto bound.

1. `openssl speed -multi 1 ecdsap256`: an attestation costs the service two P-256 verifies (the identity signature
   and the CSR's self-signature) and one P-256 sign (the certificate), so bound = 1 / (2/verify_s + 1/sign_s).
2. nginx (Debian's; installed with apt-get if missing) on loopback, worker_processes = cores, with the daemon's
   ECDSA P-256 certificate, TLS 1.3 with aegisd's cipher preferences, no session tickets and no session cache,
   serving a small file; `attload get`: each request a new TLS connection, one GET, Connection: close.
3. aegisd (the harness daemon: rate limits raised, per_ip_connections=0) with a provisioned fleet (aegis-sim
   provision, import, reference values); `attload attest`: each attestation a new TLS connection with the
   challenge and the evidence on it, a certificate expected.
For each server the client's processes x connections (--shapes) are tried, the two servers alternating, and the
best rate reported, with the CPU shares of the client and the server over that window (of all cores: the client and
the servers share them) and the server's CPU per operation (ratio_cpu_per_op: nginx's CPU per connection / aegisd's
per attestation, what ratio_nginx_new_conn becomes when the servers are CPU-bound on a quiet machine).
Last output line: key=value figures.

usage: bench/attest/run.py [--build build] [--devices 1000] [--seconds 10] [--shapes 1x8,2x16,2x32,2x64]
                           [--rounds 2] [--no-nginx] [--set key=value]... [--perf FILE]
                           [--attload PATH]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402

# aegisd's TLS_PRIORITIES (server/http/http.c) in nginx's terms: AES-256-GCM, AES-128-GCM, ChaCha20 in the
# server's order; P-256 first among groups (GnuTLS's NORMAL order). The client offers only P-256 anyway.
NGINX_TLS = ("ssl_prefer_server_ciphers on; "
             "ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256; "
             "ssl_ecdh_curve prime256v1:secp384r1:X25519; "
             "ssl_session_tickets off; ssl_session_cache off; keepalive_timeout 0;")


def openssl_speed():
    """(sign/s, verify/s) of ECDSA P-256 on one core."""
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "-multi", "1", "ecdsap256"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r"256 bits? ecdsa \(nistp256\)\s+\S+s?\s+\S+s?\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            return float(m.group(1)), float(m.group(2))
    raise RuntimeError("cannot parse openssl speed output:\n" + out)


ATTLOAD = None  # the client binary (--attload, default BUILD/bench/attest/attload)


def attload(build, mode, port, procs, conns, seconds, extra):
    """One attload run: its JSON summary."""
    args = [ATTLOAD or os.path.join(build, "bench", "attest", "attload"), mode, "--port", str(port), "--procs", str(procs),
            "--conns", str(conns), "--seconds", str(seconds), "--count", "10000000"] + extra
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise RuntimeError("attload failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout)


def measure(name, procs, conns, run_one, server_pid):
    """One run_one(procs, conns) with the CPU of the server's process tree over it; prints and returns its row."""
    pids = benchlib.tree_pids(server_pid)
    cpu0 = benchlib.cpu_seconds(pids)
    r = run_one(procs, conns)
    cpu = benchlib.cpu_seconds(pids) - cpu0
    r["server_cpu_share"] = cpu / (r["elapsed_s"] * os.cpu_count())
    r["server_cpu_ms"] = 1000.0 * cpu / max(r["ok"], 1)
    r["client_cpu_ms"] = 1000.0 * r["client_cpu_s"] / max(r["ok"], 1)
    r["procs"], r["conns"] = procs, conns
    errs = {k: v for k, v in r["errors"].items() if v}
    print("%-6s P=%d C=%-3d %6.0f/s  p50 %6.1f ms  p99 %6.1f ms  ok %-6d errors %-5s  cpu: client %2.0f%% "
          "server %2.0f%%; per op: client %.2f ms, server %.2f ms"
          % (name, procs, conns, r["rate"], r["p50_ms"], r["p99_ms"], r["ok"], errs or "none",
             100 * r["client_cpu_share"], 100 * r["server_cpu_share"], r["client_cpu_ms"], r["server_cpu_ms"]),
          flush=True)
    return r


def profile(out, pid, run):
    """run() with aegisd (pid, and the processes it forked) under perf record -g; prints the top 15 symbols by
    inclusive cost (children included), per attestation."""
    pids = ",".join(str(p) for p in benchlib.tree_pids(pid))
    perf = subprocess.Popen(["perf", "record", "-q", "-g", "--call-graph", "dwarf,16384", "-F", "499", "-o", out,
                             "-p", pids], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    syncs = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                              "-p", pids], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        r = run()
    finally:
        for p in (perf, syncs):
            p.send_signal(2)
        perf.wait()
        counts = syncs.communicate()[1]
    rep = subprocess.run(["perf", "report", "-i", out, "--children", "--sort", "sym", "-g", "none", "--stdio",
                          "--percent-limit", "1"], capture_output=True, text=True).stdout
    # Thread entry frames and the unnamed frames of stripped libraries carry no information.
    rows = [ln for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")
            and not re.search(r"\] (0x[0-9a-f]+|clone3|start_thread)$", ln)]
    print("perf (aegisd, %d attestations; Children = inclusive, Self = exclusive share of aegisd's samples):"
          % r["ok"])
    print("\n".join(rows[:15]))
    for line in counts.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].strip().isdigit():
            print("%s: %.2f per attestation" % (f[2], int(f[0]) / max(r["ok"], 1)))


def best_of(rows):
    return max(rows, key=lambda r: r["rate"]) if rows else None


def spread(rows, key):
    vals = [r[key] for r in rows]
    return "%.0f-%.0f" % (min(vals), max(vals)) if key == "rate" else "%.2f-%.2f" % (min(vals), max(vals))


def summary(args, bound, ng, at, ng_rows, at_rows):
    """The human summary and the last key=value line."""
    print("devices=%d seconds=%g, client and servers on the same %d cores" % (args.devices, args.seconds,
                                                                          os.cpu_count()))
    for name, b, rows in (("nginx new TLS connections, one GET each", ng, ng_rows),
                          ("aegisd attestations, a new TLS connection each", at, at_rows)):
        if b is None:
            continue
        same = [r for r in rows if (r["procs"], r["conns"]) == (b["procs"], b["conns"])]
        print("%s: best %.0f/s at P=%d C=%d (this shape over the rounds: %s/s), p50 %.1f ms, p99 %.1f ms; "
              "cpu: client %.0f%%, server %.0f%%; server CPU per op %.2f ms (range %s), client %.2f ms"
              % (name, b["rate"], b["procs"], b["conns"], spread(same, "rate"), b["p50_ms"], b["p99_ms"],
                 100 * b["client_cpu_share"], 100 * b["server_cpu_share"], b["server_cpu_ms"],
                 spread(rows, "server_cpu_ms"), b["client_cpu_ms"]))
    out = [("attest_per_s", "%.0f" % at["rate"])]
    if ng is not None:
        out += [("nginx_conn_per_s", "%.0f" % ng["rate"]), ("ratio_nginx_new_conn", "%.2f" % (at["rate"] / ng["rate"])),
                # CPU per operation is what the rates become when the servers have the cores to themselves.
                ("ratio_cpu_per_op", "%.2f" % (ng["server_cpu_ms"] / at["server_cpu_ms"]))]
    out += [("p50_ms", "%.1f" % at["p50_ms"]), ("p99_ms", "%.1f" % at["p99_ms"]), ("bound_per_s", "%.0f" % bound),
            ("ratio_bound", "%.2f" % (at["rate"] / bound)), ("aegisd_cpu_ms", "%.2f" % at["server_cpu_ms"]),
            ("client_cpu_attest", "%.2f" % at["client_cpu_share"])]
    if ng is not None:
        out += [("nginx_cpu_ms", "%.2f" % ng["server_cpu_ms"]), ("client_cpu_nginx", "%.2f" % ng["client_cpu_share"])]
    print(" ".join("%s=%s" % kv for kv in out))


def daemon_config(extra):
    cfg = {"challenge_rate": "1000000", "challenge_burst": "1000000", "max_connections": "4096",
           "per_ip_connections": "0", "signer_issue_rate": "1000000", "signer_issue_burst": "10000000"}
    cfg.update(extra)
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--shapes", default="1x8,2x16,2x32,2x64", help="client processes x connections each, to try")
    ap.add_argument("--rounds", type=int, default=2, help="runs per shape and server")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--attload", help="the client binary (e.g. a sanitizer build's)")
    ap.add_argument("--perf", metavar="FILE", help="then one more aegisd run at the best shape under perf record -g "
                    "(written to FILE), and its top symbols by inclusive cost")
    ap.add_argument("--set", action="append", default=[], help="extra aegisd config key=value")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    global ATTLOAD
    ATTLOAD = args.attload
    os.environ["AEGIS_BUILD"] = build
    import harness  # noqa: E402  (after AEGIS_BUILD is set)

    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    if not args.no_nginx and shutil.which("nginx") is None:
        subprocess.run(["sh", "-c", "apt-get install -y -qq nginx >/dev/null"], check=True)
    sign_s, verify_s = openssl_speed()
    bound = 1.0 / (2.0 / verify_s + 1.0 / sign_s)
    print("openssl speed -multi 1 ecdsap256: sign/s=%.0f verify/s=%.0f -> one-core bound %.0f attestations/s"
          % (sign_s, verify_s, bound), flush=True)
    d = harness.Daemon(config=daemon_config(dict(kv.split("=", 1) for kv in args.set)), log_level="warn")
    # The fleet (read by attload before its timed phase) and nginx's files live on tmpfs when there is one.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="aegis-attest-", dir=shm)
    nginx = None
    ng_rows, at_rows = [], []
    try:
        d.start()
        fleet = os.path.join(tmp, "fleet")
        benchlib.provision_fleet(d, harness.binary("aegis-sim"), fleet, args.devices, attest=False)
        if not args.no_nginx:
            nginx, nport = benchlib.start_nginx(tmp, os.path.join(d.pki_dir, "server.crt"),
                                                os.path.join(d.pki_dir, "server.key"), "hello.txt", "hello\n",
                                                server_extra=NGINX_TLS)
        # The two servers alternate, shape by shape and round by round, so that a change in what else runs on
        # the machine falls on both.
        for _ in range(args.rounds):
            for procs, conns in shapes:
                if nginx is not None:
                    ng_rows.append(measure("nginx", procs, conns, lambda p, c: attload(
                        build, "get", nport, p, c, args.seconds, ["--path", "/hello.txt"]), nginx.pid))
                at_rows.append(measure("aegisd", procs, conns, lambda p, c: attload(
                    build, "attest", d.port, p, c, args.seconds, ["--fleet", fleet, "--devices", str(args.devices)]),
                    d.proc.pid))
        if args.perf:
            b = best_of(at_rows)
            profile(args.perf, d.proc.pid, lambda: measure("aegisd", b["procs"], b["conns"], lambda p, c: attload(
                build, "attest", d.port, p, c, args.seconds, ["--fleet", fleet, "--devices", str(args.devices)]),
                d.proc.pid))
        d.stop()
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    summary(args, bound, best_of(ng_rows), best_of(at_rows), ng_rows, at_rows)

if __name__ == "__main__":
    main()
