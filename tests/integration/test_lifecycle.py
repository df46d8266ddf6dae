"""Process lifecycle: restart, SIGTERM drain, config and key-permission errors, slow and malformed clients."""

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import time

import harness

START_FAIL_TIMEOUT = 10


def raw_tls(d, timeout=10):
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        return d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def read_response(s, deadline):
    """Reads one HTTP response (headers + Content-Length body) from s. Returns (status or None, headers text,
    body bytes, closed); status None when the server closed without an answer."""
    data = b""
    closed = False
    while b"\r\n\r\n" not in data:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            chunk = b""
        if not chunk:
            closed = True
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return None, data.decode("latin-1"), b"", True
    head, body = data.split(b"\r\n\r\n", 1)
    head = head.decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(body) < length and not closed:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            closed = True
            break
        body += chunk
    return status, head, body, closed


def exchange(d, payload, tls=True, timeout=10, allow_silence=False):
    """Connects, sends payload (bytes), reads until one response or close. Returns (status or None, head, body).
    A socket.timeout propagates (the daemon neither answered nor closed in time) unless allow_silence, when
    (None, "(no answer)", b"") is returned."""
    deadline = time.monotonic() + timeout
    s = raw_tls(d, timeout) if tls else socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server may close before reading all of it
        if not tls:
            # Whatever the server sends back (a TLS alert), the connection must end.
            while True:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    if not s.recv(65536):
                        return None, "", b""
                except (ConnectionResetError, BrokenPipeError):
                    return None, "", b""
        try:
            status, head, body, _ = read_response(s, deadline)
        except socket.timeout:
            if not allow_silence:
                raise
            return None, "(no answer)", b""
        return status, head, body
    finally:
        s.close()


def request_bytes(d, method, path, body=b"", headers=None, token=None):
    h = {"Host": "127.0.0.1:%d" % d.port}
    if token:
        h["Authorization"] = "Bearer " + token
    if body:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    return ("%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items()) +
            "\r\n").encode() + body


class IsolatedDaemons(harness.DaemonTestCase):
    """Tests that need their own daemon(s): each test creates and cleans up what it starts."""

    start_daemon = False

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()

    def new_daemon(self, **kw):
        d = harness.Daemon(**kw)
        self.daemons.append(d)
        return d

    def expect_start_failure(self, d):
        """Spawns d, which must exit non-zero within START_FAIL_TIMEOUT without becoming ready. Returns its
        stderr text."""
        d.spawn()
        try:
            rc = d.proc.wait(START_FAIL_TIMEOUT)
        except harness.subprocess.TimeoutExpired:
            d.kill()
            self.fail("aegisd kept running (expected a start failure):\n" + harness.tail(d.log()))
        d.proc = None
        harness._live.remove(d)
        log = d.log()
        self.assertNotEqual(rc, 0, "aegisd exited 0:\n" + log)
        self.assertLess(rc, 128, "aegisd died of a signal (%d):\n%s" % (rc, log))
        d.check_exit(rc, expect_zero=False)
        self.assertEqual(harness.read_text(d.ready_file).strip(), "",
                         "ready file written by a daemon that failed to start")
        return log


class RestartTest(IsolatedDaemons):
    def test_restart_keeps_data_and_tokens(self):
        d = self.new_daemon()
        d.start()
        c = d.client()
        st, _, p = c.api("POST", "/v1/products", {"name": "survivor", "description": "kept"})
        self.assertEqual(st, 201, p)
        st, _, g = c.api("POST", "/v1/device-groups", {"product_id": p["id"], "name": "g"})
        self.assertEqual(st, 201, g)
        keys = harness.gen_keys(5)
        st, _, res = c.api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in keys],
                                                          "group_id": g["id"]})
        self.assertEqual(st, 200, res)
        st, _, tok = c.api("POST", "/v1/tokens", {"name": "reader", "role": "reader"})
        self.assertEqual(st, 201, tok)
        d.stop()

        d.start()
        c = d.client()
        self.assertEqual(c.api("GET", "/readyz")[0], 200)
        st, _, again = c.api("GET", "/v1/products/%d" % p["id"])
        self.assertEqual((st, again), (200, p))
        st, _, page = c.api("GET", "/v1/devices?group_id=%d" % g["id"])
        self.assertEqual(st, 200)
        self.assertEqual(sorted(x["id"] for x in page["items"]), sorted(harness.device_id(k) for k in keys))
        st, _, _ = c.api("GET", "/v1/products", token=tok["token"])
        self.assertEqual(st, 200, "token created before the restart no longer works")
        st, _, body = c.api("POST", "/v1/products", {"name": "after-restart"})
        self.assertEqual(st, 201, body)
        self.assertGreater(body["id"], p["id"])
        d.stop()


