"""End-to-end tests with the device simulator (build/aegis-sim) against a real aegisd.

One fleet directory per class, provisioned by aegis-sim, imported with aegisctl, with platform reference values
added on the data directory (service operator) and app values through the API (tenant). Device index layout of
SimFleetTest's fleet:

    0 .. FLEET-1        the fleet: all must pass attestation and whoami (a 1,000-device run by default)
    FAULTS ...          one or two devices per fault (tampered OS, old OS, replayed nonce, blocked, wrong clock)
    SMALL_SKEW          devices whose clocks are 3 minutes off: must still pass
    OTHER_TENANT        claimed by a second tenant (device-to-device across tenants must fail)

AEGIS_SIM_DEVICES overrides the fleet size (e.g. a smaller run under sanitizers).
"""

import json
import os
import re
import sqlite3
import subprocess
import time
import unittest

import harness

FLEET = int(os.environ.get("AEGIS_SIM_DEVICES", "1000"))
TAMPERED = [FLEET, FLEET + 1]
OLD_OS = [FLEET + 2]
REPLAY = [FLEET + 3]
BLOCKED = [FLEET + 4, FLEET + 5]
SKEWED = [FLEET + 6]
SMALL_SKEW = [FLEET + 7, FLEET + 8]
OTHER_TENANT = [FLEET + 9, FLEET + 10]
TOTAL = FLEET + 11

SIM_CONFIG = {
    # every simulated device connects from 127.0.0.1: lift the per-address challenge and connection limits
    "challenge_rate": 100000,
    "challenge_burst": 100000,
    "per_ip_connections": 0,
}

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def csv(indexes):
    return ",".join(str(i) for i in indexes)


