#!/usr/bin/env python3
"""Connections benchmark (issue 16): the cost of a request while N idle mutual-TLS keep-alive connections are
open. N idle connections are opened and held by separate processes (bench/conns/connload.c hold, up to
--per-holder each, each from its own 127.0.0.x source address), each having made one GET /v1/device/whoami with a
device certificate; then 20 active device connections GET /v1/device/whoami back to back for --seconds
(connload load), measuring p50/p99 and requests/s, and aegisd's CPU (utime+stime of /proc/PID/stat over the
window, divided by the requests) and RSS (VmRSS). The same idle connections (mutual TLS: nginx asks for the
client certificate with ssl_verify_client optional_no_ca) and the same active load, on a small static file,
are then run against nginx in the same run: its RSS (master + workers) and p99.

One row per event loop (--loops: "default" is the configuration without an event_loop key) and N (--ns).
Last output line: key=value figures of the first loop: cpu_us_per_req_ratio_20k (CPU per request at the
largest N / at N=0) and rss_kib_per_conn ((RSS at the largest N - RSS at 0) / N).

usage: bench/conns/run.py [--build build] [--ns 0,1000,10000,20000] [--loops default,epoll] [--seconds 10]
                          [--active 20] [--devices 32] [--per-holder 2500] [--no-nginx]
                          [--set key=value]... [--env NAME=VALUE]...
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402

FD_RESERVE = 480  # aegisd's descriptors besides connections (its NOFILE_RESERVE is 256), with a margin


def raise_nofile(need):
    """Soft and hard open-files limits of this process (inherited by aegisd, nginx and the tools)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))  # root may raise the hard limit
            return
        except (ValueError, OSError):
            need = hard
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def tool(build):
    return os.path.join(build, "bench", "conns", "connload")


