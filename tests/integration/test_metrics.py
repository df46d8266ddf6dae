"""The operator's metrics and listener (docs/metrics.md): the operations listener (metrics_listen) serving only
/metrics, /healthz and /readyz, `promtool check metrics` on a live scrape, the series an operator alerts on and
their movement after an attestation, /readyz answering 503 from the moment a drain starts (on both listeners),
and SIGHUP: the TLS certificate renewed without a restart (a new connection sees the new serial, an open one
keeps working, files that do not match keep the old pair) and the configuration read again."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

from cryptography import x509

import harness
import test_attest
import test_lifecycle
from test_lifecycle import raw_tls, read_response, request_bytes
from test_ops import counter, parse_metrics

# What docs/metrics.md promises an operator, by family name.
FAMILIES = [
    "aegis_build_info", "aegis_draining", "aegis_certificates_issued_total", "aegis_tls_cert_expiry_seconds",
    "aegis_tls_reloads_total", "aegis_ca_expiry_seconds", "aegis_devices", "aegis_database_size_bytes",
    "aegis_database_wal_size_bytes", "aegis_db_commit_duration_seconds", "aegis_db_fsync_duration_seconds",
    "aegis_ingest_in_flight_reports", "aegis_ingest_queue_capacity_reports", "aegis_ratelimit_refused_total",
    "aegis_cron_last_success_timestamp_seconds", "aegis_cron_failures_total", "process_cpu_seconds_total",
    "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds",
]


def free_port():
    """A port that was free a moment ago, for metrics_listen (aegisd binds it at start)."""
    s, port = harness.free_refusing_port()
    s.close()
    return port


def ops_get(port, path, timeout=10):
    """GET on the operations listener (plain HTTP): (status, body text)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port):
    st, text = ops_get(port, "/metrics")
    assert st == 200, (st, text[:300])
    return text, parse_metrics(text)


def promtool(text):
    exe = shutil.which("promtool")
    if exe is None:
        raise AssertionError("promtool is missing: deploy/install-deps.sh installs Debian's prometheus package")
    p = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.2)