class SimMixin:
    """Helpers shared by the classes: the simulator, the fleet files, openssl."""

    fleet = None

    @classmethod
    def sim(cls, *args, timeout=300):
        return harness.run_tool([harness.binary("aegis-sim")] + [str(a) for a in args], timeout=timeout)

    @classmethod
    def sim_run(cls, *args, mode="run", timeout=300):
        """Runs `aegis-sim MODE ... --json` against the daemon; returns the summary object."""
        p = cls.sim(mode, "--dir", cls.fleet, "--server", cls.d.url(), "--cacert", cls.d.cacert, "--json",
                    *args, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("aegis-sim %s %s failed (%d):\n%s" % (mode, " ".join(map(str, args)),
                                                                        p.returncode, p.stderr[-3000:]))
        return json.loads(p.stdout)

    @classmethod
    def provision(cls, n, tenant_app=None):
        cls.fleet = os.path.join(cls.d.tmp, "fleet")
        args = ["provision", "--devices", n, "--dir", cls.fleet]
        if tenant_app:
            args += ["--tenant-app", tenant_app]
        p = cls.sim(*args)
        if p.returncode != 0:
            raise RuntimeError("aegis-sim provision failed:\n%s" % p.stderr)
        with open(os.path.join(cls.fleet, "import.json")) as f:
            cls.keys = json.load(f)
        with open(os.path.join(cls.fleet, "devices.json")) as f:
            cls.ids = [e["device_id"] for e in json.load(f)]
        with open(os.path.join(cls.fleet, "refvals.json")) as f:
            cls.refvals = json.load(f)
        assert len(cls.keys) == n and len(cls.ids) == n
        assert [harness.device_id(k) for k in cls.keys[:3]] == cls.ids[:3]

    @classmethod
    def import_devices(cls, indexes, tenant):
        path = os.path.join(cls.d.tmp, "import-%s.json" % tenant)
        with open(path, "w") as f:
            json.dump([cls.keys[i] for i in indexes], f)
        p = cls.d.ctl("devices", "import", path, token=cls.d.tokens[tenant], timeout=120)
        if p.returncode != 0:
            raise RuntimeError("aegisctl devices import failed:\n%s%s" % (p.stdout, p.stderr))

    @classmethod
    def add_refvals(cls, tenants):
        """Platform values on the data directory (service operator), app values through the API."""
        for r in cls.refvals:
            args = ["refvals", "add", "--stage", r["stage"], "--component", r["component"], "--version",
                    r["version"], "--svn", str(r["svn"]), "--digest", r["digest"]]
            if r["stage"] != "app":
                cls.d.ctl_local(*args)
                continue
            for i, tenant in enumerate(tenants):
                if i == 0:  # aegisctl's API command
                    p = cls.d.ctl(*args, token=cls.d.tokens[tenant])
                    if p.returncode != 0:
                        raise RuntimeError("aegisctl refvals add failed:\n%s%s" % (p.stdout, p.stderr))
                else:  # the REST API directly
                    c = cls.d.client(token=cls.d.tokens[tenant])
                    body = {k: r[k] for k in ("stage", "component", "version", "svn", "digest")}
                    st, _, resp = c.api("POST", "/v1/reference-values", body)
                    if st != 201:
                        raise RuntimeError("POST /v1/reference-values -> %d %r" % (st, resp))

    def storage(self, i, name):
        return os.path.join(self.fleet, "dev-%05d" % i, "storage", name)

    def credential(self, i):
        """The device's stored credential (storage blob credential.json, see firmware-ref/device.h)."""
        with open(self.storage(i, "credential.json")) as f:
            return json.load(f)

    def credential_files(self, i):
        """(cert, chain, bundle) file paths of device i's credential, written to the temp dir."""
        cred = self.credential(i)
        paths = []
        for key in ("certificate", "chain", "trust_bundle"):
            path = os.path.join(self.d.tmp, "dev%d-%s.pem" % (i, key))
            with open(path, "w") as f:
                f.write(cred[key])
            paths.append(path)
        return paths

    def openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        return p.returncode, p.stdout

    def results_by_index(self, summary):
        return {r["index"]: r for r in summary["results"]}

    def assertNoCertificate(self, i):
        self.assertFalse(os.path.exists(self.storage(i, "credential.json")), "device %d holds a credential" % i)

    def device(self, i, token=...):
        st, _, body = self.api("GET", "/v1/devices/" + self.ids[i], token=token)
        self.assertEqual(st, 200, body)
        return body


class SimFleetTest(SimMixin, harness.DaemonTestCase):
    tenants = ("acme", "globex")
    config = SIM_CONFIG

    @classmethod
    def prepare(cls):
        t0 = time.monotonic()
        cls.provision(TOTAL)
        t_prov = time.monotonic() - t0
        cls.import_devices(range(0, OTHER_TENANT[0]), "acme")
        cls.import_devices(OTHER_TENANT, "globex")
        cls.add_refvals(("acme", "globex"))
        t1 = time.monotonic()
        cls.fleet_summary = cls.sim_run("--devices", FLEET, "--concurrency", 32, timeout=600)
        t_run = time.monotonic() - t1
        cls.other_summary = cls.sim_run("--from", OTHER_TENANT[0], "--devices", len(OTHER_TENANT))
        s = cls.fleet_summary
        print("\n[test_sim] provision %d devices: %.1f s; run %d devices: %.1f s (sim %.1f s); attest p50 %.1f ms "
              "p99 %.1f ms; whoami p50 %.1f ms p99 %.1f ms" % (
                  TOTAL, t_prov, FLEET, t_run, s["elapsed_s"], s["attest"]["latency_ms"]["p50"],
                  s["attest"]["latency_ms"]["p99"], s["whoami"]["latency_ms"]["p50"],
                  s["whoami"]["latency_ms"]["p99"]), flush=True)

    # --- the fleet ---

    def test_fleet_all_pass(self):
        s = self.fleet_summary
        self.assertEqual(s["devices"], FLEET)
        self.assertEqual(s["setup_errors"], 0)
        self.assertEqual(s["attest"]["outcomes"], {"pass": FLEET}, s["attest"])
        self.assertEqual(s["whoami"]["outcomes"], {"ok": FLEET}, s["whoami"])
        self.assertEqual(s["attest"]["latency_ms"]["n"], FLEET)
        self.assertGreater(s["attest"]["latency_ms"]["p99"], 0)
        self.assertGreaterEqual(s["attest"]["latency_ms"]["p99"], s["attest"]["latency_ms"]["p50"])
        results = s["results"]
        self.assertEqual([r["index"] for r in results], list(range(FLEET)))
        for r in results:
            self.assertTrue(r["certificate"], r)
            self.assertEqual(r["device_id"], self.ids[r["index"]])
            # renewal is scheduled uniformly in [50 %, 80 %] of the certificate's lifetime
            life = r["not_after"] - r["not_before"]
            self.assertGreater(life, 0)
            self.assertGreaterEqual(r["renew_at"], r["not_before"] + life // 2, r)
            self.assertLessEqual(r["renew_at"], r["not_before"] + life * 8 // 10, r)
        spread = [r["renew_at"] for r in results]
        self.assertGreater(max(spread) - min(spread), 0.1 * (results[0]["not_after"] - results[0]["not_before"]))
        # the service recorded the passes
        for i in (0, FLEET // 2, FLEET - 1):
            dev = self.device(i)
            self.assertEqual(dev["attestation"]["result"], "pass", dev)
        self.assertEqual(self.other_summary["attest"]["outcomes"], {"pass": len(OTHER_TENANT)})

    def test_issued_chains_verify(self):
        acme = self.d.tenant_ids["acme"]
        step = max(1, FLEET // 7)
        for i in list(range(0, FLEET, step))[:8] + [FLEET - 1]:
            cert, chain, bundle = self.credential_files(i)
            # the trust bundle (the tenant's device root, then its issuing CAs) verifies it with a full chain, and
            # with the issuing CAs as anchors (-partial_chain)
            for args in (("-x509_strict", "-CAfile", bundle, "-untrusted", chain), ("-partial_chain", "-CAfile", bundle)):
                rc, out = self.openssl("verify", *args, cert)
                self.assertEqual(rc, 0, "device %d: %s" % (i, out))
                self.assertIn("OK", out)
            # the service root, which a device pins for the service, does not
            rc, out = self.openssl("verify", "-CAfile", self.d.cacert, "-untrusted", chain, cert)
            self.assertNotEqual(rc, 0, "device %d: %s" % (i, out))
            rc, out = self.openssl("x509", "-in", cert, "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage")
            self.assertEqual(rc, 0, out)
            self.assertIn("CN = %s" % self.ids[i], out)
            self.assertIn("URI:urn:aegis:tenant:%d:device:%s" % (acme, self.ids[i]), out)
            self.assertIn("TLS Web Client Authentication", out)
            # the credential holds the operational key: the device's secret
            self.assertEqual(os.stat(self.storage(i, "credential.json")).st_mode & 0o077, 0)
            cred = self.credential(i)
            self.assertIn("PRIVATE KEY", cred["key"])
            self.assertTrue(cred["chain"].startswith(cred["certificate"]))
            key = os.path.join(self.fleet, "dev-%05d" % i, "keystore", "identity.key")
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

    # --- faults ---

    def test_faults(self):
        # the old OS is a known image: it passes until the tenant sets a minimum svn for the OS
        s = self.sim_run("--from", OLD_OS[0], "--devices", 1, "--fault", "old-os", "--fresh")
        self.assertEqual(s["faults"]["old-os"]["outcomes"], {"pass": 1}, s)
        st, _, body = self.api("PUT", "/v1/security-minimums/aegis-os", {"min_svn": 3})
        self.assertEqual(st, 200, body)
        for i in BLOCKED:
            st, _, body = self.api("POST", "/v1/devices/%s/block" % self.ids[i])
            self.assertEqual(st, 200, body)

        s = self.sim_run("--from", TAMPERED[0], "--devices", SKEWED[-1] - TAMPERED[0] + 1, "--fresh",
                         "--fault", "tampered-os@" + csv(TAMPERED), "--fault", "old-os@" + csv(OLD_OS),
                         "--fault", "replay-nonce@" + csv(REPLAY), "--fault", "blocked@" + csv(BLOCKED),
                         "--fault", "clock-skew@" + csv(SKEWED))
        expected = {"tampered-os": ("unknown_measurement", TAMPERED), "old-os": ("rollback", OLD_OS),
                    "replay-nonce": ("bad_nonce", REPLAY), "blocked": ("blocked", BLOCKED),
                    "clock-skew": ("clock_skew", SKEWED)}
        by = self.results_by_index(s)
        for fault, (reason, indexes) in expected.items():
            self.assertEqual(s["faults"][fault], {"indexes": indexes, "outcomes": {reason: len(indexes)}},
                             "%s: %r" % (fault, s["faults"].get(fault)))
            for i in indexes:
                self.assertEqual(by[i]["attest"], reason, by[i])
                self.assertFalse(by[i]["certificate"], by[i])
                self.assertIsNone(by[i]["whoami"], by[i])
                self.assertNoCertificate(i)
        self.assertEqual(s["attest"]["outcomes"].get("pass"), None, s["attest"])
        # what the service recorded (the wrong clock never reached it: the device refused its TLS certificate)
        for i, reason in ((TAMPERED[0], "unknown_measurement"), (OLD_OS[0], "rollback"),
                          (BLOCKED[0], "blocked")):
            att = self.device(i)["attestation"]
            self.assertEqual((att["result"], att["reason"]), ("fail", reason), att)
        st, _, page = self.api("GET", "/v1/devices/%s/attestations" % self.ids[REPLAY[0]])
        self.assertEqual(st, 200, page)
        # the replayed evidence: passed once (its answer was thrown away); the replay, refused
        # bad_nonce before its signature counts, is not recorded
        self.assertEqual(page["items"][0]["result"], "pass", page)
        self.assertEqual(self.device(REPLAY[0])["attestation"]["result"], "pass")
        st, _, body = self.api("DELETE", "/v1/security-minimums/aegis-os")
        self.assertEqual(st, 204, body)

    def test_small_clock_skew_passes(self):
        # 3 minutes slow (the certificates' 5-minute backdating covers it) and 3 minutes fast
        for skew, i in ((-180, SMALL_SKEW[0]), (180, SMALL_SKEW[1])):
            s = self.sim_run("--from", i, "--devices", 1, "--fault", "clock-skew", "--skew", skew)
            r = s["results"][0]
            self.assertEqual((r["fault"], r["attest"], r["whoami"]), ("clock-skew", "pass", "ok"), r)

    # --- after the certificate ---

    def test_blocked_after_certificate(self):
        a, b = 10, 11
        s = self.sim_run("--from", a, "--devices", 2, mode="whoami")
        self.assertEqual(s["whoami"]["outcomes"], {"ok": 2}, s)
        st, _, body = self.api("POST", "/v1/devices/%s/block" % self.ids[a])
        self.assertEqual(st, 200, body)
        try:
            s = self.sim_run("--from", a, "--devices", 2, mode="whoami")
            by = self.results_by_index(s)
            self.assertEqual(by[a]["whoami"], "device_blocked", by[a])
            self.assertIn("HTTP 403", by[a]["detail"])
            self.assertEqual(by[b]["whoami"], "ok", by[b])
            # and it cannot get a new certificate either
            s = self.sim_run("--from", a, "--devices", 1)
            self.assertEqual(s["results"][0]["attest"], "blocked", s["results"][0])
        finally:
            st, _, body = self.api("POST", "/v1/devices/%s/unblock" % self.ids[a])
            self.assertEqual(st, 200, body)
        s = self.sim_run("--from", a, "--devices", 1, mode="whoami")
        self.assertEqual(s["whoami"]["outcomes"], {"ok": 1}, s)

    def test_renewal(self):
        first, n = 20, 5

        def serials():
            out = []
            for i in range(first, first + n):
                rc, text = self.openssl("x509", "-in", self.credential_files(i)[0], "-noout", "-serial")
                self.assertEqual(rc, 0, text)
                out.append(text.strip())
            return out

        before = serials()
        s = self.sim_run("--from", first, "--devices", n, "--renew")
        for step, code in (("attest", "pass"), ("whoami", "ok"), ("renew", "pass"), ("renew_whoami", "ok")):
            self.assertEqual(s[step]["outcomes"], {code: n}, "%s: %r" % (step, s[step]))
        after = serials()
        for x, y in zip(before, after):
            self.assertNotEqual(x, y)

    # --- device to device ---

    def test_d2d_same_tenant(self):
        p = self.sim("d2d", "--dir", self.fleet, "--a", 30, "--b", 31)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("d2d: ok", p.stdout)
        acme = self.d.tenant_ids["acme"]
        for i in (30, 31):
            self.assertIn("urn:aegis:tenant:%d:device:%s" % (acme, self.ids[i]), p.stdout)
            self.assertIn('received "hello from %s"' % self.ids[61 - i], p.stdout)

    def test_d2d_other_tenant_fails(self):
        # A device of tenant B is refused by a device of tenant A (and the reverse) at the chain already: its
        # certificate chains to B's device root, which is not in A's trust bundle.
        for a, b in ((30, OTHER_TENANT[0]), (OTHER_TENANT[0], 30)):
            p = self.sim("d2d", "--dir", self.fleet, "--a", a, "--b", b)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("FAILED", p.stderr)
            self.assertIn("peer certificate rejected", p.stderr)
            self.assertNotIn("d2d: ok", p.stdout)
        # The same with openssl: neither B's chain nor B's issuing CA verifies against A's bundle, not even with
        # A's issuing CAs as anchors; nor does the service's certificate.
        cert_a, chain_a, bundle_a = self.credential_files(30)
        cert_b, chain_b, bundle_b = self.credential_files(OTHER_TENANT[0])
        # A's bundle starts with A's self-signed device root, to which A's own chain verifies in full.
        root_a = os.path.join(self.d.tmp, "root-a.pem")
        with open(bundle_a) as f, open(root_a, "w") as g:
            g.write(f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
        rc, out = self.openssl("verify", "-x509_strict", "-CAfile", root_a, root_a)
        self.assertEqual(rc, 0, out)
        rc, out = self.openssl("verify", "-x509_strict", "-CAfile", root_a, "-untrusted", chain_a, cert_a)
        self.assertEqual(rc, 0, out)
        rc, out = self.openssl("verify", "-CAfile", root_a, "-untrusted", chain_b, cert_b)
        self.assertNotEqual(rc, 0, out)
        with open(bundle_a) as f, open(bundle_b) as g:
            self.assertNotEqual(f.read().split("-----END")[0], g.read().split("-----END")[0])
        for args in (("-CAfile", bundle_a, "-untrusted", chain_b, cert_b),
                     ("-partial_chain", "-CAfile", bundle_a, "-untrusted", chain_b, cert_b),
                     ("-partial_chain", "-CAfile", bundle_a, os.path.join(self.d.pki_dir, "server.crt"))):
            rc, out = self.openssl("verify", *args)
            self.assertNotEqual(rc, 0, "%r: %s" % (args, out))
        p = self.sim("d2d", "--dir", self.fleet, "--a", OTHER_TENANT[0], "--b", OTHER_TENANT[1])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # a device without a certificate cannot take part
        p = self.sim("d2d", "--dir", self.fleet, "--a", 30, "--b", TAMPERED[0])
        self.assertNotEqual(p.returncode, 0)

    # --- the command line ---

    def test_usage_errors(self):
        base = ("run", "--dir", self.fleet, "--server", self.d.url(), "--cacert", self.d.cacert)
        for args in ((), ("bogus",), ("run",), base + ("--fault", "nosuch"), base + ("--fault", "expired-cert"),
                     base + ("--devices", "0"), base + ("--from", TOTAL), base + ("--fault", "old-os@999999"),
                     ("d2d", "--dir", self.fleet, "--a", 1, "--b", 1), ("provision", "--dir", self.fleet)):
            p = self.sim(*args)
            self.assertEqual(p.returncode, 2, "%r: %s" % (args, p.stderr))
        for args in (("--help",), ("run", "--help"), ("provision", "--help"), ("d2d", "--help")):
            p = self.sim(*args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("usage", p.stdout)
        # a device directory that cannot be opened is a setup error (exit 1), still with a summary
        broken = os.path.join(self.d.tmp, "broken")
        os.makedirs(broken, exist_ok=True)
        with open(os.path.join(self.fleet, "devices.json")) as src, \
                open(os.path.join(broken, "devices.json"), "w") as dst:
            dst.write(src.read())
        p = self.sim("run", "--dir", broken, "--server", self.d.url(), "--cacert", self.d.cacert, "--devices", 2,
                     "--json")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(json.loads(p.stdout)["setup_errors"], 2)
        # a server that is not there: the run completes, the outcome is a client-side reason
        s, port = harness.free_refusing_port()
        try:
            p = self.sim("run", "--dir", self.fleet, "--server", "https://127.0.0.1:%d" % port, "--cacert",
                         self.d.cacert, "--from", 40, "--devices", 1, "--attempts", 2, "--json")
        finally:
            s.close()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["attest"]["outcomes"], {"connect_error": 1})


class ExpiredCertTest(SimMixin, harness.DaemonTestCase):
    """A device that keeps using its stored certificate past notAfter, instead of renewing, is refused (401):
    the daemon is restarted under libfaketime, two hours in the future of a one-hour certificate."""

    tenants = ("acme",)
    config = dict(SIM_CONFIG, cert_lifetime=3600)

    @classmethod
    def prepare(cls):
        cls.provision(3)
        cls.import_devices(range(3), "acme")
        cls.add_refvals(("acme",))
        s = cls.sim_run()
        assert s["attest"]["outcomes"] == {"pass": 3}, s

    def restart_in_future(self, offset):
        self.d.stop()
        saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "FAKETIME", "ASAN_OPTIONS")}
        os.environ["LD_PRELOAD"] = FAKETIME_LIB
        os.environ["FAKETIME"] = offset
        # under ASan, the preloaded libfaketime comes before the ASan runtime
        os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [saved["ASAN_OPTIONS"], "verify_asan_link_order=0"]))
        try:
            self.d.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime missing (deploy/install-deps.sh installs it)")
    def test_expired_certificate_refused(self):
        s = self.sim_run(mode="whoami")
        self.assertEqual(s["whoami"]["outcomes"], {"ok": 3}, s)
        self.restart_in_future("+2h")
        s = self.sim_run("--fault", "expired-cert=2", mode="whoami")
        self.assertEqual(s["whoami"]["outcomes"], {"unauthorized": 3}, s)
        self.assertEqual(s["faults"]["expired-cert"]["outcomes"], {"unauthorized": 2}, s)
        for r in s["results"]:
            self.assertIn("HTTP 401", r["detail"])
        # a fresh attestation (renewal) in the service's future works again
        s = self.sim_run()
        self.assertEqual(s["attest"]["outcomes"], {"pass": 3}, s)
        self.assertEqual(s["whoami"]["outcomes"], {"ok": 3}, s)


class RetentionTest(SimMixin, harness.DaemonTestCase):
    """Retention through the daemon's own periodic job: restarted 100 days in its future (libfaketime), it
    deletes the attestation records and crash reports older than their 90-day retention, while the devices
    keep their last attestation and the buckets keep their counts."""

    tenants = ("acme",)
    config = dict(SIM_CONFIG, telemetry_rate=100000, telemetry_burst=100000)

    @classmethod
    def prepare(cls):
        cls.provision(3)
        cls.import_devices(range(3), "acme")
        cls.add_refvals(("acme",))
        s = cls.sim_run("--crash", "1.0@aegis-app", "--drain")
        assert s["attest"]["outcomes"] == {"pass": 3}, s

    restart_in_future = ExpiredCertTest.restart_in_future

    def count(self, path):
        st, _, body = self.api("GET", path + ("&" if "?" in path else "?") + "limit=1000")
        self.assertEqual(st, 200, body)
        return len(body["items"])

    def export_lines(self):
        st, _, raw = self.client.request("GET", "/v1/failures/export?format=jsonl")
        self.assertEqual(st, 200, raw[:300])
        return [line for line in raw.decode().splitlines() if line.strip()]

    def crash_total(self):
        st, _, body = self.api("GET", "/v1/failures/buckets?limit=1000")
        self.assertEqual(st, 200, body)
        return sum(b["count"] for b in body["items"])

    @unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime missing (deploy/install-deps.sh installs it)")
    def test_old_records_and_reports_are_deleted(self):
        dev = self.ids[0]
        self.assertGreater(self.count("/v1/attestations"), 0)
        reports = self.count("/v1/devices/%s/reports?type=crash" % dev)
        self.assertGreater(reports, 0)
        reports_total = len(self.export_lines())
        crashes = self.crash_total()
        self.d.stop()
        extra = self.add_old_reports(12000)
        self.restart_in_future("+100d")
        deadline = time.time() + 30
        while time.time() < deadline and (self.count("/v1/attestations") > 0 or
                                          self.count("/v1/devices/%s/reports" % dev) > 0):
            time.sleep(0.5)
        self.assertEqual(self.count("/v1/attestations"), 0)
        self.assertEqual(self.count("/v1/devices/%s/reports" % dev), 0)
        st, _, body = self.api("GET", "/v1/devices/" + dev)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["attestation"]["result"], "pass")
        self.assertEqual(self.crash_total(), crashes)
        # a backlog is not held to a fixed rate: more than 5 batches of 1,000 went in one run of the job
        counts = [int(c) for c in re.findall(r'msg="purged old telemetry reports" count=(\d+)', self.d.log())]
        self.assertEqual(sum(counts), reports_total + extra,
                         "\n".join(l for l in self.d.log().splitlines() if "purge" in l or "cron" in l)[-3000:])
        self.assertGreater(max(counts), 5000, counts)

    def add_old_reports(self, n):
        """Copies of the first stored report under new report ids, straight into the stopped daemon's database."""
        con = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"))
        try:
            cols = [r[1] for r in con.execute("PRAGMA table_info(telemetry_reports)") if r[1] != "id"]
            picked = ", ".join("1000000 + k" if c == "report_id" else c for c in cols)
            con.execute("WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ?) "
                        "INSERT INTO telemetry_reports (%s) SELECT %s FROM n, telemetry_reports "
                        "WHERE id = (SELECT min(id) FROM telemetry_reports)"
                        % (", ".join(cols), picked), (n,))
            con.commit()
        finally:
            con.close()
        return n


if __name__ == "__main__":
    unittest.main()