class Holders:
    """Processes holding idle connections to one port, added to by grow()."""

    def __init__(self, build, port, cacert, certdir, devices, per_holder, path):
        self.args = [tool(build), "hold", "--port", str(port), "--cacert", cacert, "--path", path,
                     "--inflight", "24"]
        if certdir:
            self.args += ["--certdir", certdir, "--devices", str(devices)]
        self.per_holder = per_holder
        self.procs = []
        self.total = 0

    def grow(self, n):
        """Opens connections (new processes) until n are held; returns the count reported open."""
        started = []
        while self.total < n:
            k = min(self.per_holder, n - self.total)
            src = "127.0.%d.%d" % (1 + len(self.procs) // 250, 2 + len(self.procs) % 250)
            p = subprocess.Popen(self.args + ["--conns", str(k), "--src", src], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, bufsize=1)
            self.procs.append(p)
            started.append((p, k))
            self.total += k
        for p, k in started:
            line = p.stdout.readline().strip()  # "ready open=N failed=M seconds=S"
            kv = dict(x.split("=") for x in line.split()[1:]) if line.startswith("ready") else {}
            if int(kv.get("open", 0)) != k or int(kv.get("failed", 1)) != 0:
                raise RuntimeError("holder of %d connections: %r" % (k, line))
        return self.open()

    def open(self):
        """Connections still open, as the holders see them."""
        total = 0
        for p in self.procs:
            p.stdin.write("status\n")
            p.stdin.flush()
            total += int(p.stdout.readline().split("=")[1])
        return total

    def close(self):
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        self.total = 0


def load(build, port, cacert, certdir, devices, active, seconds, path, pid_fn):
    """One active-load window; returns its key=value figures (CPU and RSS of the pid(s) from pid_fn)."""
    pids = pid_fn()
    args = [tool(build), "load", "--port", str(port), "--cacert", cacert, "--conns", str(active),
            "--seconds", str(seconds), "--path", path]
    if certdir:
        args += ["--certdir", certdir, "--devices", str(devices)]
    args += ["--pid", ",".join(str(x) for x in pids)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise RuntimeError("connload load failed: %s" % p.stderr)
    return dict(x.split("=") for x in p.stdout.strip().splitlines()[-1].split())


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def provision(d, sim, fleet, devices, certdir):
    """A fleet of attested devices; their certificates and keys as DIR/dev-I.crt and .key."""
    benchlib.provision_fleet(d, sim, fleet, devices)
    benchlib.fleet_certs(fleet, devices, certdir)


def start_nginx(tmp, cert, key, max_conns):
    """nginx holding mutual-TLS keep-alive connections (it asks for the client certificate) as long as aegisd."""
    body = json.dumps({"device_id": "0" * 64, "tenant": "acme", "state": "active"})
    return benchlib.start_nginx(tmp, cert, key, "whoami.json", body, worker_connections=max_conns + 512,
                                main_extra="worker_rlimit_nofile %d;" % (2 * max_conns + 1024),
                                server_extra="ssl_verify_client optional_no_ca; ssl_session_tickets off; "
                                "keepalive_timeout 3600s;")


def nginx_pids(master):
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        return [master] + [int(x) for x in f.read().split()]


def measure_series(name, ns, holders, run_load, pid_fn, rows):
    for n in ns:
        t0 = time.monotonic()
        held = holders.grow(n)
        opened_s = time.monotonic() - t0
        idle_rss = sum(rss_kib(p) for p in pid_fn())
        kv = run_load()
        still = holders.open()
        row = {"server": name, "n": n, "held": held, "still_open": still, "idle_rss_kib": idle_rss,
               "rss_kib": int(kv["rss_kib"]), "p50_ms": float(kv["p50_ms"]), "p99_ms": float(kv["p99_ms"]),
               "rps": float(kv["requests_per_s"]), "cpu_us": float(kv.get("cpu_us_per_req", 0)),
               "errors": int(kv["errors"]), "open_s": opened_s}
        rows.append(row)
        print("%-8s N=%-6d held=%-6d still_open=%-6d rss=%7.1f MiB p50=%6.2f p99=%6.2f ms %6.0f req/s "
              "cpu=%6.1f us/req errors=%d (opened in %.0f s)"
              % (name, n, held, still, row["rss_kib"] / 1024.0, row["p50_ms"], row["p99_ms"], row["rps"],
                 row["cpu_us"], row["errors"], opened_s), flush=True)


def daemon_config(loop, max_conns, extra):
    cfg = {"challenge_rate": "1000000", "challenge_burst": "1000000", "max_connections": str(max_conns),
           "per_ip_connections": "0", "connection_timeout": "3600"}
    if loop != "default":
        cfg["event_loop"] = loop
    cfg.update(extra)
    return cfg


def print_table(rows):
    print()
    print("| server / event loop | idle conns N | RSS | p50 / p99 | requests/s | CPU per request |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cpu = "%.0f µs" % r["cpu_us"]
        print("| %s | %s | %.0f MiB | %.1f / %.1f ms | %s | %s |"
              % (r["server"], "{:,}".format(r["n"]), r["rss_kib"] / 1024.0, r["p50_ms"], r["p99_ms"],
                 "{:,.0f}".format(r["rps"]), cpu))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--ns", default="0,1000,10000,20000")
    ap.add_argument("--loops", default="default,epoll")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--active", type=int, default=20)
    ap.add_argument("--devices", type=int, default=32)
    ap.add_argument("--per-holder", type=int, default=2500)
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra aegisd config key=value")
    ap.add_argument("--env", action="append", default=[], help="aegisd environment NAME=VALUE")
    args = ap.parse_args()
    ns = sorted(int(x) for x in args.ns.split(","))
    loops = args.loops.split(",")
    build = os.path.abspath(args.build)
    os.environ["AEGIS_BUILD"] = build
    import harness  # noqa: E402

    # aegisd's eviction starts at 7/8 of max_connections: keep the held connections below it.
    max_conns = max(24000, (ns[-1] + args.active + 100) * 8 // 7 + 1000)
    raise_nofile(max_conns + 4096)
    # One process cannot hold more connections than its open-files limit allows (the hard limit may be
    # out of reach, as in some containers): N is capped below it, and the cap printed.
    fd_cap = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - args.active - FD_RESERVE
    if ns[-1] > fd_cap:
        print("note: RLIMIT_NOFILE is %d here: N=%d is measured as N=%d"
              % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], ns[-1], fd_cap), flush=True)
        ns = sorted(set(min(n, fd_cap) for n in ns))
    if not args.no_nginx and shutil.which("nginx") is None:
        subprocess.run(["sh", "-c", "apt-get install -y -qq nginx >/dev/null"], check=True)
    extra = dict(kv.split("=", 1) for kv in args.set)
    env = dict(kv.split("=", 1) for kv in args.env) or None
    d = harness.Daemon(config=daemon_config(loops[0], max_conns, extra), log_level="warn", env=env)
    tmp = tempfile.mkdtemp(prefix="aegis-conns-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    certdir = os.path.join(tmp, "certs")
    rows = []
    holders = None
    nginx = None
    path = "/v1/device/whoami"
    try:
        d.start()
        provision(d, harness.binary("aegis-sim"), os.path.join(tmp, "fleet"), args.devices, certdir)
        for i, loop in enumerate(loops):
            if i > 0:
                d.stop()
                d.write_config(daemon_config(loop, max_conns, extra))
                d.start()
            pid = d.proc.pid
            holders = Holders(build, d.port, d.cacert, certdir, args.devices, args.per_holder, path)
            measure_series(loop, ns, holders,
                           lambda: load(build, d.port, d.cacert, certdir, args.devices, args.active,
                                        args.seconds, path, lambda: [pid]),
                           lambda: [pid], rows)
            holders.close()
            holders = None
        d.stop()
        if not args.no_nginx:
            nginx, nport = start_nginx(tmp, os.path.join(d.pki_dir, "server.crt"),
                                       os.path.join(d.pki_dir, "server.key"), max_conns)
            holders = Holders(build, nport, d.cacert, certdir, args.devices, args.per_holder, "/whoami.json")
            measure_series("nginx", ns, holders,
                           lambda: load(build, nport, d.cacert, certdir, args.devices, args.active,
                                        args.seconds, "/whoami.json", lambda: nginx_pids(nginx.pid)),
                           lambda: nginx_pids(nginx.pid), rows)
    finally:
        if holders is not None:
            holders.close()
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)
    first = [r for r in rows if r["server"] == loops[0]]
    base, top = first[0], first[-1]
    # The key names the 20k point; top_n says which N it was measured at.
    out = {"top_n": top["n"], "cpu_us_per_req_ratio_20k": top["cpu_us"] / max(base["cpu_us"], 1e-9),
           "rss_kib_per_conn": (top["idle_rss_kib"] - base["idle_rss_kib"]) / max(top["n"] - base["n"], 1),
           "p99_ms_top": top["p99_ms"], "cpu_us_per_req_0": base["cpu_us"], "cpu_us_per_req_top": top["cpu_us"]}
    for loop in loops[1:] + (["nginx"] if not args.no_nginx else []):
        s = [r for r in rows if r["server"] == loop]
        if loop != "nginx":
            out["%s_cpu_ratio" % loop] = s[-1]["cpu_us"] / max(s[0]["cpu_us"], 1e-9)
        out["%s_rss_kib_per_conn" % loop] = (s[-1]["idle_rss_kib"] - s[0]["idle_rss_kib"]) / max(
            s[-1]["n"] - s[0]["n"], 1)
        out["%s_p99_ms_top" % loop] = s[-1]["p99_ms"]
    print(" ".join("%s=%s" % (k, "%d" % v if isinstance(v, int) else "%.2f" % v) for k, v in out.items()))


if __name__ == "__main__":
    main()
