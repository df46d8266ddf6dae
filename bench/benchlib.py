"""What the benchmarks under bench/ share: a fleet of simulated devices, provisioned, registered with the tenant
(import and reference values) and attested once, so each holds a certificate."""

import json
import os
import subprocess


def provision_fleet(d, sim, fleet, devices):
    """aegis-sim provision + devices import + the fleet's reference values + one attestation run, against the
    running daemon d (a tests/integration/harness.Daemon). The credentials are in fleet/dev-NNNNN/storage/."""
    subprocess.run([sim, "provision", "--devices", str(devices), "--dir", fleet], check=True,
                   stdout=subprocess.DEVNULL)
    d.ctl("devices", "import", os.path.join(fleet, "import.json"))
    for rv in json.load(open(os.path.join(fleet, "refvals.json"))):
        opts = ["refvals", "add", "--stage", rv["stage"], "--component", rv["component"], "--version",
                rv["version"], "--svn", str(rv["svn"]), "--digest", rv["digest"]]
        (d.ctl_local(*opts) if rv["stage"] != "app" else d.ctl(*opts))
    subprocess.run([sim, "run", "--dir", fleet, "--server", d.url(), "--cacert", d.cacert, "--no-whoami",
                    "--json"], check=True, stdout=subprocess.DEVNULL)
