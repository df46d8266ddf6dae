#!/usr/bin/env python3
"""Update distribution benchmark (issue 11 item 10): (a) update checks per second and aegisd's RSS while a fleet
polls (checks.py), (b) image download throughput (download.py), each next to nginx in the same run. Prints a table,
and as the last line key=value figures: ratio_check (aegisd 304s / nginx's 200s of a small static file, target
>= 0.9), ratio_download (target >= 0.8), and the RSS figures (rss_growth_pass2_kib: growth over a second full
pass of the fleet, rss_growth_load_kib: after the load window, both against the first pass).

(c) fleet-scale updates (fleet.py, issue 12 item 8): devices updated per second through one aegisd with 1 MiB
images, next to the same fleet's attestation rate, and aegis-sim's peak RSS (devices_updated_per_s,
update_vs_attest, sim_rss_mib_10k).

usage: bench/update/run.py [--build build] [--devices 10000] [--conns 20] [--seconds 5] [--rounds 5]
                           [--mib 64] [--download-rounds 7] [--fleet-devices 10000]
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checks  # noqa: E402


def download(build, mib, rounds):
    """download.py's key=value figures (it runs its own daemon)."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "download.py"), "--build", build, "--mib", str(mib),
                        "--rounds", str(rounds)], capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError("download.py failed: %s" % p.stderr[-3000:])
    print(p.stdout, end="", flush=True)
    return {k: float(v) for k, v in (x.split("=") for x in p.stdout.strip().splitlines()[-1].split())}


def fleet(build, devices):
    """fleet.py's key=value figures (it runs its own daemon and simulator)."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "fleet.py"), "--build", build, "--devices", str(devices)],
                       capture_output=True, text=True, timeout=7200)
    if p.returncode != 0:
        raise RuntimeError("fleet.py failed: %s" % p.stderr[-3000:])
    print(p.stdout, end="", flush=True)
    return {k: float(v) for k, v in (x.split("=") for x in p.stdout.strip().splitlines()[-1].split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("AEGIS_BUILD", "build"))
    checks.add_args(ap)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--download-rounds", type=int, default=7)
    ap.add_argument("--fleet-devices", type=int, default=10000, help="fleet.py's fleet (0: skip it)")
    a = ap.parse_args()
    c, _ = checks.run(a)
    dl = download(a.build, a.mib, a.download_rounds)
    fl = fleet(a.build, a.fleet_devices) if a.fleet_devices > 0 else {}
    print()
    print("| measurement | aegisd | nginx | ratio |")
    print("|---|---|---|---|")
    print("| update checks, %d keep-alive mTLS connections (304 / nginx 200 of %d bytes) | %s/s | %s/s | %.2f |"
          % (c["conns"], c["answer_bytes"], "{:,.0f}".format(c["aegisd_checks_s"]),
             "{:,.0f}".format(c["nginx_200_s"]), c["ratio_check"]))
    print("| update checks (nginx also 304) | %s/s | %s/s | %.2f |"
          % ("{:,.0f}".format(c["aegisd_checks_s"]), "{:,.0f}".format(c["nginx_304_s"]), c["ratio_check_304"]))
    print("| CPU per check (nginx: per 200) | %.0f µs | %.0f µs | %.2f |"
          % (c["aegisd_cpu_us"], c["nginx_200_cpu_us"], c["ratio_check_cpu"]))
    print("| image download, %d MiB, one at a time | %.0f MiB/s | %.0f MiB/s | %.2f |"
          % (a.mib, dl["aegisd_mib_s"], dl["nginx_mib_s"], dl["ratio_download"]))
    print("| image download, several at once | %.0f MiB/s | %.0f MiB/s | %.2f |"
          % (dl["aegisd_mib_s_parallel"], dl["nginx_mib_s_parallel"], dl["ratio_download_parallel"]))
    print()
    print("%d devices provisioned and attested in %.0f s; full passes (a connection per device) %.1f s (200) and "
          "%.1f s (304)" % (c["devices"], c["provision_s"], c["pass1_s"], c["pass2_s"]))
    print("aegisd RSS: %.1f MiB before the passes, %.1f MiB after the first (every answer built and cached), %+.1f MiB "
          "after a second pass, %+.1f MiB after the load window"
          % (c["rss_start_kib"] / 1024, c["rss_pass1_kib"] / 1024, c["rss_growth_pass2_kib"] / 1024,
             c["rss_growth_load_kib"] / 1024))
    print()
    out = {"ratio_check": c["ratio_check"], "ratio_check_304": c["ratio_check_304"],
           "ratio_check_cpu": c["ratio_check_cpu"],
           "ratio_download": dl["ratio_download"], "ratio_download_parallel": dl["ratio_download_parallel"],
           "checks_per_s": c["aegisd_checks_s"], "nginx_per_s": c["nginx_200_s"], "devices": c["devices"],
           "rss_start_kib": c["rss_start_kib"], "rss_pass1_kib": c["rss_pass1_kib"],
           "rss_growth_pass2_kib": c["rss_growth_pass2_kib"],
           "rss_growth_load_kib": c["rss_growth_load_kib"], "download_rss_growth_mib": dl["rss_growth_mib"]}
    if fl:
        print("| devices updated through every step (1 MiB image), %d devices in one aegis-sim | %.1f/s | "
              "attestations alone %.1f/s | %.2f |" % (fl["devices"], fl["devices_updated_per_s"], fl["attest_per_s"],
                                                    fl["update_vs_attest"]))
        out.update({"devices_updated_per_s": fl["devices_updated_per_s"], "update_vs_attest": fl["update_vs_attest"],
                    "sim_rss_mib_10k": fl["sim_rss_mib_10k"]})
    print(" ".join("%s=%s" % (k, "%d" % v if isinstance(v, int) else "%.2f" % v) for k, v in out.items()))


if __name__ == "__main__":
    main()
