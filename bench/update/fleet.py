#!/usr/bin/env python3
"""Fleet-scale update benchmark (issue 12 item 8): devices updated per second through one aegisd, and the
simulator's memory for the fleet.

1. aegisd (rate limits raised); a fleet of --devices simulated devices (default 10,000) provisioned, imported into
   one device group, given the fleet's reference values, and attested once by `aegis-sim run` (benchlib): that run
   is the reference, attestations per second with a new TLS connection each, measured in the same run.
2. The tenant's offline TUF keys; an app image of --image-mib MiB (1) uploaded as a reference value and signed; a
   deployment of it to the group (waves [100], soak 0).
3. `aegis-sim update` for the whole fleet in one process (--concurrency devices powered at once, the rest a timer
   and a small struct each), --time-scale 3600 so the 60 s health period takes 17 ms: every device boots, attests,
   asks the director, verifies both TUF chains, downloads the image, checks it, installs it into its inactive
   slot, reboots on trial, attests with the new measurements, commits and reports each step. The run ends when every
   device committed the release.

devices_updated_per_s = devices / the update run's wall time; update_vs_attest = devices_updated_per_s /
attestations per second of step 1 (an update costs two attestations, a download and the checks, so about 0.5 is
the ceiling); sim_rss_mib_10k = the aegis-sim process's peak RSS during the update run (ru_maxrss) with --devices
devices (the issue's aim: 10,000 devices under 2 GiB).

usage: bench/update/fleet.py [--build build] [--devices 10000] [--concurrency 64] [--image-mib 1]
Last output line: key=value figures.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, ".."))
import benchlib  # noqa: E402

CONFIG = {"challenge_rate": "1000000", "challenge_burst": "1000000", "per_ip_connections": "0",
          "max_connections": "4096", "telemetry_rate": "1000000", "telemetry_burst": "1000000",
          "update_status_rate": "1000000", "update_status_burst": "1000000"}


def release(d, c, tmp, product, mib):
    """Offline keys, the release image (also its reference value), signed; returns (keydir, image)."""
    keydir = os.path.join(tmp, "ota-keys")
    p = d.ctl("ota", "keys", "init", "--dir", keydir, "--yes")
    assert p.returncode == 0, p.stdout + p.stderr
    q = urllib.parse.urlencode({"product_id": product, "component": "aegis-app", "kind": "app", "version": "1.1.0",
                                "svn": 2, "hardware": "sim-hw", "register_refval": "true"})
    st, _, img = c.api("POST", "/v1/images?" + q, os.urandom(mib << 20), content_type="application/octet-stream")
    assert st == 201, img
    p = d.ctl("ota", "sign", "--dir", keydir, "--yes")
    assert p.returncode == 0, p.stdout + p.stderr
    return keydir, img


def roots(c, tmp):
    paths = {}
    for repo in ("repo", "director"):
        st, _, raw = c.request("GET", "/v1/ota/%s/1.root.json" % repo)
        assert st == 200, raw[:200]
        paths[repo] = os.path.join(tmp, "%s-1.root.json" % repo)
        with open(paths[repo], "wb") as f:
            f.write(raw)
    return paths


def measure(a):
    import harness
    out = {"devices": a.devices}
    d = harness.Daemon(config=CONFIG, log_level="warn")
    tmp = tempfile.mkdtemp(prefix="aegis-bench-fleet-")
    sim = os.path.join(a.build, "aegis-sim")
    try:
        d.start()
        c = d.client()
        st, _, prod = c.api("POST", "/v1/products", {"name": "bench"})
        assert st == 201, prod
        st, _, grp = c.api("POST", "/v1/device-groups", {"name": "fleet", "product_id": prod["id"]})
        assert st == 201, grp
        fleet = os.path.join(tmp, "fleet")
        t0 = time.monotonic()
        benchlib.provision_fleet(d, sim, fleet, a.devices, group=grp["id"])
        out["provision_attest_s"] = time.monotonic() - t0
        # the reference: the same fleet attesting again, a new TLS connection per device
        p = subprocess.run([sim, "run", "--dir", fleet, "--server", d.url(), "--cacert", d.cacert, "--no-whoami",
                            "--concurrency", str(a.concurrency), "--json"], capture_output=True, text=True,
                           check=True)
        ref = json.loads(p.stdout)
        out["attest_per_s"] = ref["devices_per_s"]
        c = d.client()  # the first connection idled past the daemon's connection_timeout meanwhile
        _, img = release(d, c, tmp, prod["id"], a.image_mib)
        paths = roots(c, tmp)
        st, _, dep = c.api("POST", "/v1/deployments", {"group_id": grp["id"], "name": "bench",
                                                       "images": [img["sha256"]], "waves": [100],
                                                       "soak_seconds": 0, "failure_threshold_pct": 50,
                                                       "min_attempts": 1000000})
        assert st == 201, dep
        t0 = time.monotonic()
        p = subprocess.run([sim, "update", "--dir", fleet, "--server", d.url(), "--cacert", d.cacert, "--json",
                            "--product-id", str(prod["id"]), "--image-root", paths["repo"], "--director-root",
                            paths["director"], "--time-scale", "3600", "--concurrency", str(a.concurrency),
                            "--until-version", "aegis-app@1.1.0", "--duration", "3600", "--no-fsync"],
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
        assert p.returncode == 0, p.stderr[-3000:]
        s = json.loads(p.stdout)
        updated = sum(1 for r in s["results"] if r["outcome"] == "updated")
        assert updated == a.devices, (updated, s["waves"])
        out["update_s"] = wall
        out["devices_updated_per_s"] = a.devices / wall
        out["update_vs_attest"] = out["devices_updated_per_s"] / out["attest_per_s"]
        out["sim_rss_mib_10k"] = s["peak_rss_kib"] / 1024.0
        out["aegisd_rss_mib"] = benchlib_rss(d)
    finally:
        d.stop()
        d.cleanup()
        subprocess.run(["rm", "-rf", tmp])
    return out


def benchlib_rss(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--image-mib", type=int, default=1)
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.environ["AEGIS_BUILD"] = a.build
    out = measure(a)
    print("%d devices: provisioned and attested in %.0f s; attestation alone %.0f devices/s; update of %d MiB "
          "through all steps in %.0f s: %.1f devices/s (%.2f of the attestation rate); aegis-sim peak RSS %.0f MiB, "
          "aegisd peak RSS %.0f MiB"
          % (a.devices, out["provision_attest_s"], out["attest_per_s"], a.image_mib, out["update_s"],
             out["devices_updated_per_s"], out["update_vs_attest"], out["sim_rss_mib_10k"], out["aegisd_rss_mib"]))
    print(" ".join("%s=%s" % (k, "%d" % v if isinstance(v, int) else "%.2f" % v) for k, v in out.items()))


if __name__ == "__main__":
    main()
