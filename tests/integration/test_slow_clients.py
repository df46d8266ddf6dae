"""Slow clients cannot lock others out (issue 10, item 4).

1,000 connections from 127.0.0.1 that trickle a TLS ClientHello one byte a second, and 1,000 from other loopback
addresses (127.0.0.2..), some of them TLS-connected and trickling a request head one byte a second, the rest
stuck in their handshake. New clients from fresh addresses must still be answered within 1 s each, with the
daemon's default limits."""

import resource
import socket
import ssl
import threading
import time

import harness

SLOW_PER_GROUP = 1000
OTHER_ADDRESSES = 25  # 40 connections each: below the default per-address limit
TLS_SLOW = 100  # of the other group: handshake done, request head trickled
NEW_CLIENTS = 9
# A ClientHello record header announcing 512 bytes that never all arrive.
HELLO_PREFIX = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_from(src, port):
    """A non-blocking TCP connection from the loopback address src, or None when refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


class Trickler(threading.Thread):
    """Sends the next byte of each socket's payload once a second until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.conns = []  # (socket-like, payload, position list)
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def add(self, s, payload):
        with self.lock:
            self.conns.append([s, payload, 0])

    def run(self):
        while not self.stop.wait(1.0):
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                s, payload, pos = c
                if pos >= len(payload):
                    continue
                try:
                    s.send(payload[pos:pos + 1])
                    c[2] = pos + 1
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass  # not connected yet, or the buffer is full: next round
                except (OSError, ValueError):
                    c[2] = len(payload)  # closed by the server: stop

    def close_all(self):
        self.stop.set()
        self.join(5)
        for s, _, _ in self.conns:
            try:
                s.close()
            except OSError:
                pass


class SlowClientFloodTest(harness.DaemonTestCase):
    def tls_from(self, src, timeout):
        """A TLS connection from the loopback address src (blocking, with timeout), or None."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        try:
            raw.bind((src, 0))
            raw.connect(("127.0.0.1", self.d.port))
            return self.d.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        except OSError:
            raw.close()
            return None

    def serve_one(self, src):
        """One new client from src: connect, TLS, GET /healthz. Returns seconds to the answer or None."""
        t0 = time.monotonic()
        s = self.tls_from(src, 3)
        if s is None:
            return None
        data = b""
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return None
        finally:
            s.close()
        return time.monotonic() - t0 if data.startswith(b"HTTP/1.1 200") else None

    def test_new_clients_served_during_flood(self):
        have = raise_nofile(2 * SLOW_PER_GROUP + 512)
        if have < 2 * SLOW_PER_GROUP + 256:
            self.skipTest("RLIMIT_NOFILE %d is too low for the flood" % have)
        port = self.d.port
        tr = Trickler()
        tr.start()  # trickles from the start, so no inactivity timer closes the flood meanwhile
        try:
            head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60 + b"\r\n"
            for i in range(SLOW_PER_GROUP):
                src = "127.0.0.%d" % (2 + i % OTHER_ADDRESSES)
                if i < TLS_SLOW:  # first, while the daemon still answers handshakes at once
                    s = self.tls_from(src, 5)
                    if s is not None:
                        s.setblocking(False)
                        tr.add(s, head)
                    continue
                s = open_from(src, port)
                if s is not None:
                    tr.add(s, HELLO_PREFIX)
            for _ in range(SLOW_PER_GROUP):
                s = open_from("127.0.0.1", port)
                if s is not None:
                    tr.add(s, HELLO_PREFIX)
            time.sleep(2.5)  # the flood is in place and trickling
            times = [self.serve_one("127.0.0.%d" % (200 + i)) for i in range(NEW_CLIENTS)]
            served = [t for t in times if t is not None and t <= 1.0]
            self.assertEqual(len(served), NEW_CLIENTS, "answer times (s) of the new clients: %r" % times)
        finally:
            tr.close_all()
        self.assertIsNone(self.d.proc.poll(), "daemon exited")


if __name__ == "__main__":
    import unittest

    unittest.main()
