"""aegisd and its service manager (issue 15 item 1): the notify protocol systemd's Type=notify speaks, heard on a
real AF_UNIX datagram socket as systemd listens ($NOTIFY_SOCKET), with the watchdog asked for ($WATCHDOG_USEC).
READY=1 only once the listener serves, STATUS= lines, WATCHDOG=1 pings from the loop, RELOADING=1 with
MONOTONIC_USEC on SIGHUP and READY=1 after it, STOPPING=1 when the drain starts, exit 0. tests/deploy/
test_systemd.sh (make systemd-test) runs the same daemon under a real systemd."""

import glob
import os
import re
import signal
import socket
import time
import unittest

import harness
from harness import Daemon

WATCHDOG_USEC = 200000  # pings every 100 ms


class NotifyMixin:
    """receive() and fields() on self.sock (the notify socket) and self.d (the daemon)."""

    def receive(self, want, timeout=10.0):
        """Messages until one has every line of want (a prefix of lines: "READY=1", ...); returns (that message,
        the ones before it)."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("no %r from aegisd within %.0f s; got %r\n%s" % (want, timeout, before,
                                                                          harness.tail(self.d.log())))
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(8192).decode()
            except socket.timeout:
                continue
            if all(w in msg.split("\n") for w in want):
                return msg, before
            before.append(msg)

    def fields(self, msg):
        return dict(line.split("=", 1) for line in msg.split("\n"))


class NotifyTest(NotifyMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sockdir = None
        cls.d = None
        cls.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        d = Daemon(tenants=(), config={"drain_timeout": 5}, env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
        try:
            path = os.path.join(d.tmp, "notify")
            cls.sock.bind(path)
            d.env["NOTIFY_SOCKET"] = path
            cls.t_start = time.monotonic()
            d.start()
            cls.d = d
        except BaseException:
            d.cleanup()
            cls.sock.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.cleanup()
        cls.sock.close()

    def test_lifecycle(self):
        # started: READY=1 once the listener is up, with the port the ready file has
        msg, before = self.receive(["READY=1"])
        self.assertTrue(before and before[0].startswith("STATUS=starting"), before)
        self.assertNotIn("READY=1", "".join(before))
        self.assertEqual(self.fields(msg)["STATUS"], "serving HTTPS on port %d" % self.d.port)
        st, _, _ = self.d.client().request("GET", "/healthz")
        self.assertEqual(st, 200)

        # the watchdog: WATCHDOG=1 about every WATCHDOG_USEC/2
        t0 = time.monotonic()
        for _ in range(5):
            self.receive(["WATCHDOG=1"], timeout=2.0)
        self.assertLess(time.monotonic() - t0, 3.0)  # 0.5 s due; a loaded machine is slower

        # SIGHUP: RELOADING=1 with CLOCK_MONOTONIC in microseconds, then READY=1 with how it went
        t_hup = time.clock_gettime(time.CLOCK_MONOTONIC)
        self.d.signal(signal.SIGHUP)
        msg, _ = self.receive(["RELOADING=1"])
        f = self.fields(msg)
        self.assertLessEqual(t_hup * 1e6, int(f["MONOTONIC_USEC"]))
        self.assertLess(int(f["MONOTONIC_USEC"]), (t_hup + 10) * 1e6)
        self.assertTrue(f["STATUS"].startswith("reloading"), f)
        msg, between = self.receive(["READY=1"])
        self.assertEqual(self.fields(msg)["STATUS"], "serving HTTPS on port %d; reloaded" % self.d.port)
        self.assertEqual([m for m in between if m != "WATCHDOG=1"], [])
        self.assertRegex(self.d.log(), re.compile(r"msg=\"TLS certificate renewed\""))

        # a reload that fails says so where `systemctl status` shows it, and aegisd serves on
        with open(self.d.config_path, "a") as f:
            f.write("no_such_key = 1\n")
        self.d.signal(signal.SIGHUP)
        self.receive(["RELOADING=1"])
        msg, _ = self.receive(["READY=1"])
        self.assertEqual(self.fields(msg)["STATUS"],
                         "serving HTTPS on port %d; configuration NOT reloaded (see the log)" % self.d.port)
        self.assertIn('msg="configuration not reloaded"', self.d.log())
        st, _, _ = self.d.client().request("GET", "/healthz")
        self.assertEqual(st, 200)

        # SIGTERM: STOPPING=1 as the drain starts, then exit 0
        self.d.signal(signal.SIGTERM)
        msg, _ = self.receive(["STOPPING=1"])
        self.assertRegex(self.fields(msg)["STATUS"], r"^draining \d+ requests \(at most 5 s\)$")
        self.assertEqual(self.d.wait(), 0)
        self.d.check_exit(0)


class MigrationNotifyTest(NotifyMixin, unittest.TestCase):
    """Pending migrations (here all of them: no database yet) make aegisd ask systemd for more start time
    (EXTEND_TIMEOUT_USEC, per migration) before it applies them, so that TimeoutStartSec does not kill an upgrade
    of a large database halfway; with none pending it asks for nothing."""

    def setUp(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.d = Daemon(tenants=(), env={})
        self.addCleanup(self.sock.close)
        self.addCleanup(self.d.cleanup)
        path = os.path.join(self.d.tmp, "notify")
        self.sock.bind(path)
        self.d.env["NOTIFY_SOCKET"] = path
        db = os.path.join(self.d.data_dir, "aegis.db")
        for f in (db, db + "-wal", db + "-shm"):
            if os.path.exists(f):
                os.unlink(f)

    def test_extend_timeout_when_migrations_are_pending(self):
        n = len(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "db", "schema",
                                       "[0-9]*.sql")))
        self.d.start()
        msg, before = self.receive(["READY=1"])
        ext = [self.fields(m) for m in before if m.startswith("EXTEND_TIMEOUT_USEC=")]
        self.assertEqual(len(ext), 1, before)
        self.assertEqual(int(ext[0]["EXTEND_TIMEOUT_USEC"]), n * 600 * 1000000)
        self.assertEqual(ext[0]["STATUS"], "applying %d database migrations" % n)
        self.assertIn("migrations_applied=%d" % n, self.d.log())
        self.d.stop()
        # again on the migrated database: nothing pending, no extension
        self.d.start()
        msg, before = self.receive(["READY=1"])
        self.assertEqual([m for m in before if "EXTEND_TIMEOUT_USEC" in m], [])


if __name__ == "__main__":
    unittest.main()
