"""The signer process (docs/architecture.md "The signer process", docs/security.md) against the real daemon:
aegisd holds no private key (its memory is searched for every key of the PKI directory, the signer's is the
control that the search finds them), cannot open the key files (open(2) called inside the running aegisd with
gdb), every issued certificate is in the signer's hash-chained issuance log, the per-tenant issuance rate is the
signer's own, a killed signer is restarted while aegisd answers 503 and loses nothing acknowledged, and the
signer exits when aegisd dies."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from cryptography.hazmat.primitives import serialization

import harness
import memscan
import test_sim
from test_attest import AttestBase

WAIT_S = 20


def children(pid):
    """The pids of pid's children (all its threads')."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signer_pids(daemon_pid):
    """(supervisor, worker) of a running aegisd; the worker may be None while it restarts."""
    sup = [p for p in children(daemon_pid) if comm(p) == "aegis-sigsup"]
    if len(sup) != 1:
        raise AssertionError("aegisd %d has %d signer supervisors" % (daemon_pid, len(sup)))
    workers = [p for p in children(sup[0]) if comm(p) == "aegis-signer" and alive(p)]
    return sup[0], (workers[0] if workers else None)


def key_needles(pki_dir):
    """{label: [byte strings]} for every private key under pki_dir: an EC key's scalar in both byte orders
    (OpenSSL and nettle keep big numbers as little-endian words), an ed25519 seed as bytes and as its hex."""
    needles = {}
    for root, _, files in os.walk(pki_dir):
        for name in files:
            path = os.path.join(root, name)
            label = os.path.relpath(path, pki_dir)
            if name.endswith(".key"):
                with open(path, "rb") as f:
                    pem = f.read()
                key = serialization.load_pem_private_key(pem, None)
                d = key.private_numbers().private_value.to_bytes(32, "big")
                # and the file's text, as a buffer it was read into would hold it: its first two base64 lines,
                # which carry the scalar (the last one is the public point's, also in the certificate)
                lines = [l for l in pem.splitlines() if l and not l.startswith(b"-----")]
                needles[label] = [d, d[::-1]] + lines[:2]
            elif name.endswith(".ed25519"):
                with open(path) as f:
                    seed_hex = json.load(f)["keyval"]["private"]
                needles[label] = [bytes.fromhex(seed_hex), seed_hex.encode()]
    return needles


def gdb_open(pid, path):
    """open(path, O_RDONLY) called inside the running process pid (gdb attaches, calls, detaches), and close() of
    what it opened; returns (fd, errno). The path is written into a buffer malloc'd and freed in the process: a
    string literal in a gdb call would be left allocated there (a leak under LeakSanitizer)."""
    cmds = ["set $p = (char *)malloc(%d)" % (len(path) + 1),
            'set {char[%d]}$p = "%s"' % (len(path) + 1, path),
            "set $fd = (int)open($p, 0)",
            "set $err = (int)*(int *)__errno_location()",
            "print $fd", "print $err",
            "call (void)free($p)",
            "call (int)close($fd)"]  # close(-1) is a harmless EBADF
    argv = ["gdb", "-p", str(pid), "-batch", "-nx"]
    for c in cmds:
        argv += ["-ex", c]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    vals = [l.split("=", 1)[1].strip() for l in p.stdout.splitlines() if l.startswith("$")]
    if len(vals) < 2:
        raise AssertionError("gdb could not call into %d:\n%s\n%s" % (pid, p.stdout[-2000:], p.stderr[-2000:]))
    return int(vals[0]), int(vals[1])