class MetricsTest(test_attest.AttestBase):
    tenants = ("acme",)
    ops_port = free_port()
    config = {"metrics_listen": "127.0.0.1:%d" % ops_port}

    def test_promtool_check_metrics_passes(self):
        self.assertEqual(self.attest(self.new_device())[0], 200)  # histograms and labelled series filled
        text, _ = scrape(self.ops_port)
        rc, out = promtool(text)
        self.assertEqual(rc, 0, "promtool check metrics:\n%s" % out)

    def test_families_an_operator_alerts_on(self):
        text, m = scrape(self.ops_port)
        for name in FAMILIES:
            with self.subTest(family=name):
                self.assertRegex(text, r"(?m)^# TYPE %s (counter|gauge|histogram)$" % name)
        self.assertEqual(counter(m, "aegis_build_info"), 1)
        self.assertEqual([l for l, _ in m["aegis_build_info"]][0].keys(), {"version"})
        self.assertEqual({l["limiter"] for l, _ in m["aegis_ratelimit_refused_total"]},
                         {"challenge", "telemetry", "update_status", "signer_issue"})
        self.assertEqual(counter(m, "aegis_ingest_queue_capacity_reports"), 20000)
        self.assertGreater(counter(m, "aegis_database_size_bytes"), 0)
        self.assertGreater(counter(m, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(counter(m, "process_open_fds"), 3)
        self.assertGreaterEqual(counter(m, "process_max_fds"), counter(m, "process_open_fds"))
        self.assertLess(abs(counter(m, "process_start_time_seconds") - time.time()), 3600)
        # aegisctl pki init makes a one-year server certificate
        self.assertGreater(counter(m, "aegis_tls_cert_expiry_seconds"), 300 * 86400)

    def test_cron_and_fleet_figures_arrive(self):
        def ready():
            _, m = scrape(self.ops_port)
            ok = (counter(m, "aegis_cron_last_success_timestamp_seconds", step="fleet_gauges") > 0 and
                  counter(m, "aegis_cron_last_success_timestamp_seconds", step="purge_nonces") > 0)
            return m if ok else None
        m = wait_for(ready, 20, "the periodic steps' first successful run")
        now = time.time()
        self.assertLess(abs(counter(m, "aegis_cron_last_success_timestamp_seconds", step="purge_nonces") - now), 60)
        self.assertEqual(counter(m, "aegis_cron_failures_total"), 0)
        tid = str(self.d.tenant_ids["acme"])
        ca = [v for l, v in m.get("aegis_ca_expiry_seconds", []) if l.get("tenant") == tid]
        self.assertEqual(len(ca), 1, m.get("aegis_ca_expiry_seconds"))
        self.assertGreater(ca[0], 30 * 86400)

    def test_values_move_after_an_attestation(self):
        dev = self.new_device()
        _, m0 = scrape(self.ops_port)
        self.assertEqual(self.attest(dev)[0], 200)
        _, m1 = scrape(self.ops_port)

        def grew(name, **labels):
            return counter(m1, name, **labels) - counter(m0, name, **labels)
        self.assertEqual(grew("aegis_certificates_issued_total", kind="device"), 1)
        self.assertEqual(grew("aegis_attestations_total", result="pass"), 1)
        self.assertGreaterEqual(grew("aegis_db_commit_duration_seconds_count"), 1)
        self.assertGreaterEqual(grew("aegis_db_fsync_duration_seconds_count"), 1)  # the record made durable
        self.assertGreater(grew("aegis_db_fsync_duration_seconds_sum"), 0)
        # the active devices reach the gauge by the next fleet step (every 15 s)
        wait_for(lambda: counter(scrape(self.ops_port)[1], "aegis_devices", state="active") >= 1, 20,
                 "aegis_devices{state=active} to count the attested device")

    def test_operations_listener_serves_only_its_routes(self):
        st, body = ops_get(self.ops_port, "/healthz")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))
        st, body = ops_get(self.ops_port, "/readyz")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ready"}))
        st, body = ops_get(self.ops_port, "/v1/products")
        self.assertEqual((st, json.loads(body)["error"]), (404, "not_found"))
        # the devices' listener keeps the probes but leaves /metrics to the operations listener
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)
        self.assertEqual(self.api("GET", "/readyz", token=None)[0], 200)
        self.assertError(self.api("GET", "/metrics", token=None), 404, "not_found")


class OpsDaemons(test_lifecycle.IsolatedDaemons):
    """Each test starts its own daemon with an operations listener."""

    def new_daemon(self, config=None):
        self.ops_port = free_port()
        cfg = {"metrics_listen": "127.0.0.1:%d" % self.ops_port}
        cfg.update(config or {})
        return super().new_daemon(config=cfg)


class DrainReadyzTest(OpsDaemons):
    def test_readyz_503_from_the_moment_a_drain_starts(self):
        d = self.new_daemon({"drain_timeout": 10, "connection_timeout": 60})
        d.start()
        keep, slow = raw_tls(d), raw_tls(d)
        body = json.dumps({"name": "held"}).encode()
        try:
            keep.sendall(request_bytes(d, "GET", "/readyz"))
            self.assertEqual(read_response(keep, time.monotonic() + 10)[0], 200)
            # a request in flight holds the drain open
            slow.sendall(request_bytes(d, "POST", "/v1/products", body, token=d.token)[:-5])
            time.sleep(0.3)
            d.signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(d.proc.poll(), "aegisd exited with a request in flight")
            st, text = ops_get(self.ops_port, "/readyz")
            self.assertEqual((st, json.loads(text)["error"]), (503, "draining"), text)
            self.assertEqual(ops_get(self.ops_port, "/healthz")[0], 200)
            self.assertEqual(counter(scrape(self.ops_port)[1], "aegis_draining"), 1)
            keep.sendall(request_bytes(d, "GET", "/readyz"))
            st, head, resp, _ = read_response(keep, time.monotonic() + 10)
            self.assertEqual((st, json.loads(resp)["error"]), (503, "draining"), head)
            slow.sendall(body[-5:])
            self.assertEqual(read_response(slow, time.monotonic() + 10)[0], 201)
        finally:
            keep.close()
            slow.close()
        d.check_exit(d.wait(20))


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))


