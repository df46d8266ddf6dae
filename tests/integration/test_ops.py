"""Operational endpoints, routing errors, HTTP keep-alive, TLS versions, aegisd --version/--help."""

import re
import socket
import ssl
import threading
import time

import harness


def parse_metrics(text):
    """{metric name: [(labels dict, value)]} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$', line)
        if not m:
            raise AssertionError("malformed metrics line: %r" % line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def counter(metrics, name, **labels):
    """Sum of the samples of name whose labels include labels."""
    return sum(v for l, v in metrics.get(name, []) if all(l.get(k) == x for k, x in labels.items()))


class OpsTest(harness.DaemonTestCase):
    def metrics(self):
        st, hdrs, raw = self.client.request("GET", "/metrics", token=None)
        self.assertEqual(st, 200, raw[:300])
        ctype = hdrs.get("Content-Type", "")
        self.assertTrue(ctype.startswith("text/plain"), "metrics Content-Type %r" % ctype)
        return raw.decode(), parse_metrics(raw.decode())

    def test_healthz(self):
        st, hdrs, body = self.api("GET", "/healthz", token=None)
        self.assertEqual((st, body), (200, {"status": "ok"}))
        self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"))

    def test_readyz(self):
        st, _, body = self.api("GET", "/readyz", token=None)
        self.assertEqual((st, body), (200, {"status": "ready"}))

    def test_metrics_request_counter_has_route_label(self):
        self.assertOk(self.api("GET", "/v1/products"))
        _, m0 = self.metrics()
        before = counter(m0, "aegis_http_requests_total", route="/v1/products", method="GET", status="200")
        self.assertGreaterEqual(before, 1, "no aegis_http_requests_total for GET /v1/products 200 in:\n%r"
                                % m0.get("aegis_http_requests_total"))
        for _ in range(3):
            self.assertOk(self.api("GET", "/v1/products"))
        _, m1 = self.metrics()
        after = counter(m1, "aegis_http_requests_total", route="/v1/products", method="GET", status="200")
        self.assertEqual(after - before, 3, "counter did not grow by the 3 requests made")

    def test_metrics_route_label_is_the_pattern_not_the_path(self):
        p = self.create("/v1/products", {"name": "metrics-route"})
        self.assertOk(self.api("GET", "/v1/products/%d" % p["id"]))
        self.assertError(self.api("GET", "/v1/products/999999"), 404, "not_found")
        text, m = self.metrics()
        routes = {l.get("route") for l, _ in m.get("aegis_http_requests_total", [])}
        self.assertIn("/v1/products/{id}", routes)
        self.assertNotIn("/v1/products/%d" % p["id"], routes)
        self.assertNotIn("/v1/products/999999", routes, "raw paths as labels explode the cardinality")
        self.assertGreaterEqual(counter(m, "aegis_http_requests_total", route="/v1/products/{id}",
                                        status="404"), 1)

    def test_metrics_families(self):
        text, m = self.metrics()
        self.assertIn("aegis_db_errors_total", m, text[:2000])
        self.assertEqual(counter(m, "aegis_db_errors_total"), 0, "database errors on a healthy daemon")
        self.assertIn("# TYPE aegis_http_requests_total counter", text)
        self.assertIn("aegis_http_request_duration_seconds_bucket", m)
        self.assertIn("aegis_http_request_duration_seconds_count", m)
        self.assertIn("aegis_http_connections", m)
        self.assertNotIn(self.d.token.split("_", 2)[2], text)

    def test_unknown_route_404(self):
        for path in ("/v1/nope", "/nope", "/v1/products/1/nope", "/v1"):
            with self.subTest(path=path):
                self.assertError(self.api("GET", path), 404, "not_found")
        self.assertError(self.api("GET", "/v1/nope", token=None), 404, "not_found")

    def test_wrong_method_405_with_allow(self):
        cases = [("DELETE", "/v1/products", {"GET", "POST"}), ("PUT", "/v1/products", {"GET", "POST"}),
                 ("POST", "/healthz", {"GET"}), ("DELETE", "/v1/devices", {"GET"}),
                 ("PUT", "/v1/tenant", {"GET"}), ("DELETE", "/v1/audit", {"GET"}),
                 ("POST", "/v1/products/1", {"GET", "PATCH", "DELETE"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                resp = self.api(method, path, body={} if method in ("POST", "PUT") else None)
                self.assertError(resp, 405, "method_not_allowed")
                allow = resp[1].get("Allow")
                self.assertIsNotNone(allow, "405 without an Allow header")
                got = {x.strip() for x in allow.split(",")}
                self.assertTrue(allowed <= got, "Allow %r lacks %r" % (allow, allowed))
                self.assertNotIn(method, got)

    def test_keepalive_get_reuses_socket(self):
        c = self.d.client()
        st, hdrs, _ = c.request("GET", "/healthz")
        self.assertEqual(st, 200)
        self.assertNotEqual(hdrs.get("Connection", "").lower(), "close")
        sock = c.conn.sock
        self.assertIsNotNone(sock, "the client dropped the connection after the first answer")
        st, hdrs, _ = c.request("GET", "/v1/products")
        self.assertEqual(st, 200)
        self.assertIs(c.conn.sock, sock, "second GET did not reuse the connection")
        self.assertNotEqual(hdrs.get("Connection", "").lower(), "close")
        c.close()

    def test_keepalive_post_with_body_reuses_socket(self):
        c = self.d.client()
        st, hdrs, _ = c.request("POST", "/v1/products", {"name": "keepalive-1", "description": "x" * 500})
        self.assertEqual(st, 201)
        self.assertNotEqual(hdrs.get("Connection", "").lower(), "close")
        sock = c.conn.sock
        self.assertIsNotNone(sock)
        st, hdrs, _ = c.request("POST", "/v1/products", {"name": "keepalive-2"})
        self.assertEqual(st, 201)
        self.assertIs(c.conn.sock, sock, "second POST did not reuse the connection")
        # An error answer to a request with a body keeps the connection usable as well.
        st, hdrs, _ = c.request("POST", "/v1/products", {"name": "keepalive-2"})
        self.assertEqual(st, 409)
        st, _, _ = c.request("GET", "/healthz")
        self.assertEqual(st, 200)
        c.close()

    def test_concurrent_clients(self):
        errors = []

        def worker(n):
            try:
                c = self.d.client()
                for i in range(10):
                    st, _, body = c.api("POST", "/v1/products", {"name": "conc-%d-%d" % (n, i)})
                    if st != 201:
                        errors.append((n, i, st, body))
                    st, _, body = c.api("GET", "/v1/products?limit=5")
                    if st != 200:
                        errors.append((n, i, st, body))
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((n, repr(e)))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        names = {p["name"] for p in self.list_all("/v1/products")}
        self.assertTrue({"conc-%d-%d" % (n, i) for n in range(8) for i in range(10)} <= names)

    def test_log_checkpointed_off_the_request_path(self):
        """API writes leave the write-ahead log to the daemon's timer, which copies all of it."""
        start = len(self.d.log())
        for i in range(20):
            self.assertOk(self.api("POST", "/v1/products", {"name": "ckpt-%d" % i}), 201)
        deadline = time.time() + 10
        seen = []
        while time.time() < deadline and not seen:
            seen = re.findall(r"msg=checkpoint log_pages=(\d+) copied_pages=(\d+)", self.d.log()[start:])
            time.sleep(0.2)
        self.assertTrue(seen, "no checkpoint within 10 s of the writes")
        log_pages, copied = map(int, seen[-1])
        self.assertGreater(log_pages, 0)
        self.assertEqual(copied, log_pages)

    def tls_handshake(self, ctx):
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        try:
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise

    def legacy_context(self, maxv):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.0/1.1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maxv
        return ctx

    def test_tls11_and_below_refused(self):
        ctx = self.legacy_context(ssl.TLSVersion.TLSv1_1)
        # Control: the client context is able to speak TLS 1.1, so a refusal below comes from the server.
        self.assertEqual(self.local_server_version(ctx), "TLSv1.1")
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        try:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except OSError:  # ssl.SSLError (protocol version alert), reset or EOF during the handshake
            pass
        else:
            version = s.version()
            s.close()
            self.fail("server accepted a %s handshake" % version)
        finally:
            raw.close()
        # The daemon is still fine.
        self.assertEqual(self.api("GET", "/healthz")[0], 200)

    def local_server_version(self, client_ctx):
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(harness.os.path.join(self.d.pki_dir, "server.crt"),
                            harness.os.path.join(self.d.pki_dir, "server.key"))
        srv.set_ciphers("DEFAULT:@SECLEVEL=0")
        srv.minimum_version = ssl.TLSVersion.TLSv1
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)

        def serve():
            try:
                c, _ = ls.accept()
                with srv.wrap_socket(c, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

        t = threading.Thread(target=serve)
        t.start()
        try:
            raw = socket.create_connection(("127.0.0.1", ls.getsockname()[1]), timeout=10)
            with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.version()
        finally:
            t.join(10)
            ls.close()

    def test_tls12_accepted(self):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        s = self.tls_handshake(ctx)
        try:
            self.assertEqual(s.version(), "TLSv1.2")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        finally:
            s.close()

    def test_tls13_accepted(self):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        s = self.tls_handshake(ctx)
        self.assertEqual(s.version(), "TLSv1.3")
        s.close()

    def test_wrong_ca_rejected_by_client(self):
        # The certificate really chains to D/pki/root.crt only (sanity check of the harness trust setup).
        ctx = ssl.create_default_context()  # system CAs
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls_handshake(ctx).close()


class VersionHelpTest(harness.DaemonTestCase):
    start_daemon = False

    def test_version(self):
        p = harness.run_tool([harness.binary("aegisd"), "--version"], timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        self.assertRegex(out, r"\d+\.\d+")

    def test_help(self):
        p = harness.run_tool([harness.binary("aegisd"), "--help"], timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        for flag in ("--config", "--data-dir", "--listen"):
            self.assertIn(flag, out)

    def test_unknown_flag_is_an_error(self):
        p = harness.run_tool([harness.binary("aegisd"), "--no-such-flag"], timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--no-such-flag", p.stderr + p.stdout)


class EpollEventLoopTest(harness.DaemonTestCase):
    """event_loop = epoll (the default, named here) serves, keeps connections alive, and shuts down cleanly on SIGTERM
    (it once aborted in libmicrohttpd when the quiesced listen socket was closed before the workers let go)."""

    config = {"event_loop": "epoll"}

    def test_serves_and_stops_cleanly(self):
        for _ in range(3):
            st, _, body = self.api("GET", "/healthz")
            self.assertEqual(st, 200, body)
        st, _, body = self.api("GET", "/v1/tenant")
        self.assertEqual(st, 200, body)
        # tearDownClass sends SIGTERM and requires exit 0 with a clean log
