#!/usr/bin/env python3
"""make compose-test: deploy/docker-compose.yml run for real (issue 15 item 3).

Builds the image with podman from the local base image (tests/deploy/podman-env.sh made it; the Makefile
target sources that file first), serves podman's docker API on a socket of its own, and runs docker-compose
1.29 against it: `up` with 3 fleet replicas, waits (bounded) for every one-shot service to finish, then checks
through the manufacturer API (the published port on 127.0.0.1, the tenant's admin token from the secrets
directory) that every device of every replica attested, reported failures and committed the staged update;
and what the containers are: aegisd as the non-root user, its HEALTHCHECK passing, each volume and secret
mounted only where it belongs, no key or token in the image. Then aegisd is stopped (it must drain and exit
0) and `down -v` removes the containers, the volumes and the network; the socket service is stopped.
Prints how long each phase took. Exit status 0 when every check passed.

Environment: AEGIS_COMPOSE_DEVICES (devices per replica, 20), AEGIS_COMPOSE_BASE (the image to build from,
localhost/debian:bookworm), AEGIS_COMPOSE_NO_CACHE=1 (build without podman's layer cache: the time a fresh
machine such as CI's takes), AEGIS_COMPOSE_KEEP=1 (leave the project up after the checks, for a look).
"""
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE_FILE = os.path.join(ROOT, "deploy", "docker-compose.yml")
PROJECT = "aegis-compose-test-%d" % os.getpid()
IMAGE = "localhost/aegis-compose:test"
BUILD_IMAGE = "localhost/aegis-compose:test-build"  # the build stage, tagged: its old versions can go
REPLICAS = 3
DEVICES = int(os.environ.get("AEGIS_COMPOSE_DEVICES", "20"))
BASE = os.environ.get("AEGIS_COMPOSE_BASE", "localhost/debian:bookworm")
SOAK = 15  # seconds per wave: the replicas take the update while the rollout is still spreading
FLOW_TIMEOUT = 420
UID = 10001
# One run at a time per host: the image tags are fixed (the build stage's tag is the layer cache, a run removes
# the versions its build replaced), so a second run waits for the first (bounded) instead of removing the image
# the first one's containers use. The project name, the port and the directories are per run anyway.
LOCK_FILE = "/var/tmp/aegis-compose-test.lock"
LOCK_WAIT = 1800
# The capabilities each service keeps (docker-compose.yml: cap_drop ALL; init adds these for its root start).
CAPS = {"init": {"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"}}

