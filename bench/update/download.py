#!/usr/bin/env python3
"""Image download benchmark (issue 11 item 10b): throughput of GET /v1/device/images/<sha256> over mutual TLS
from aegisd, next to nginx serving a file of the same size over TLS, in the same run, to the same client (curl,
OpenSSL; one download at a time, then --parallel downloads at once). Each figure is the median of --rounds
downloads (alternating aegisd and nginx, so drift hits both), in MiB/s; aegisd's RSS is sampled during its
downloads. Both servers run on this machine with the client, so the figures are relative: the ratio is the
point.

Last output line: key=value figures, among them ratio_download (aegisd / nginx, one download) and
ratio_download_parallel.

usage: bench/update/download.py [--build build] [--mib 64] [--rounds 7] [--parallel 4] [--threads N]
                                [--set key=value]...
"""

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402
from test_images import rss_kib  # noqa: E402


def curl(url, cacert, cert=None, key=None, n=1):
    """n downloads of url at once (curl, to /dev/null); returns the aggregate MiB/s."""
    args = ["curl", "-sS", "--fail", "--cacert", cacert, "-o", "/dev/null", "-w", "%{size_download}\n"]
    if cert:
        args += ["--cert", cert, "--key", key]
    t0 = time.monotonic()
    procs = [subprocess.Popen(args + [url], stdout=subprocess.PIPE) for _ in range(n)]
    size = 0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("curl %s failed (%d)" % (url, p.returncode))
        size += int(out.split()[-1])
    return size / (time.monotonic() - t0) / (1 << 20)


class RssPeak:
    """Samples a process's VmRSS every 10 ms while running."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, rss_kib(pid), threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, rss_kib(self.pid))

    def close(self):
        self.stop.set()
        self.t.join()
        return self.peak


def setup_daemon(d, data, tmp):
    """A product, the image, a claimed device with a certificate in a group, and a deployment of the image to the
    group (a device downloads only images its director answer names): (sha256, cert, key)."""
    from test_mtls import Device
    c = d.client()
    st, _, prod = c.api("POST", "/v1/products", {"name": "bench"})
    assert st == 201, prod
    q = {"product_id": prod["id"], "component": "aegis-os", "kind": "os", "version": "1.0.0", "svn": 1,
         "hardware": "gw"}
    st, _, img = c.api("POST", "/v1/images?" + urllib.parse.urlencode(q), data,
                       content_type="application/octet-stream")
    assert st == 201, img
    st, _, grp = c.api("POST", "/v1/device-groups", {"name": "bench", "product_id": prod["id"]})
    assert st == 201, grp
    dev = Device(tmp, "bench-dev")
    st, _, body = c.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}], "claim": True,
                                                       "group_id": grp["id"]})
    assert st in (200, 201), body
    d.ota_publish(os.path.join(tmp, "ota-keys"))
    st, _, body = c.api("POST", "/v1/deployments", {"group_id": grp["id"], "name": "bench", "images": [img["sha256"]],
                                                    "waves": [100], "soak_seconds": 0, "failure_threshold_pct": 50,
                                                    "min_attempts": 1})
    assert st == 201, body
    tid = d.tenant_ids["acme"]
    base = os.path.join(d.pki_dir, "tenants", str(tid), "ca-1")
    return img["sha256"], dev.issue(base + ".crt", base + ".key", tid), dev.key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="aegisd threads (0: its default)")
    ap.add_argument("--set", action="append", default=[], help="more aegisd configuration, key=value")
    a = ap.parse_args()
    os.environ["AEGIS_BUILD"] = os.path.abspath(a.build)
    import harness

    size = a.mib << 20
    # Text (nginx's helper writes a text file): random letters, the same bytes for both servers.
    text = base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]
    config = {"image_max_bytes": size + 1}
    if a.threads:
        config["threads"] = a.threads
    config.update(dict(kv.split("=", 1) for kv in a.set))
    d = harness.Daemon(config=config, log_level="warn")
    tmp = tempfile.mkdtemp(prefix="aegis-bench-dl-")
    os.chmod(tmp, 0o755)  # nginx's unprivileged workers read the file below it
    nginx = None
    try:
        d.start()
        sha, cert, key = setup_daemon(d, text.encode(), tmp)
        nginx, nport = benchlib.start_nginx(os.path.join(tmp, "nginx"), os.path.join(d.pki_dir, "server.crt"),
                                            os.path.join(d.pki_dir, "server.key"), "image.bin", text)
        aurl = "https://localhost:%d/v1/device/images/%s" % (d.port, sha)
        nurl = "https://localhost:%d/image.bin" % nport
        curl(aurl, d.cacert, cert, key)  # warm the page cache and both servers
        curl(nurl, d.cacert)
        out = {}
        rss_base = rss_kib(d.proc.pid)
        peak = RssPeak(d.proc.pid)
        for n, tag in ((1, ""), (a.parallel, "_parallel")):
            aeg, ngx = [], []
            for _ in range(a.rounds):
                aeg.append(curl(aurl, d.cacert, cert, key, n))
                ngx.append(curl(nurl, d.cacert, n=n))
            out["aegisd_mib_s" + tag] = statistics.median(aeg)
            out["nginx_mib_s" + tag] = statistics.median(ngx)
            out["ratio_download" + tag] = out["aegisd_mib_s" + tag] / out["nginx_mib_s" + tag]
            print("%d download(s) at once of %d MiB: aegisd %.0f MiB/s (%s), nginx %.0f MiB/s (%s)"
                  % (n, a.mib, out["aegisd_mib_s" + tag], " ".join("%.0f" % x for x in aeg),
                     out["nginx_mib_s" + tag], " ".join("%.0f" % x for x in ngx)))
        out["rss_growth_mib"] = (peak.close() - rss_base) / 1024
        out["size_mib"] = a.mib
        print(" ".join("%s=%.2f" % kv for kv in out.items()))
    finally:
        benchlib.stop(nginx, d, tmp)


if __name__ == "__main__":
    main()
