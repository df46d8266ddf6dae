"""At a connection limit the daemon refuses fast (issue 16): a connection it will not serve is closed within a
second — at max_connections when no connection can give way, at the per-address limit, and at the open-files limit
(max_connections is lowered to fit it) — instead of waiting in the listen backlog until its client gives up; and
idle keep-alive connections give way to new clients before anything is refused."""

import json
import os
import re
import socket
import ssl
import time

import harness

REFUSE_WITHIN_S = 1.0


class LimitBase(harness.DaemonTestCase):
    def tls(self, timeout=10):
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=timeout)
        try:
            return self.d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise

    def get(self, s, path="/healthz"):
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length: *(\d+)", head)
        while m and len(body) < int(m.group(1)):
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return head.split(b"\r\n")[0], body

    def idle(self):
        s = self.tls()
        status, _ = self.get(s)
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        return s

    def busy(self):
        """A connection in the middle of a request body: it cannot give way."""
        s = self.tls()
        s.sendall(("POST /v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\"" % self.d.token).encode())
        return s

    def assert_refused_fast(self):
        """A new client is closed by the daemon within REFUSE_WITHIN_S, without being served."""
        t0 = time.monotonic()
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s = self.d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        except (ssl.SSLError, ConnectionError, OSError):
            raw.close()
        else:
            try:
                s.settimeout(5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                data = s.recv(65536)
            except (ssl.SSLError, ConnectionError, OSError):
                data = b""
            finally:
                s.close()
            self.assertFalse(data.startswith(b"HTTP/1.1 200"), "the connection beyond the limit was served")
        took = time.monotonic() - t0
        self.assertLess(took, REFUSE_WITHIN_S, "refused only after %.2f s" % took)
        return took

    def metric(self, name):
        s = self.tls()
        try:
            _, body = self.get(s, "/metrics")
        finally:
            s.close()
        m = re.search(r"(?m)^%s (\d+)$" % name, body.decode())
        return int(m.group(1)) if m else None


class MaxConnectionsTest(LimitBase):
    config = {"max_connections": 30, "per_ip_connections": 0, "header_timeout": 30}

    def test_refused_within_a_second_when_nothing_can_give_way(self):
        held = []
        try:
            for _ in range(30):
                held.append(self.busy())
            time.sleep(0.2)
            times = [self.assert_refused_fast() for _ in range(3)]
        finally:
            for s in held:
                s.close()
        # Once the busy connections are gone, new clients are served again, and the refusals were counted.
        deadline = time.monotonic() + 5
        while True:
            try:
                refused = self.metric("aegis_http_connections_refused_total")
                break
            except (ssl.SSLError, ConnectionError, OSError):
                self.assertLess(time.monotonic(), deadline, "not served again after the limit")
                time.sleep(0.1)
        self.assertGreaterEqual(refused, 3, times)

    def test_idle_connections_give_way(self):
        held = [self.idle() for _ in range(30)]
        try:
            t0 = time.monotonic()
            s = self.tls()
            status, _ = self.get(s)
            s.close()
            self.assertEqual(status, b"HTTP/1.1 200 OK")
            self.assertLess(time.monotonic() - t0, REFUSE_WITHIN_S)
            # the oldest idle connection was the one closed
            held[0].settimeout(2)
            self.assertEqual(held[0].recv(1), b"", "the oldest idle connection did not give way")
        finally:
            for c in held:
                c.close()


class PerAddressLimitTest(LimitBase):
    config = {"max_connections": 200, "per_ip_connections": 5}

    def test_refused_within_a_second_at_the_per_address_limit(self):
        held = [self.busy() for _ in range(5)]
        try:
            time.sleep(0.2)
            self.assert_refused_fast()
            # another address is not limited by this one's connections
            raw = socket.create_connection(("127.0.0.1", self.d.port), source_address=("127.0.0.2", 0), timeout=5)
            s = self.d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
            status, _ = self.get(s)
            s.close()
            self.assertEqual(status, b"HTTP/1.1 200 OK")
        finally:
            for s in held:
                s.close()

    def test_idle_connections_of_the_address_give_way(self):
        held = [self.idle() for _ in range(5)]
        try:
            s = self.tls()
            status, _ = self.get(s)
            s.close()
            self.assertEqual(status, b"HTTP/1.1 200 OK")
            held[0].settimeout(2)
            self.assertEqual(held[0].recv(1), b"", "the address's oldest idle connection did not give way")
        finally:
            for c in held:
                c.close()


class OpenFilesLimitTest(LimitBase):
    """aegisd under an open-files limit (hard and soft) of 400 with max_connections 20,000: it lowers
    max_connections to fit (a warning says so), and at that limit refuses fast instead of leaving clients in the
    listen backlog with accept() failing on EMFILE."""
    config = {"max_connections": 20000, "per_ip_connections": 0, "header_timeout": 30}
    NOFILE = 400

    @classmethod
    def daemon_wrapper(cls):
        return ["prlimit", "--nofile=%d:%d" % (cls.NOFILE, cls.NOFILE), "--"]

    def test_lowered_to_fit_and_refused_fast(self):
        m = re.search(r"max_connections lowered.*max_connections=(\d+)", self.d.log())
        self.assertIsNotNone(m, self.d.log()[-2000:])
        limit = int(m.group(1))
        self.assertLess(limit, self.NOFILE)
        held = []
        try:
            for _ in range(limit):
                held.append(self.busy())
            time.sleep(0.2)
            self.assert_refused_fast()
            self.assert_refused_fast()
        finally:
            for s in held:
                s.close()
        self.assertNotIn("Too many open files", self.d.log())
