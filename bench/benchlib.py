"""What the benchmarks under bench/ share: a fleet of simulated devices, provisioned, registered with the tenant
(import and reference values) and attested once, so each holds a certificate."""

import json
import os
import shutil
import socket
import subprocess
import time


def provision_fleet(d, sim, fleet, devices, group=None, attest=True):
    """aegis-sim provision + devices import (into device group `group` when given) + the fleet's reference values
    + (with attest) one attestation run, against the running daemon d (a tests/integration/harness.Daemon). The
    credentials are in fleet/dev-NNNNN/storage/."""
    subprocess.run([sim, "provision", "--devices", str(devices), "--dir", fleet], check=True,
                   stdout=subprocess.DEVNULL)
    d.ctl("devices", "import", os.path.join(fleet, "import.json"), *(["--group", str(group)] if group else []))
    for rv in json.load(open(os.path.join(fleet, "refvals.json"))):
        opts = ["refvals", "add", "--stage", rv["stage"], "--component", rv["component"], "--version",
                rv["version"], "--svn", str(rv["svn"]), "--digest", rv["digest"]]
        p = d.ctl_local(*opts) if rv["stage"] != "app" else d.ctl(*opts)
        if p.returncode != 0:
            raise RuntimeError("refvals add failed: %s" % p.stderr)
    if not attest:
        return
    subprocess.run([sim, "run", "--dir", fleet, "--server", d.url(), "--cacert", d.cacert, "--no-whoami",
                    "--json"], check=True, stdout=subprocess.DEVNULL)


def tree_pids(pid):
    """pid and all its descendants (threads' children included)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return pids


def cpu_seconds(pids):
    """User + system CPU seconds of the processes pids so far (those gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def fleet_certs(fleet, devices, certdir):
    """The fleet's device certificates and keys (after provision_fleet) as certdir/dev-I.crt and .key, the layout
    of bench/conns/connload's --certdir."""
    os.makedirs(certdir)
    for i in range(devices):
        cred = json.load(open(os.path.join(fleet, "dev-%05d" % i, "storage", "credential.json")))
        with open(os.path.join(certdir, "dev-%d.crt" % i), "w") as f:
            f.write(cred["certificate"])
        with open(os.path.join(certdir, "dev-%d.key" % i), "w") as f:
            f.write(cred["key"])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nginx(tmp, cert, key, page, body, worker_connections=4096, main_extra="", server_extra=""):
    """nginx serving the one file `page` (text `body`) over TLS on a free loopback port, with the daemon's
    certificate; main_extra / server_extra are more directives for the main and server blocks. Returns
    (process, port) once the port accepts connections (at most 10 s)."""
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    # nginx's workers run unprivileged: the document root must be readable by them.
    os.chmod(tmp, 0o755)
    os.chmod(root, 0o755)
    path = os.path.join(root, page)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o644)
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes %d;
%s
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections %d; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%d ssl%s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        %s
        root %s;
    }
}
""" % (os.cpu_count(), main_extra, tmp, tmp, worker_connections, port,
       " backlog=4096" if worker_connections > 4096 else "", cert, key, server_extra, root))
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


def stop(nginx, d, tmp):
    """Stops nginx (a process, or None), cleans up the daemon d and removes the folder tmp."""
    if nginx is not None:
        nginx.terminate()
        nginx.wait()
    d.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