class SignerTest(AttestBase):
    """One daemon; attestations issue certificates through the signer."""

    config = {"signer_issue_rate": "1", "signer_issue_burst": "6", "key_isolation": "required"}

    def attest_ok(self, dev=None):
        dev = dev or self.new_device()
        st, _, body = self.attest(dev)
        self.assertEqual(st, 200, body)
        return dev, body

    def test_no_private_key_in_aegisd_memory(self):
        """Every private key of the PKI directory (service root, server TLS key, the tenant's device root and
        issuing CA, the online TUF keys) is absent from aegisd's memory after it served TLS, issued a
        certificate and had the repository's snapshot and timestamp signed; the same search finds the keys the
        signer worker used."""
        self.attest_ok()
        # the online TUF keys: made by the signer on the first look, then used for the repository's snapshot
        # and timestamp when the manufacturer publishes
        self.assertOk(self.api("GET", "/v1/ota/keys"))
        self.d.ota_publish(os.path.join(self.d.tmp, "ota-keys"))
        needles = key_needles(self.d.pki_dir)
        self.assertTrue(any(k.endswith("ca-1.key") for k in needles), needles.keys())
        self.assertIn("server.key", needles)
        found = memscan.scan_process_memory(self.d.proc.pid, [n for v in needles.values() for n in v])
        self.assertGreater(found.scanned, 1 << 20, "too little of aegisd's memory was read")
        leaked = [k for k, v in needles.items() if any(n in found.hits for n in v)]
        self.assertEqual(leaked, [], "private key material in aegisd's memory")
        _, worker = signer_pids(self.d.proc.pid)
        found = memscan.scan_process_memory(worker, [n for v in needles.values() for n in v])
        tdir = "tenants/%d/" % self.d.tenant_ids["acme"]
        used = ["server.key", tdir + "ca-1.key", tdir + "tuf-snapshot.ed25519", tdir + "tuf-timestamp.ed25519"]
        for k in used:
            self.assertTrue(any(n in found.hits for n in needles[k]),
                            "the search did not find %s in the signer worker: the search is blind" % k)

    def test_key_files_cannot_be_opened_by_aegisd(self):
        """open(2) called inside the running aegisd: every key file fails with EACCES (Landlock), whatever its
        mode; the database, as a control, opens."""
        pid = self.d.proc.pid
        db = os.path.join(self.d.data_dir, "aegis.db")
        fd, _ = gdb_open(pid, db)
        self.assertGreaterEqual(fd, 0, "the control failed: aegisd could not open its own database")
        for label in sorted(key_needles(self.d.pki_dir)):
            path = os.path.join(self.d.pki_dir, label)
            os.chmod(path, 0o644)  # the file modes are not what keeps aegisd out
            try:
                fd, errno = gdb_open(pid, path)
            finally:
                os.chmod(path, 0o600)
            self.assertEqual((fd, errno), (-1, 13), "aegisd opened %s" % label)
        self.assertIn("keys isolated", self.d.log())

    def test_issuance_log_has_every_certificate(self):
        """Each issued certificate's serial is in the signer's issuance log, whose lines chain by SHA-256."""
        serials = []
        for _ in range(2):
            _, body = self.attest_ok()
            pem = body["certificate"]
            out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.encode(),
                                 capture_output=True, check=True).stdout.decode()
            serials.append(out.strip().split("=", 1)[1].lower().lstrip("0"))
        with open(os.path.join(self.d.pki_dir, "issuance.log"), "rb") as f:
            lines = f.read().splitlines()
        prev = "0" * 64
        logged = set()
        for line in lines:
            rec = json.loads(line)
            self.assertEqual(rec["prev"], prev)
            prev = hashlib.sha256(line).hexdigest()
            if rec["kind"] == "device_cert":
                logged.add(rec["serial"].lstrip("0"))
        for s in serials:
            self.assertIn(s, logged)

    def test_tenant_issuance_rate_is_the_signers(self):
        """Past the burst (6) at 1/s, an attestation that passed answers 503 signer_busy with Retry-After."""
        busy = None
        for _ in range(12):
            st, hdrs, body = self.attest(self.new_device())
            if st == 503:
                busy = (hdrs, body)
                break
            self.assertEqual(st, 200, body)
        self.assertIsNotNone(busy, "12 attestations in a row were never refused")
        self.assertEqual(busy[1]["error"], "signer_busy")
        self.assertIn("retry-after", {k.lower() for k in busy[0]})
        time.sleep(2.5)
        self.attest_ok()