def new_server_pair(d, tag):
    """A new EC P-256 key and server certificate signed by the daemon's service root, in d.tmp. Returns
    (cert path, key path, serial)."""
    key, csr, crt = (os.path.join(d.tmp, "%s.%s" % (tag, ext)) for ext in ("key", "csr", "crt"))
    ext = os.path.join(d.tmp, "%s.ext" % tag)
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=aegisd-%s" % tag, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", d.cacert, "-CAkey", os.path.join(d.pki_dir, "root.key"),
            "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext, "-out", crt)
    with open(crt, "rb") as f:
        serial = x509.load_pem_x509_certificate(f.read()).serial_number
    return crt, key, serial


def install(d, crt, key):
    """Replaces the daemon's TLS files as a renewal tool would (a new file renamed over the old)."""
    for src, name, mode in ((crt, "server.crt", 0o644), (key, "server.key", 0o600)):
        tmp = os.path.join(d.pki_dir, name + ".new")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.rename(tmp, os.path.join(d.pki_dir, name))


def served_serial(d):
    s = raw_tls(d)
    try:
        return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number
    finally:
        s.close()


class TlsRenewalTest(OpsDaemons):
    def log_lines(self, d, text):
        return [l for l in d.log().splitlines() if text in l]

    def hup(self, d, expect):
        """SIGHUP, then waits for one more log line holding expect."""
        before = len(self.log_lines(d, expect))
        d.signal(signal.SIGHUP)
        wait_for(lambda: len(self.log_lines(d, expect)) > before, 15, "%r in the log" % expect)

    def test_sighup_renews_the_certificate_and_keeps_open_connections(self):
        d = self.new_daemon()
        d.start()
        old = served_serial(d)
        keep = raw_tls(d)
        try:
            keep.sendall(request_bytes(d, "GET", "/healthz"))
            self.assertEqual(read_response(keep, time.monotonic() + 10)[0], 200)
            crt, key, serial = new_server_pair(d, "renewed")
            self.assertNotEqual(serial, old)
            install(d, crt, key)
            self.hup(d, "TLS certificate renewed")
            self.assertEqual(served_serial(d), serial, "a new connection still sees the old certificate")
            keep.sendall(request_bytes(d, "GET", "/healthz"))
            self.assertEqual(read_response(keep, time.monotonic() + 10)[0], 200, "the open connection broke")
            # and the new certificate's connections work end to end (the signer signs with the new key)
            c = d.client()
            self.assertEqual(c.api("GET", "/v1/products")[0], 200)
            m = scrape(self.ops_port)[1]
            self.assertEqual(counter(m, "aegis_tls_reloads_total", result="ok"), 1)
            self.assertLess(counter(m, "aegis_tls_cert_expiry_seconds"), 31 * 86400)

            # a key that is not the certificate's: the renewed pair keeps serving
            bad_crt, _, _ = new_server_pair(d, "bad")
            install(d, bad_crt, key)
            self.hup(d, "TLS certificate not renewed")
            self.assertEqual(served_serial(d), serial)
            self.assertEqual(c.api("GET", "/v1/products")[0], 200)
            # an unreadable chain file too
            with open(os.path.join(d.pki_dir, "server.crt"), "w") as f:
                f.write("not a certificate\n")
            self.hup(d, "TLS certificate not renewed")
            self.assertEqual(served_serial(d), serial)
            m = scrape(self.ops_port)[1]
            self.assertEqual(counter(m, "aegis_tls_reloads_total", result="error"), 2)
            self.assertEqual(counter(m, "aegis_tls_reloads_total", result="ok"), 1)
        finally:
            keep.close()
        d.stop()

    def test_sighup_rereads_the_configuration(self):
        d = self.new_daemon()
        d.start()
        d.write_config("metrics_listen = 127.0.0.1:%d\nmax_connections = 77\nlog_level = warn\n" % self.ops_port)
        self.hup(d, "configuration reloaded")
        changed = self.log_lines(d, "needs a restart")
        self.assertTrue(any("key=max_connections" in l for l in changed), changed)
        self.assertFalse(any("key=log_level" in l for l in changed), changed)
        # a file that no longer parses leaves everything as it was
        d.write_config("max_connections = many\n")
        self.hup(d, "configuration not reloaded")
        self.assertEqual(d.client().api("GET", "/healthz", token=None)[0], 200)
        d.stop()