class DrainTest(IsolatedDaemons):
    def test_sigterm_drains_inflight_request(self):
        d = self.new_daemon()
        d.start()
        body = json.dumps({"name": "drained", "description": "x" * 200}).encode()
        half = len(body) // 2
        s = raw_tls(d)
        try:
            s.sendall(request_bytes(d, "POST", "/v1/products", body, token=d.token)[:-len(body) + half])
            time.sleep(0.3)  # let the daemon read the headers
            d.signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(d.proc.poll(), "aegisd exited with a request in flight:\n" + d.log())
            self.assert_new_connections_refused(d)
            s.sendall(body[half:])
            status, head, resp, _ = read_response(s, time.monotonic() + 15)
        finally:
            s.close()
        self.assertEqual(status, 201, "in-flight request during drain: %r %r\n%s" % (head, resp, d.log()))
        self.assertEqual(json.loads(resp)["name"], "drained")
        rc = d.wait(20)
        d.check_exit(rc)
        self.assertEqual(rc, 0)
        # The drained request was committed.
        d.start()
        names = [p["name"] for p in d.client().api("GET", "/v1/products")[2]["items"]]
        self.assertIn("drained", names)
        d.stop()

    def test_drain_503_carries_retry_after(self):
        # A keep-alive client's next request during the drain is answered 503 with Retry-After (telemetry.md §2)
        # and the connection closed, while a request in flight holds the drain open.
        d = self.new_daemon(config={"drain_timeout": 10, "connection_timeout": 60})
        d.start()
        keep = raw_tls(d)
        slow = raw_tls(d)
        body = json.dumps({"name": "held"}).encode()
        try:
            keep.sendall(request_bytes(d, "GET", "/healthz"))
            status, _, _, _ = read_response(keep, time.monotonic() + 10)
            self.assertEqual(status, 200)
            slow.sendall(request_bytes(d, "POST", "/v1/products", body, token=d.token)[:-5])
            time.sleep(0.3)
            d.signal(signal.SIGTERM)
            time.sleep(0.5)
            keep.sendall(request_bytes(d, "GET", "/healthz"))
            status, head, resp, _ = read_response(keep, time.monotonic() + 10)
            self.assertEqual(status, 503, head)
            self.assertRegex(head, r"(?im)^Retry-After: [1-9][0-9]*\r?$")
            self.assertRegex(head, r"(?im)^Connection: close\r?$")
            self.assertEqual(json.loads(resp)["error"], "unavailable")
            slow.sendall(body[-5:])
            status, _, _, _ = read_response(slow, time.monotonic() + 10)
            self.assertEqual(status, 201)
        finally:
            keep.close()
            slow.close()
        d.check_exit(d.wait(20))

    def assert_new_connections_refused(self, d):
        try:
            raw = socket.create_connection(("127.0.0.1", d.port), timeout=3)
        except ConnectionRefusedError:
            return
        # The kernel took the connection: the daemon must at least not serve it.
        try:
            s = d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(request_bytes(d, "GET", "/healthz"))
            status, head, _, _ = read_response(s, time.monotonic() + 3)
            s.close()
        except socket.timeout:
            raw.close()
            self.fail("connection accepted during the drain but never answered: the listen socket is still open")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        if status is not None:
            self.assertEqual(status, 503, "a new connection was served during the drain: %r" % head)

    def test_drain_timeout_bounds_the_shutdown(self):
        # A client that never finishes its body cannot hold the shutdown beyond drain_timeout.
        d = self.new_daemon(config={"drain_timeout": 1, "connection_timeout": 60})
        d.start()
        body = json.dumps({"name": "stalled"}).encode()
        s = raw_tls(d)
        try:
            s.sendall(request_bytes(d, "POST", "/v1/products", body, token=d.token)[:-5])
            time.sleep(0.3)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            rc = d.wait(15)
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        d.check_exit(rc)
        self.assertLess(elapsed, 5, "shutdown took %.1f s with drain_timeout = 1" % elapsed)

    def test_sigterm_with_idle_keepalive_exits_promptly(self):
        d = self.new_daemon()
        d.start()
        c = d.client()
        self.assertEqual(c.api("GET", "/healthz")[0], 200)  # the connection stays open, idle
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)  # and a TCP connection with no TLS yet
        try:
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            rc = d.wait(15)
            elapsed = time.monotonic() - t0
        finally:
            s.close()
            c.close()
        d.check_exit(rc)
        self.assertLess(elapsed, 5, "idle connections held the shutdown for %.1f s" % elapsed)

    def test_refused_after_exit(self):
        d = self.new_daemon()
        d.start()
        port = d.port
        d.stop()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=3).close()


