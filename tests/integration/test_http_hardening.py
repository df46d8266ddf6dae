"""HTTP hardening (issue 10): request smuggling refused, 413 visible to clients that write the whole body first.

Raw requests over TLS (Python's ssl module on a plain socket): an HTTP client library would normalise the
malformed headers these tests send."""

import http.client
import re
import socket
import ssl
import time

import harness

HOST = b"Host: 127.0.0.1\r\n"
SMUGGLED = b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n"


class Raw:
    """One TLS connection to the daemon, written and read as bytes."""

    def __init__(self, d, timeout=5):
        raw = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
        try:
            self.s = d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise

    def send(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server may answer and close before it read everything

    def read_all(self):
        """Everything the server sends until it closes; (bytes, closed) where closed is False when the
        server kept the connection open past the socket timeout."""
        data = b""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except socket.timeout:
            return data, False
        except (ConnectionResetError, ssl.SSLError):
            return data, True

    def close(self):
        self.s.close()


class SmugglingTest(harness.DaemonTestCase):
    """RFC 9112 §6.1, §6.3, §3.2, §5: ambiguous framing is answered 400 and the connection closed, so bytes
    after the headers are never run as a second request."""

    def exchange(self, head, rest=b""):
        c = Raw(self.d)
        try:
            c.send(head + rest)
            return c.read_all()
        finally:
            c.close()

    def assert_refused(self, head, rest=SMUGGLED, statuses=(b"400",)):
        data, closed = self.exchange(head, rest)
        self.assertTrue(closed, "connection left open after %r: %r" % (head[:120], data[:300]))
        self.assertIn(data[9:12], statuses, "answer to %r: %r" % (head[:120], data[:300]))
        self.assertEqual(data.count(b"HTTP/1.1 200"), 0, "the trailing request was run: %r" % data[:600])
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)
        return data

    def post_head(self, *headers):
        return (b"POST /v1/products HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + self.d.token.encode() +
                b"\r\nContent-Type: application/json\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n")

    def test_content_length_and_transfer_encoding(self):
        data = self.assert_refused(self.post_head(b"Content-Length: 5", b"Transfer-Encoding: chunked"),
                                   b"0\r\n\r\n" + SMUGGLED)
        self.assertIn(b"Connection: close", data)
        self.assertIn(b'"error":"bad_request"', data)

    def test_two_content_lengths(self):
        self.assert_refused(self.post_head(b"Content-Length: 2", b"Content-Length: 41"), b"{}" + SMUGGLED)

    def test_transfer_encoding_other_than_chunked(self):
        for te in (b"xchunked", b"gzip, chunked", b"chunked, identity", b"identity"):
            with self.subTest(te=te):
                self.assert_refused(self.post_head(b"Transfer-Encoding: " + te), b"0\r\n\r\n" + SMUGGLED)
        with self.subTest(te="twice"):
            self.assert_refused(self.post_head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
                                b"0\r\n\r\n" + SMUGGLED)

    def test_negative_content_length(self):
        # libmicrohttpd 0.9.75 answers this one itself, before the handler runs (docs/api.md "Errors").
        self.assert_refused(self.post_head(b"Content-Length: -1"))

    def test_nul_in_header_value(self):
        for pos in ("first", "last"):
            with self.subTest(header=pos):
                h = b"X-Test: a\x00b"
                head = (b"GET /healthz HTTP/1.1\r\n" + (h + b"\r\n" + HOST if pos == "first" else HOST + h + b"\r\n") +
                        b"\r\n")
                self.assert_refused(head)

    def test_space_in_header_name(self):
        for h in (b"X Test: a", b"X-Test : a", b"X-Test\t: a"):
            with self.subTest(header=h):
                self.assert_refused(b"GET /healthz HTTP/1.1\r\n" + HOST + h + b"\r\n\r\n")

    def test_obs_fold(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Test: a\r\n b\r\n\r\n")

    def test_http11_host_missing_or_repeated(self):
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n\r\n")
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n" + HOST + b"Host: other\r\n\r\n")

    def test_http10_without_host_still_served(self):
        data, closed = self.exchange(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])

    def test_answered_by_libmicrohttpd(self):
        # Refused before the handler runs; documented in docs/api.md "Errors".
        self.assert_refused(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", statuses=(b"414",))
        self.assert_refused(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
                            statuses=(b"431",))
        self.assert_refused(b"GET /healthz HTTP/2.0\r\n" + HOST + b"\r\n", statuses=(b"505",))

    def test_well_formed_requests_keep_the_connection(self):
        c = Raw(self.d, timeout=1)
        try:
            body = b'{"name":"smuggle-control"}'
            c.send(self.post_head(b"Content-Length: %d" % len(body)) + body + SMUGGLED)
            data, closed = c.read_all()
        finally:
            c.close()
        self.assertFalse(closed, data[:300])
        self.assertTrue(data.startswith(b"HTTP/1.1 201"), data[:300])
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1, data[:600])
        chunked = (b"POST /v1/products HTTP/1.1\r\n" + HOST + b"Authorization: Bearer " + self.d.token.encode() +
                   b"\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n")
        body = b'{"name":"chunked-control"}'
        st = self.exchange(chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))[0][:12]
        self.assertEqual(st, b"HTTP/1.1 201")