class SignerRestartTest(AttestBase):
    """Crashes: the signer killed under aegisd, and aegisd killed under the signer."""

    def test_killed_signer_is_restarted(self):
        dev, _ = self.attest_ok_()
        # acknowledged data before the crash: a telemetry-free check through the API is enough here
        before = self.records(dev)
        sup, worker = signer_pids(self.d.proc.pid)
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        deadline = killed + WAIT_S
        statuses = []
        while time.monotonic() < deadline:
            dev2 = self.new_device()
            try:
                c = self.d.client(token=None)
                st, _, body = c.api("POST", "/v1/device/attest/challenge", {"device_id": dev2.id}, token=None)
                self.assertEqual(st, 200, body)
                st, _, body = c.api("POST", "/v1/device/attest", dev2.evidence(body["nonce"]), token=None)
            except OSError as e:  # a handshake while the worker is down
                statuses.append(type(e).__name__)
                time.sleep(0.1)
                continue
            statuses.append(st)
            if st == 200:
                break
            self.assertEqual((st, body.get("error")), (503, "signer_unavailable"), body)
            time.sleep(0.1)
        self.assertEqual(statuses[-1], 200, statuses)
        # the worker is back within 100 ms; a call must not wait out signer_timeout_ms (5 s) on a restart
        # notice left on its socket
        self.assertLess(time.monotonic() - killed, 4.0, statuses)
        sup2, worker2 = signer_pids(self.d.proc.pid)
        self.assertEqual(sup2, sup)
        self.assertNotEqual(worker2, worker)
        self.assertEqual(self.records(dev), before, "records changed across the signer's crash")
        self.assertIn("signer worker", self.d.log())

    def attest_ok_(self):
        dev = self.new_device()
        st, _, body = self.attest(dev)
        self.assertEqual(st, 200, body)
        return dev, body

    def test_zz_signer_exits_with_aegisd(self):
        """SIGKILL to aegisd: supervisor and worker are gone within seconds."""
        sup, worker = signer_pids(self.d.proc.pid)
        self.d.kill()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and (alive(sup) or alive(worker)):
            time.sleep(0.1)
        self.assertFalse(alive(sup), "the signer supervisor outlived aegisd")
        self.assertFalse(alive(worker), "the signer worker outlived aegisd")
        self.d.start()
        type(self).client = self.d.client()
        type(self).dev_client = self.d.client(token=None)
        self.attest_ok_()

    def test_zzz_lost_supervisor_stops_aegisd(self):
        """Nothing restarts the signer's supervisor (aegisd cannot fork a new signer under its Landlock domain):
        killed, aegisd drains and exits 1 for its service manager to start both again."""
        sup, _ = signer_pids(self.d.proc.pid)
        os.kill(sup, signal.SIGKILL)
        rc = self.d.wait(WAIT_S)
        self.assertEqual(rc, 1, harness.tail(self.d.log()))
        self.assertIn("the signer process is gone", self.d.log())
        self.d.start()
        type(self).client = self.d.client()
        type(self).dev_client = self.d.client(token=None)


class CaRolloverTest(AttestBase):
    """CA rollover through the signer (docs/security.md): aegisd restarted 710 days ahead, 20 days before the
    tenant's issuing CA (2 years) ends, has the signer make ca-2 under the tenant's device root; the next device
    certificate is issued from it, and the issuance log records the new CA."""

    tenants = ("acme",)

    @unittest.skipUnless(os.path.exists(test_sim.FAKETIME_LIB), "libfaketime missing (install-deps installs it)")
    def test_ca_rolled_over_before_it_ends(self):
        tid = self.d.tenant_ids["acme"]
        tdir = os.path.join(self.d.pki_dir, "tenants", str(tid))
        self.assertFalse(os.path.exists(os.path.join(tdir, "ca-2.crt")))
        test_sim.ExpiredCertTest.restart_in_future(self, "+710d")
        type(self).client = self.d.client()
        type(self).dev_client = self.d.client(token=None)
        deadline = time.monotonic() + WAIT_S
        while "issuing CA rolled over" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, "no CA rollover:\n" + harness.tail(self.d.log()))
            time.sleep(0.2)
        ca2 = os.path.join(tdir, "ca-2.crt")
        self.assertTrue(os.path.exists(ca2))
        dev = self.new_device()
        st, _, body = self.attest(dev)
        self.assertEqual(st, 200, body)
        leaf = os.path.join(self.d.tmp, "leaf.pem")
        with open(leaf, "w") as f:
            f.write(body["certificate"])
        at = str(int(time.time()) + 710 * 86400 + 60)
        p = subprocess.run(["openssl", "verify", "-attime", at, "-partial_chain", "-CAfile", ca2, leaf],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(self.d.pki_dir, "issuance.log")) as f:
            kinds = [json.loads(line)["kind"] for line in f]
        self.assertIn("ca", kinds)
        self.assertEqual(kinds[-1], "device_cert")


if __name__ == "__main__":
    unittest.main()