class ConfigErrorTest(IsolatedDaemons):
    def test_unknown_key(self):
        d = self.new_daemon()
        d.write_config("# test\n\nlog_level = info\nno_such_key = 1\n")
        log = self.expect_start_failure(d)
        self.assertIn("aegis.conf:4", log)
        self.assertIn("no_such_key", log)

    def test_bad_values(self):
        cases = [("threads = lots\n", 1), ("# c\nmax_body_bytes = 10\n", 2), ("connection_timeout = 0\n", 1),
                 ("threads = 1\nthreads = 2x\n", 2), ("log_level = loud\n", 1), ("listen = nowhere\n", 1),
                 ("max_connections = -5\n", 1), ("missing the equals sign\n", 1),
                 ("drain_timeout = 99999999999999999999999\n", 1)]
        d = self.new_daemon()
        for text, line in cases:
            with self.subTest(config=text):
                d.write_config(text)
                log = self.expect_start_failure(d)
                self.assertIn("aegis.conf:%d" % line, log)

    def test_no_start_without_the_write_ahead_log(self):
        # A daemon that cannot open what the telemetry writer needs (here the log it flushes, refused with EMFILE by
        # tests/tools/preload/wal_emfile.c as for a start with too few free descriptors) does not start, rather than
        # report ready and answer every upload 503 "could not be stored" (issue 16).
        d = self.new_daemon(env={"LD_PRELOAD": harness.binary("tests/tools/wal_emfile.so"), "WAL_EMFILE": "1",
                                 "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
                                 .lstrip(":")})
        log = self.expect_start_failure(d)
        self.assertIn("wal_emfile: refusing", log)
        self.assertIn("cannot open the write-ahead log", log)
        self.assertIn("Too many open files", log)

    def test_missing_config_file(self):
        d = self.new_daemon()
        d.config_path = os.path.join(d.tmp, "does-not-exist.conf")
        log = self.expect_start_failure(d)
        self.assertIn("does-not-exist.conf", log)

    def test_valid_config_accepted(self):
        d = self.new_daemon(config="# full config\n\nthreads = 2\nmax_connections = 64\nconnection_timeout = 10\n"
                                   "max_body_bytes = 65536\nimport_max_bytes = 1048576\ndrain_timeout = 5\n"
                                   "per_ip_connections = 32\ncert_lifetime = 86400\nnonce_ttl = 60\n"
                                   "log_level = \"debug\"\n")
        d.start()
        self.assertEqual(d.client().api("GET", "/healthz")[0], 200)
        d.stop()

    def test_key_with_group_or_other_bits_refused(self):
        d = self.new_daemon()
        key = os.path.join(d.data_dir, "pki", "server.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600, "pki init did not write the key 0600")
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                os.chmod(key, mode)
                log = self.expect_start_failure(d)
                self.assertIn(key, log)
        os.chmod(key, 0o600)
        d.start()  # control: the same dir starts once the key is private
        d.stop()

    def test_missing_key_file(self):
        d = self.new_daemon()
        missing = os.path.join(d.tmp, "nope.key")
        d.write_config("tls_key = %s\n" % missing)
        log = self.expect_start_failure(d)
        self.assertIn(missing, log)

    def test_newer_database_refused(self):
        d = self.new_daemon()
        d.start()  # migrates
        d.stop()
        db = sqlite3.connect(os.path.join(d.data_dir, "aegis.db"))
        try:
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
            db.commit()
        finally:
            db.close()
        self.expect_start_failure(d)

    def test_pki_init_gives_a_tenant_from_before_device_roots_its_own_hierarchy(self):
        """A tenant made before tenants had device roots (its issuing CA signed by the service root, no root in the
        database) gets, from `aegisctl pki init`, a device root of its own and a new active issuing CA under it, and
        the old CA's key is deleted (it signs nothing any more); a second run changes nothing."""
        d = self.new_daemon()
        tid = d.tenant_ids["acme"]
        tdir = os.path.join(d.pki_dir, "tenants", str(tid))
        j = lambda n: os.path.join(tdir, n)
        # Rebuild ca-1 as the service root used to sign it.
        with open(j("ca.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
        for args in (("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", j("ca-1.key")),
                     ("req", "-new", "-key", j("ca-1.key"), "-subj", "/CN=Aegis Issuing CA acme 1/O=acme",
                      "-out", j("ca.csr")),
                     ("x509", "-req", "-in", j("ca.csr"), "-CA", d.cacert, "-CAkey",
                      os.path.join(d.pki_dir, "root.key"), "-set_serial", "7", "-days", "30", "-extfile",
                      j("ca.ext"), "-out", j("ca-1.crt"))):
            p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        os.chmod(j("ca-1.key"), 0o600)
        for name in ("root.crt", "root.key"):
            os.unlink(j(name))
        with open(j("ca-1.crt")) as f:
            legacy = f.read()
        db = sqlite3.connect(os.path.join(d.data_dir, "aegis.db"))
        try:
            db.execute("UPDATE tenants SET device_root_pem = NULL WHERE id = ?", (tid,))
            db.execute("UPDATE tenant_cas SET cert_pem = ? WHERE tenant_id = ?", (legacy, tid))
            db.commit()
        finally:
            db.close()
        out = json.loads(d.ctl_local("pki", "init", "--json").stdout)
        self.assertEqual([m["key_name"] for m in out["tenant_cas"]], ["tenants/%d/ca-2" % tid])
        self.assertFalse(os.path.exists(j("ca-1.key")), "the service-root-signed CA's key was kept")
        self.assertTrue(os.path.exists(j("ca-2.key")))
        with open(j("root.crt")) as f:
            root = f.read()
        db = sqlite3.connect(os.path.join(d.data_dir, "aegis.db"))
        try:
            stored, = db.execute("SELECT device_root_pem FROM tenants WHERE id = ?", (tid,)).fetchone()
            cas = db.execute("SELECT key_name, active FROM tenant_cas WHERE tenant_id = ? ORDER BY id",
                             (tid,)).fetchall()
        finally:
            db.close()
        self.assertEqual(stored.strip(), root.strip())
        self.assertEqual(cas, [("tenants/%d/ca-1" % tid, 0), ("tenants/%d/ca-2" % tid, 1)])
        p = subprocess.run(["openssl", "verify", "-CAfile", j("root.crt"), j("ca-2.crt")], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(d.ctl_local("pki", "init", "--json").stdout)["tenant_cas"], [])
        # Once recorded, the device root is never silently replaced: without its files, rotation refuses.
        for name in ("root.crt", "root.key"):
            os.rename(j(name), j(name + ".away"))
        p = d.ctl_local("pki", "rotate", "acme", check=False)
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertIn("restore", p.stderr)
        self.assertFalse(os.path.exists(j("root.crt")))

    def test_pki_files_are_private(self):
        d = self.new_daemon()
        for name in ("root.key", "server.key"):
            self.assertEqual(os.stat(os.path.join(d.pki_dir, name)).st_mode & 0o077, 0, name)
        for name in ("root.crt", "server.crt"):
            self.assertTrue(os.path.exists(os.path.join(d.pki_dir, name)), name)


class SlowClientTest(harness.DaemonTestCase):
    config = {"connection_timeout": 2}

    def test_idle_connections_are_closed(self):
        d = self.d
        conns = {}
        t0 = time.monotonic()
        conns["tcp, no TLS handshake"] = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        conns["TLS, no request"] = raw_tls(d)
        partial = raw_tls(d)
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        conns["TLS, half the headers"] = partial
        ka = raw_tls(d)
        ka.sendall(request_bytes(d, "GET", "/healthz"))
        status, _, _, closed = read_response(ka, time.monotonic() + 5)
        self.assertEqual((status, closed), (200, False))
        conns["TLS, idle keep-alive"] = ka
        slow_body = raw_tls(d)
        body = json.dumps({"name": "never-finished"}).encode()
        slow_body.sendall(request_bytes(d, "POST", "/v1/products", body, token=d.token)[:-5])
        conns["TLS, body stalled"] = slow_body

        still_open = []
        for name, s in conns.items():
            deadline = t0 + 8
            try:
                while True:
                    s.settimeout(max(0.05, deadline - time.monotonic()))
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        raise
                    except OSError:  # reset, TLS alert or EOF: closed
                        data = b""
                    if not data:
                        break
                    # A 408 or 400 answer before the close is fine.
            except socket.timeout:
                still_open.append(name)
            finally:
                s.close()
        elapsed = time.monotonic() - t0
        self.assertEqual(still_open, [], "not closed within 8 s with connection_timeout = 2")
        self.assertLess(elapsed, 8)
        self.assertEqual(self.d.client().api("GET", "/healthz")[0], 200)
        st, _, page = self.api("GET", "/v1/products")
        self.assertNotIn("never-finished", [p["name"] for p in page["items"]])


class MalformedRequestTest(harness.DaemonTestCase):
    def healthy(self):
        st, _, body = self.d.client().api("GET", "/healthz")
        self.assertEqual((st, body), (200, {"status": "ok"}), "daemon unhealthy after a malformed request")
        self.assertIsNone(self.d.proc.poll(), "daemon exited")

    def assert_rejected(self, payload, ok_statuses=(400, 401, 404, 405, 408, 411, 413, 414, 431), timeout=10,
                        allow_silence=False):
        status, head, body = exchange(self.d, payload, timeout=timeout, allow_silence=allow_silence)
        if status is not None:
            self.assertIn(status, ok_statuses, "answer %r" % head[:200])
        self.healthy()
        return status

    def test_garbage_instead_of_http(self):
        # libmicrohttpd reads a request line starting with NUL as an empty line and waits for more, until
        # connection_timeout: only require that the daemon survives it.
        self.assert_rejected(b"\x00\x01\x02\x03garbage\xff\xfe\r\n\r\n", timeout=2, allow_silence=True)
        self.assert_rejected(b"GARBAGE\r\n\r\n")
        self.assert_rejected(b"GET\r\n\r\n")
        self.assert_rejected(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", ok_statuses=(400, 404, 505))

    def test_plaintext_and_random_bytes_on_tls_port(self):
        # Deterministic payloads: random bytes can look like the start of a record or handshake message longer
        # than what was sent, and the TLS layer then rightly waits for the rest. Last: a complete ClientHello
        # record with a garbage body.
        junk = bytes((i * 37 + 11) % 256 for i in range(4096))
        for payload in (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"\x55" + junk,
                        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", b"\x16\x03\x03\x00\x40\x01\x00\x00\x3c" + junk[:60]):
            with self.subTest(payload=payload[:20]):
                exchange(self.d, payload, tls=False)
                self.healthy()

    def test_huge_header(self):
        for size in (20 * 1024, 100 * 1024):
            with self.subTest(size=size):
                status = self.assert_rejected(request_bytes(self.d, "GET", "/healthz",
                                                            headers={"X-Big": "a" * size}),
                                              ok_statuses=(200, 400, 413, 431))
                if size >= 100 * 1024:
                    self.assertNotEqual(status, 200, "a 100 KiB header was accepted")

    def test_many_headers(self):
        headers = {"X-H-%d" % i: "v" * 10 for i in range(3000)}
        self.assert_rejected(request_bytes(self.d, "GET", "/healthz", headers=headers),
                             ok_statuses=(200, 400, 413, 431))

    def test_long_url(self):
        self.assert_rejected(b"GET /v1/products/" + b"1" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                             ok_statuses=(400, 404, 413, 414, 431))

    def test_bad_content_length(self):
        tok = self.d.token
        for cl in ("abc", "-5", "1e3", "99999999999999999999999", "10, 12"):
            with self.subTest(content_length=cl):
                payload = ("POST /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %s\r\n\r\n{}" % (tok, cl)).encode()
                self.assert_rejected(payload)
        payload = ("POST /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}"
                   % tok).encode()
        self.assert_rejected(payload)

    def test_control_bytes_in_path(self):
        self.assert_rejected(b"GET /v1/products/\x01\x7f HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_rejected(b"GET /v1/devices/%00 HTTP/1.1\r\nHost: x\r\n\r\n", ok_statuses=(400, 401, 404))

    def test_client_vanishes_mid_body(self):
        for cut in (0, 10, 100):
            s = raw_tls(self.d)
            body = json.dumps({"name": "vanish", "description": "z" * 300}).encode()
            s.sendall(request_bytes(self.d, "POST", "/v1/products", body, token=self.d.token)[:-len(body) + cut])
            s.close()
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a cut ClientHello
        raw.close()
        time.sleep(0.2)
        self.healthy()
        st, _, page = self.api("GET", "/v1/products")
        self.assertNotIn("vanish", [p["name"] for p in page["items"]])

    def test_invalid_utf8_header_values(self):
        self.assert_rejected(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\xc0\r\n\r\n",
                             ok_statuses=(200, 400))
        self.assert_rejected(b"GET /v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
                             ok_statuses=(400, 401))