class BodyOverLimitTest(harness.DaemonTestCase):
    """A body over the route's limit is read (up to a bound) and answered 413, so a client that writes its whole
    body before it reads sees the 413 rather than a reset (docs/telemetry.md: halve the batch on 413)."""

    def test_413_seen_by_a_client_that_writes_first(self):
        body = b'{"csr":"' + b"x" * (70 * 1024) + b'"}'  # /v1/device/attest takes 64 KiB
        seen = []
        for _ in range(20):
            conn = http.client.HTTPSConnection("127.0.0.1", self.d.port, timeout=20,
                                               context=self.d.ssl_context())
            try:
                conn.request("POST", "/v1/device/attest", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                seen.append((resp.status, resp.read()[:60]))
            except (OSError, http.client.HTTPException) as e:
                seen.append(repr(e))
            finally:
                conn.close()
        self.assertEqual([s[0] if isinstance(s, tuple) else s for s in seen], [413] * 20, seen)
        # The connection stays usable after a 413 whose body was read.
        c = self.d.client(token=None)
        st, _, raw = c.request("POST", "/v1/device/attest", body=body)
        self.assertEqual(st, 413, raw)
        self.assertEqual(c.request("GET", "/healthz")[0], 200)

    def test_expect_100_continue_answered_at_once(self):
        c = Raw(self.d)
        try:
            c.send(b"POST /v1/device/attest HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                   b"Content-Length: 70000\r\nExpect: 100-continue\r\n\r\n")
            t0 = time.monotonic()
            data, _ = c.read_all()
        finally:
            c.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        self.assertLess(time.monotonic() - t0, 5)


LOG_PAIR = re.compile(r'([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def log_pairs(line):
    """The key=value pairs of a log line, values quoted or bare, as a key-value parser reads them."""
    return LOG_PAIR.findall(line)


class LogTest(harness.DaemonTestCase):
    """Values from outside cannot forge keys or lines in the log, and every line has a msg=."""

    def test_method_cannot_forge_a_key(self):
        start = len(self.d.log())
        for method in (b'FOO"msg="x', b"FOO\\\"msg=x", b"BAR\xff\xfe"):
            c = Raw(self.d)
            try:
                c.send(method + b" /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
                c.read_all()
            finally:
                c.close()
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline and len(lines) < 3:
            lines = [l for l in self.d.log()[start:].splitlines() if "msg=request" in l and ("FOO" in l or "BAR" in l)]
            time.sleep(0.1)
        self.assertEqual(len(lines), 3, self.d.log()[start:])
        for line in lines:
            keys = [k for k, _ in log_pairs(line)]
            self.assertEqual(keys.count("msg"), 1, line)
            self.assertEqual(keys.count("route"), 1, line)
        self.assertIn('method="FOO\\"msg=\\"x"', lines[0])
        self.assertIn('method="BAR\\xff\\xfe"', lines[2])

    def test_every_line_has_msg(self):
        self.api("GET", "/v1/products")
        self.api("POST", "/v1/tokens", {"name": "log-check", "role": "reader"})
        for line in self.d.log().splitlines():
            if not line.startswith("ts="):
                continue  # a sanitizer's or libc's own output
            keys = [k for k, _ in log_pairs(line)]
            self.assertEqual(keys[:3], ["ts", "level", "msg"], line)
            self.assertEqual(keys.count("msg"), 1, line)


class TlsTest(harness.DaemonTestCase):
    """TLS 1.2 offers only AEAD suites with forward secrecy; sessions resume with tickets; renegotiation is
    refused; the server sends its whole chain (docs/api.md "TLS")."""

    def handshake(self, ctx, session=None):
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        try:
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        except BaseException:
            raw.close()
            raise

    def tls12(self, ciphers=None):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        return ctx

    def test_tls12_only_aead_with_forward_secrecy(self):
        for c in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                  "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256", "AES256-SHA"):
            with self.subTest(cipher=c):
                with self.assertRaises((ssl.SSLError, ConnectionResetError), msg="%s accepted" % c):
                    self.handshake(self.tls12(c)).close()
        for c in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with self.subTest(cipher=c):
                s = self.handshake(self.tls12(c))
                self.assertEqual(s.cipher()[0], c)
                s.close()
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)

    def get_healthz(self, s):
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        data = b""
        while b'{"status":"ok"}' not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def test_session_resumption(self):
        for name, ctx in (("TLSv1.2", self.tls12()), ("TLSv1.3", ssl.create_default_context(cafile=self.d.cacert))):
            with self.subTest(version=name):
                s = self.handshake(ctx)
                self.assertEqual(s.version(), name)
                self.assertTrue(self.get_healthz(s).startswith(b"HTTP/1.1 200"))  # TLS 1.3: the ticket comes after
                sess = s.session
                s.close()
                self.assertIsNotNone(sess)
                s2 = self.handshake(ctx, session=sess)
                try:
                    self.assertTrue(s2.session_reused, "%s session not resumed" % name)
                    self.assertTrue(self.get_healthz(s2).startswith(b"HTTP/1.1 200"))
                finally:
                    s2.close()

    def test_client_renegotiation_refused(self):
        # Python's ssl cannot renegotiate: openssl s_client's "R" command does.
        script = ("R\n", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        p = harness.subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.d.port, "-tls1_2",
                                      "-CAfile", self.d.cacert, "-msg"], stdin=harness.subprocess.PIPE,
                                     stdout=harness.subprocess.PIPE, stderr=harness.subprocess.STDOUT)
        try:
            time.sleep(1)
            for line in script:
                p.stdin.write(line.encode())
                p.stdin.flush()
                time.sleep(1)
            out, _ = p.communicate(timeout=10)
        except BrokenPipeError:
            out, _ = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        out = out.decode("latin1")
        self.assertIn("RENEGOTIATING", out)
        after = out[out.index("RENEGOTIATING"):]
        self.assertNotIn("ServerHello", after, "the server renegotiated")
        self.assertNotIn("HTTP/1.1 200", after)
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)


