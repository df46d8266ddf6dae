#!/usr/bin/env python3
"""Stalled-handshake check (issue 16): aegisd's CPU while K connections hold a TLS handshake open without
finishing it (connload stall): with --hello the client sends its ClientHello and then nothing, without it
only connects. A daemon that waits for such clients in its event loop uses no CPU; one that retries them in
a zero-timeout loop uses a whole core per worker thread. header_timeout is raised so that the daemon's own
deadline does not end the stall inside the window.

usage: bench/conns/spin.py [--build build] [--loops default,epoll,poll] [--conns 200] [--seconds 5]
Last line: key=value, the CPU share (percent of one core) per loop and kind of stall.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def window(pid, seconds):
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_s(pid) - c0) / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--loops", default="default,epoll,poll")
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["AEGIS_BUILD"] = build
    import harness  # noqa: E402

    out = {}
    for loop in args.loops.split(","):
        cfg = {"header_timeout": "120", "per_ip_connections": "0", "max_connections": "4096"}
        if loop != "default":
            cfg["event_loop"] = loop
        d = harness.Daemon(config=cfg, log_level="warn")
        try:
            d.start()
            pid = d.proc.pid
            out["%s_idle" % loop] = window(pid, args.seconds)
            for kind in ("hello", "connect"):
                argv = [os.path.join(build, "bench", "conns", "connload"), "stall", "--port", str(d.port),
                        "--conns", str(args.conns), "--max-seconds", "120"] + (["--hello"] if kind == "hello" else [])
                p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                ready = p.stdout.readline().strip()
                time.sleep(0.5)
                out["%s_%s" % (loop, kind)] = window(pid, args.seconds)
                p.stdin.close()
                p.wait(30)
                print("%-8s %-8s %s cpu=%.0f%%" % (loop, kind, ready, out["%s_%s" % (loop, kind)]), flush=True)
                time.sleep(1)
            d.stop()
        finally:
            d.cleanup()
    print(" ".join("cpu_pct_%s=%.0f" % kv for kv in out.items()))


if __name__ == "__main__":
    main()