failures = []
timings = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def run(cmd, timeout, env=None, ok=True):
    """Runs cmd; its output (stdout and stderr together) is returned. Raises when ok and it failed."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       env=env)
    if ok and p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:]))
    return p.stdout


class Terminated(BaseException):
    """SIGTERM or SIGHUP (a CI job's timeout, a closed terminal): unwinds main() so that its cleanup runs."""


cleaning = False


def on_signal(signum, frame):
    if not cleaning:  # once cleaning up, finish that: a second signal must not leave half a project behind
        raise Terminated("signal %d" % signum)


def lock():
    """Takes the host's compose-test lock (held until the process exits), waiting at most LOCK_WAIT s."""
    f = open(LOCK_FILE, "a")
    deadline = time.monotonic() + LOCK_WAIT
    said = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError("another compose-test held %s for %d s" % (LOCK_FILE, LOCK_WAIT))
            if not said:
                print("compose-test: waiting for another run on this host (%s)" % LOCK_FILE, flush=True)
                said = True
            time.sleep(2)


def landlock_abi():
    """The host kernel's Landlock ABI version (0: none): the containers share that kernel."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): 444 on x86-64 and arm64 alike.
        return max(libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)), 0)
    except (OSError, AttributeError):
        return 0


def phase(name, fn):
    t = time.monotonic()
    try:
        return fn()
    finally:
        timings.append((name, time.monotonic() - t))
        print("compose-test: %s took %.1f s" % (name, timings[-1][1]), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Project:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "podman.sock")
        self.secrets = os.path.join(tmp, "secrets")
        self.backups = os.path.join(tmp, "backups")
        os.mkdir(self.backups)
        self.port = free_port()
        self.service = None
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock, AEGIS_IMAGE=IMAGE,
                        AEGIS_SECRETS=self.secrets, AEGIS_BACKUPS=self.backups, AEGIS_PORT=str(self.port),
                        AEGIS_BASE=BASE, AEGIS_FLEET_DEVICES=str(DEVICES), AEGIS_SOAK=str(SOAK))

    def start_service(self):
        log = open(os.path.join(self.tmp, "podman-service.log"), "w")
        self.service = subprocess.Popen(["podman", "system", "service", "--time=0", "unix://" + self.sock],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(self.sock)
                    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
                    if b"OK" in s.recv(4096):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("podman system service did not answer on " + self.sock)

    def stop_service(self):
        if self.service and self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
                self.service.wait()

    def compose(self, *args, timeout=300, ok=True):
        out = run(["docker-compose", "-f", COMPOSE_FILE, "-p", PROJECT] + list(args), timeout, self.env, ok)
        # Before init has written them, compose warns on every command that the secret files do not exist.
        return "\n".join(l for l in out.splitlines() if "undefined secret file" not in l)

    def containers(self):
        """{name: podman inspect object} of the project's containers."""
        ids = run(["podman", "ps", "-a", "-q", "--filter", "label=com.docker.compose.project=" + PROJECT], 60)
        ids = ids.split()
        if not ids:
            return {}
        return {c["Name"]: c for c in json.loads(run(["podman", "inspect"] + ids, 60))}


def service_of(c):
    return c["Config"]["Labels"].get("com.docker.compose.service")


def image_id(tag):
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True,
                         text=True, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else None


def build():
    """Builds the build stage and the image, each tagged; an earlier version of either (this test's own, by
    its tag) is removed once replaced, so that runs do not pile up images in podman's shared store."""
    old = {tag: image_id(tag) for tag in (BUILD_IMAGE, IMAGE)}
    cmd = ["podman", "build", "-q", "--format", "docker", "--build-arg", "BASE=" + BASE,
           "-f", os.path.join(ROOT, "deploy", "docker", "Dockerfile")]
    no_cache = ["--no-cache"] if os.environ.get("AEGIS_COMPOSE_NO_CACHE") == "1" else []
    run(cmd + no_cache + ["--target", "build", "-t", BUILD_IMAGE, ROOT], 1800)
    run(cmd + ["-t", IMAGE, ROOT], 1800)  # the build stage from the cache just made
    for tag, was in old.items():
        if was and was != image_id(tag):
            run(["podman", "rmi", was], 120, ok=False)


def wait_flow(p):
    """Waits until init, release and every fleet replica have exited (bounded); returns the containers."""
    deadline = time.monotonic() + FLOW_TIMEOUT
    while True:
        cs = p.containers()
        one_shot = [c for c in cs.values() if service_of(c) != "aegisd"]
        done = [c for c in one_shot if c["State"]["Status"] in ("exited", "stopped")]
        if len(one_shot) == 2 + REPLICAS and len(done) == len(one_shot):
            return cs
        if time.monotonic() > deadline:
            check(False, "the flow did not end within %d s: %s" % (FLOW_TIMEOUT, sorted(
                (n, c["State"]["Status"]) for n, c in cs.items())))
            return cs
        time.sleep(2)


class Api:
    def __init__(self, p):
        self.base = "https://127.0.0.1:%d" % p.port
        self.ctx = ssl.create_default_context(cafile=os.path.join(p.secrets, "root.crt"))
        with open(os.path.join(p.secrets, "admin.token")) as f:
            self.token = f.read().strip()

    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            return json.load(r)

    def all(self, path):
        items, cursor = [], None
        while True:
            sep = "&" if "?" in path else "?"
            page = self.get(path + sep + "limit=1000" + ("&cursor=" + cursor if cursor else ""))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def check_exits(cs):
    fleets = [c for c in cs.values() if service_of(c) == "fleet"]
    check(len(fleets) == REPLICAS, "%d fleet replicas, not %d" % (len(fleets), REPLICAS))
    for name, c in sorted(cs.items()):
        if service_of(c) == "aegisd":
            check(c["State"]["Status"] == "running", "aegisd is %s" % c["State"]["Status"])
        else:
            check(c["State"]["ExitCode"] == 0, "%s exited %d" % (name, c["State"]["ExitCode"]))
    return {c["Config"]["Hostname"] for c in fleets}


def check_devices(api, hostnames):
    """Every device of every replica: registered by its replica, attested, reported, updated."""
    deployments = api.get("/v1/deployments")["items"]
    if not check(len(deployments) == 1, "one deployment, not %d" % len(deployments)):
        return
    dep = deployments[0]
    # Every device ran the release once its wave came: the rollout is in its last wave or completed,
    # never halted by failures.
    check(dep["state"] in ("running", "completed"), "the deployment is %s (%s)" % (dep["state"], dep.get("reason")))
    print("compose-test: deployment %d: %s, wave %s (%s)" % (dep["id"], dep["state"], dep.get("current_wave"),
                                                        dep.get("reason")), flush=True)
    devices = api.all("/v1/devices")
    by_fleet = {}
    for d in devices:
        by_fleet.setdefault(d["tags"].get("fleet"), []).append(d)
    check(set(by_fleet) == hostnames, "devices tagged by %s, the replicas are %s" % (sorted(by_fleet, key=str),
                                                                                    sorted(hostnames)))
    waves = set()
    for fleet, ds in sorted(by_fleet.items(), key=lambda kv: str(kv[0])):
        check(len(ds) == DEVICES, "replica %s has %d devices, not %d" % (fleet, len(ds), DEVICES))
        attested = reported = updated = 0
        for d in ds:
            att = d.get("attestation") or {}
            attested += d["state"] == "active" and att.get("result") == "pass"
            reports = api.get("/v1/devices/%s/reports?limit=1" % d["id"])
            reported += reports["summary"]["reports"] > 0 and bool(reports["items"])
            attempts = api.get("/v1/devices/%s/update-attempts" % d["id"])["items"]
            if attempts and attempts[0]["state"] == "committed" and attempts[0]["deployment_id"] == dep["id"]:
                updated += 1
                waves.add(attempts[0]["wave"])
        print("compose-test: replica %s: %d devices, %d attested, %d reported failures, %d updated" %
              (fleet, len(ds), attested, reported, updated), flush=True)
        check(attested == len(ds) == reported == updated, "replica %s: not every device went through" % fleet)
    # The update was staged: devices took it in more than one wave (60 devices in waves 10,50,100 %).
    check(len(waves) >= 2, "the devices updated in waves %s only" % sorted(waves))


def check_containers(p, cs):
    """What each container is and holds: the user, the health check, the mounts."""
    img = json.loads(run(["podman", "image", "inspect", IMAGE], 60))[0]
    cfg = img.get("Config", {})
    check(cfg.get("User") == "aegis", "the image's user is %r" % cfg.get("User"))
    hc = json.dumps(img.get("Healthcheck") or cfg.get("Healthcheck") or {})
    check("/healthz" in hc, "the image has no HEALTHCHECK on /healthz: %s" % hc)
    aegisd = [n for n, c in cs.items() if service_of(c) == "aegisd"]
    if check(len(aegisd) == 1, "one aegisd container, not %d" % len(aegisd)):
        hc_run = subprocess.run(["podman", "healthcheck", "run", aegisd[0]], capture_output=True, text=True,
                                timeout=60)
        check(hc_run.returncode == 0, "podman healthcheck run: %s %s" % (hc_run.stdout, hc_run.stderr))
        # aegisd and its signer processes (/proc of the container's PID namespace): all the service user.
        uids = run(["podman", "exec", aegisd[0], "sh", "-c", "grep -h '^Uid:' /proc/[0-9]*/status"], 60)
        check(uids and all(l.split()[1:] == [str(UID)] * 4 for l in uids.splitlines()),
              "processes in the aegisd container not all uid %d:\n%s" % (UID, uids))
    allowed = {"state": {"init", "aegisd"}, "manufacturer-keys": {"release"}, "factory": {"release", "fleet"}}
    for name, c in cs.items():
        for m in c.get("Mounts", []):
            vol = (m.get("Name") or "").replace(PROJECT + "_", "", 1)
            if vol in allowed:
                check(service_of(c) in allowed[vol], "volume %s is mounted in %s" % (vol, name))
            src = os.path.basename(m.get("Source") or "")
            if service_of(c) == "fleet":
                check(src != "admin.token", "the fleet has the admin token (%s)" % name)
    scan = subprocess.run(["podman", "run", "--rm", "--no-healthcheck", "--user", "root", "--entrypoint", "sh",
                           IMAGE, "-c", "find / -xdev \\( -name '*.key' -o -name '*.token' -o -name '*.ed25519' "
                           "-o -type f -perm /6000 \\) -print; find /var/lib/aegis /var/lib/aegis-release "
                           "/var/lib/aegis-factory /var/lib/aegis-fleet -mindepth 1"],
                          capture_output=True, text=True, timeout=120)
    check(scan.returncode == 0 and scan.stdout.strip() == "",
          "the image holds keys, tokens, state or setuid/setgid files (or the scan failed):\n" + scan.stdout +
          scan.stderr)
    check_hardening(p, cs, aegisd)


def check_hardening(p, cs, aegisd):
    """docker-compose.yml's hardening, as the runtime applied it: the capabilities each container kept (its
    bounding set), no-new-privileges, the read-only root filesystem; in the running aegisd, its kernel view
    of the same, and Landlock hiding the keys from it where the kernel has Landlock."""
    for name, c in sorted(cs.items()):
        want = CAPS.get(service_of(c), set())
        check(set(c.get("BoundingCaps") or []) == want, "%s keeps capabilities %s, not %s" % (
            name, sorted(c.get("BoundingCaps") or []), sorted(want)))
        hc = c["HostConfig"]
        check("no-new-privileges" in (hc.get("SecurityOpt") or []), "%s: no no-new-privileges in %s" % (
            name, hc.get("SecurityOpt")))
        check(hc.get("ReadonlyRootfs") is True, "%s: the root filesystem is writable" % name)
    if len(aegisd) != 1:
        return
    status = run(["podman", "exec", aegisd[0], "grep", "-E", "^(CapBnd|CapEff|NoNewPrivs):", "/proc/1/status"], 60)
    check(sorted(status.split()) == sorted(["CapBnd:", "CapEff:", "NoNewPrivs:", "0" * 16, "0" * 16, "1"]),
          "aegisd (PID 1 of its container) is not without capabilities and no_new_privs:\n" + status)
    # A directory of the image that the service user owns (the fleets' mount point, not mounted here): only
    # the read-only root filesystem can refuse the write.
    wr = subprocess.run(["podman", "exec", aegisd[0], "touch", "/var/lib/aegis-fleet/x"],
                        capture_output=True, text=True, timeout=60)
    check(wr.returncode != 0 and "Read-only file system" in wr.stderr,
          "aegisd's container can write its root filesystem: %s" % wr.stderr)
    log = p.compose("logs", "--no-color", "aegisd", timeout=60)
    abi = landlock_abi()
    if abi:
        check('msg="keys isolated" mechanism=landlock' in log,
              "the kernel has Landlock (ABI %d) but aegisd's log does not say its keys are isolated" % abi)
    else:
        print("compose-test: this kernel has no Landlock: key isolation not checked", flush=True)


def check_backup(p):
    """docs/operations.md's backup of a compose deployment, run in the running one: aegisctl in the aegisd
    container writes the backup into the bind-mounted backups directory, MANIFEST.json last."""
    out = p.compose("exec", "-T", "aegisd", "aegisctl", "--config", "/etc/aegis/aegisd.conf", "backup",
                    "/backups/compose-test", timeout=120)
    print("compose-test: " + out.strip(), flush=True)
    manifest = os.path.join(p.backups, "compose-test", "MANIFEST.json")
    if check(os.path.isfile(manifest), "the backup has no MANIFEST.json: %s" % out):
        with open(manifest) as f:
            names = [e.get("path") or e.get("name") for e in json.load(f).get("files", [])]
        check("aegis.db" in names, "the backup's manifest does not list aegis.db: %s" % names[:5])


def stop_and_down(p):
    """aegisd drains and exits 0 on SIGTERM; down -v leaves nothing of the project behind."""
    # The fleets' anonymous volumes (their devices' state) go with down -v too.
    anon = {m["Name"] for c in p.containers().values() for m in c.get("Mounts", [])
            if m.get("Type") == "volume" and not m.get("Name", "").startswith(PROJECT)}
    t = time.monotonic()
    p.compose("stop", "-t", "10", "aegisd", timeout=60)
    print("compose-test: stop aegisd took %.1f s" % (time.monotonic() - t), flush=True)
    cs = p.containers()
    aegisd = [c for c in cs.values() if service_of(c) == "aegisd"]
    if aegisd:
        check(aegisd[0]["State"]["ExitCode"] == 0, "aegisd exited %d" % aegisd[0]["State"]["ExitCode"])
        log = p.compose("logs", "--no-color", "aegisd", timeout=60)
        check("draining" in log, "aegisd's log does not show the drain")
    p.compose("down", "-v", "--remove-orphans", timeout=120)
    check(not p.containers(), "containers left after down")
    vols = run(["podman", "volume", "ls", "-q"], 60).split()
    check(not [v for v in vols if v.startswith(PROJECT) or v in anon], "volumes left after down")
    nets = run(["podman", "network", "ls", "--format", "{{.Name}}"], 60).split()
    check(not [n for n in nets if n.startswith(PROJECT)], "networks left after down")


def main():
    global cleaning
    t0 = time.monotonic()
    keep = os.environ.get("AEGIS_COMPOSE_KEEP") == "1"
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    held = lock()
    tmp = tempfile.mkdtemp(prefix="aegis-compose-")
    p = Project(tmp)
    up = False
    try:
        phase("build (podman build)", build)
        phase("podman system service", p.start_service)
        up = True
        phase("up --scale fleet=%d" % REPLICAS, lambda: p.compose(
            "up", "-d", "--no-build", "--scale", "fleet=%d" % REPLICAS))
        cs = phase("the fleets' flow", lambda: wait_flow(p))
        print(p.compose("logs", "--no-color", "init", "release", "fleet", timeout=60), flush=True)
        hostnames = check_exits(cs)
        phase("checks through the API", lambda: check_devices(Api(p), hostnames))
        phase("checks of the containers", lambda: check_containers(p, cs))
        phase("aegisctl backup in aegisd's container", lambda: check_backup(p))
        if not keep:
            phase("stop aegisd, down -v", lambda: stop_and_down(p))
            up = False
    except (Exception, Terminated, KeyboardInterrupt) as e:  # a step could not run: report it, clean up
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        cleaning = True
        if keep:
            print("compose-test: left up: DOCKER_HOST=unix://%s docker-compose -f %s -p %s ...; the socket "
                  "service is pid %s" % (p.sock, COMPOSE_FILE, PROJECT, p.service and p.service.pid))
        else:
            if up:
                if failures:
                    print(p.compose("logs", "--no-color", "--tail", "40", timeout=60, ok=False), flush=True)
                p.compose("down", "-v", "--remove-orphans", timeout=120, ok=False)
            p.stop_service()
            shutil.rmtree(tmp, ignore_errors=True)
        held.close()
    total = time.monotonic() - t0
    print("compose-test: " + ", ".join("%s %.0f s" % t for t in timings) + "; total %.0f s" % total)
    print("compose-test: %s" % ("passed" if not failures else "%d check(s) failed" % len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