class TlsChainTest(harness.DaemonTestCase):
    """A certificate file with the chain (leaf, then intermediate): the server sends both, so a client that
    trusts only the root verifies it."""

    start_daemon = False

    def openssl(self, *args):
        p = harness.run_tool(["openssl"] + list(args))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_server_sends_its_chain(self):
        d = harness.Daemon()
        try:
            t = d.tmp
            j = lambda n: harness.os.path.join(t, n)
            with open(j("int.ext"), "w") as f:
                f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
            with open(j("leaf.ext"), "w") as f:
                f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
            for name in ("int", "leaf"):
                self.openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", j(name + ".key"))
                self.openssl("req", "-new", "-key", j(name + ".key"), "-subj", "/CN=aegis-test-" + name,
                             "-out", j(name + ".csr"))
            self.openssl("x509", "-req", "-in", j("int.csr"), "-CA", d.cacert,
                         "-CAkey", harness.os.path.join(d.pki_dir, "root.key"), "-set_serial", "2", "-days", "2",
                         "-extfile", j("int.ext"), "-out", j("int.crt"))
            self.openssl("x509", "-req", "-in", j("leaf.csr"), "-CA", j("int.crt"), "-CAkey", j("int.key"),
                         "-set_serial", "3", "-days", "2", "-extfile", j("leaf.ext"), "-out", j("leaf.crt"))
            with open(j("chain.pem"), "w") as f:
                f.write(open(j("leaf.crt")).read() + open(j("int.crt")).read())
            harness.os.chmod(j("leaf.key"), 0o600)
            d.write_config({"tls_cert": j("chain.pem"), "tls_key": j("leaf.key")})
            d.start()
            raw = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            with d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertIn(("commonName", "aegis-test-leaf"), [x[0] for x in s.getpeercert()["subject"]])
            d.stop()
        finally:
            d.cleanup()
