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
For each server the client's processes x connections (--shapes) are tried and the best rate reported, with the
CPU shares of the client and the server over that window (of all cores: the client and the servers share them).
Last output line: key=value figures.

usage: bench/attest/run.py [--build build] [--devices 1000] [--seconds 10] [--shapes 2x16,2x32,2x64]
                           [--rounds 1] [--no-nginx] [--set key=value]...
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


def attload(build, mode, port, procs, conns, seconds, extra):
    """One attload run; its JSON summary, with server_cpu_share (of all cores) of the processes pid_fn names."""
    args = [os.path.join(build, "bench", "attest", "attload"), mode, "--port", str(port), "--procs", str(procs),
            "--conns", str(conns), "--seconds", str(seconds), "--count", "10000000"] + extra
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise RuntimeError("attload failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout)


def sweep(name, shapes, rounds, run_one, server_pid):
    """Runs run_one(procs, conns) per shape and round; prints each; returns the best row by rate."""
    best = None
    for procs, conns in shapes:
        for _ in range(rounds):
            pids = benchlib.tree_pids(server_pid)
            cpu0 = benchlib.cpu_seconds(pids)
            r = run_one(procs, conns)
            r["server_cpu_share"] = (benchlib.cpu_seconds(pids) - cpu0) / (r["elapsed_s"] * os.cpu_count())
            r["procs"], r["conns"] = procs, conns
            errs = {k: v for k, v in r["errors"].items() if v}
            print("%-6s P=%d C=%-3d %7.0f /s  p50 %6.1f ms  p99 %6.1f ms  ok %d errors %s  cpu: client %.0f%% "
                  "server %.0f%%" % (name, procs, conns, r["rate"], r["p50_ms"], r["p99_ms"], r["ok"], errs or "none",
                                     100 * r["client_cpu_share"], 100 * r["server_cpu_share"]), flush=True)
            if best is None or r["rate"] > best["rate"]:
                best = r
    return best


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
    ap.add_argument("--shapes", default="2x16,2x32,2x64", help="client processes x connections each, to try")
    ap.add_argument("--rounds", type=int, default=1, help="runs per shape")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra aegisd config key=value")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
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
    ng = None
    try:
        d.start()
        fleet = os.path.join(tmp, "fleet")
        benchlib.provision_fleet(d, harness.binary("aegis-sim"), fleet, args.devices, attest=False)
        if not args.no_nginx:
            nginx, nport = benchlib.start_nginx(tmp, os.path.join(d.pki_dir, "server.crt"),
                                                os.path.join(d.pki_dir, "server.key"), "hello.txt", "hello\n",
                                                server_extra=NGINX_TLS)
            ng = sweep("nginx", shapes, args.rounds,
                       lambda p, c: attload(build, "get", nport, p, c, args.seconds, ["--path", "/hello.txt"]),
                       nginx.pid)
            nginx.terminate()
            nginx.wait()
            nginx = None
        at = sweep("aegisd", shapes, args.rounds,
                   lambda p, c: attload(build, "attest", d.port, p, c, args.seconds,
                                        ["--fleet", fleet, "--devices", str(args.devices)]),
                   d.proc.pid)
        d.stop()
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    print("devices=%d, client and servers on the same %d cores" % (args.devices, os.cpu_count()))
    if ng is not None:
        print("nginx new TLS connections (one GET each): %.0f/s at P=%d C=%d, p50 %.1f ms, p99 %.1f ms "
              "(cpu: client %.0f%%, nginx %.0f%%)" % (ng["rate"], ng["procs"], ng["conns"], ng["p50_ms"],
                                                      ng["p99_ms"], 100 * ng["client_cpu_share"],
                                                      100 * ng["server_cpu_share"]))
    print("aegisd attestations (new TLS connection each): %.0f/s at P=%d C=%d, p50 %.1f ms, p99 %.1f ms "
          "(cpu: client %.0f%%, aegisd %.0f%%)" % (at["rate"], at["procs"], at["conns"], at["p50_ms"],
                                                   at["p99_ms"], 100 * at["client_cpu_share"],
                                                   100 * at["server_cpu_share"]))
    out = [("attest_per_s", "%.0f" % at["rate"])]
    if ng is not None:
        out += [("nginx_conn_per_s", "%.0f" % ng["rate"]), ("ratio_nginx_new_conn", "%.2f" % (at["rate"] / ng["rate"]))]
    out += [("p50_ms", "%.1f" % at["p50_ms"]), ("p99_ms", "%.1f" % at["p99_ms"]), ("bound_per_s", "%.0f" % bound),
            ("ratio_bound", "%.2f" % (at["rate"] / bound)),
            ("client_cpu_attest", "%.2f" % at["client_cpu_share"]),
            ("server_cpu_attest", "%.2f" % at["server_cpu_share"])]
    if ng is not None:
        out += [("client_cpu_nginx", "%.2f" % ng["client_cpu_share"]),
                ("server_cpu_nginx", "%.2f" % ng["server_cpu_share"])]
    print(" ".join("%s=%s" % kv for kv in out))


if __name__ == "__main__":
    main()
