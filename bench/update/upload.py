#!/usr/bin/env python3
"""Image upload memory benchmark (issue 11 item 1): a 1 GiB image uploaded through the manufacturer API while the
daemon's RSS (VmRSS of /proc/PID/status) is sampled every 32 MiB sent. The body is streamed to disk as it arrives,
so the RSS must not grow with the image: the issue's floor is < 20 MiB of growth for 1 GiB. Also reports the
upload rate next to writing the same bytes to a file in the same data directory (the reference: the disk).

usage: bench/update/upload.py [--build build] [--mib 1024]
Last output line: key=value figures (rss_growth_mib=, upload_mib_s=, disk_mib_s=, ratio_upload=).
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import ssl
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from test_images import rss_kib  # noqa: E402

CHUNK = 1024 * 1024
SAMPLE_EVERY = 32  # MiB


def pattern(i):
    """1 MiB of bytes that differ per MiB (so the file is not sparse or trivially compressible)."""
    seed = hashlib.sha256(b"aegis-bench-%d" % i).digest()
    return (seed * (CHUNK // len(seed)))


def disk_rate(path, mib):
    t0 = time.monotonic()
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(pattern(i))
        f.flush()
        os.fsync(f.fileno())
    dt = time.monotonic() - t0
    os.unlink(path)
    return mib / dt


def upload(d, product, mib):
    q = urllib.parse.urlencode({"product_id": product, "component": "bench-os", "kind": "os", "version": "1.0.0",
                                "svn": 1, "hardware": "bench-hw"})
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=120)
    ctx = ssl.create_default_context(cafile=d.cacert)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(("POST /v1/images?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
               % (q, d.token, mib * CHUNK)).encode())
    pid = d.proc.pid
    base = rss_kib(pid)
    peak = base
    t0 = time.monotonic()
    for i in range(mib):
        s.sendall(pattern(i))
        if i % SAMPLE_EVERY == 0:
            peak = max(peak, rss_kib(pid))
    resp = b""
    while b"\r\n\r\n" not in resp:
        got = s.recv(65536)
        if not got:
            break
        resp += got
    dt = time.monotonic() - t0
    peak = max(peak, rss_kib(pid))
    s.close()
    status = int(resp.split(b" ", 2)[1]) if resp else 0
    return status, base, peak, mib / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args()
    os.environ["AEGIS_BUILD"] = os.path.abspath(args.build)
    import harness  # noqa: E402

    d = harness.Daemon(config={"image_max_bytes": str((args.mib + 1) * CHUNK)}, log_level="warn")
    try:
        d.start()
        product = json.loads(d.ctl("products", "create", "bench", json_out=True).stdout)["id"]
        status, base, peak, rate = upload(d, product, args.mib)
        if status != 201:
            raise SystemExit("upload answered %d" % status)
        disk = disk_rate(os.path.join(d.data_dir, "disk-ref.bin"), args.mib)
    finally:
        d.cleanup()
        shutil.rmtree(d.tmp, ignore_errors=True)
    growth = (peak - base) / 1024.0
    print("uploaded %d MiB: RSS %.1f -> %.1f MiB at peak (growth %.1f MiB); %.0f MiB/s (disk alone %.0f MiB/s)"
          % (args.mib, base / 1024.0, peak / 1024.0, growth, rate, disk))
    print("mib=%d rss_growth_mib=%.1f upload_mib_s=%.0f disk_mib_s=%.0f ratio_upload=%.2f"
          % (args.mib, growth, rate, disk, rate / disk))


if __name__ == "__main__":
    main()
