"""Logs and configuration as an operator meets them (issue 14 items 6 and 7): X-Request-Id on every reply and
req= on every log line of the request, device= on device routes, JSON lines (log_format = json), journald's
priority prefixes when stderr is the stream $JOURNAL_STREAM names, an empty log_file (stderr), and
`aegisd --check-config` checking the files and directories the configuration names."""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import harness
import test_mtls
from harness import Daemon, DaemonTestCase

GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


def wait_for_line(daemon, pattern, timeout=5.0):
    """The first line of daemon's log matching pattern (a compiled regex), waiting for it: the request line is
    written once the reply has gone."""
    deadline = time.monotonic() + timeout
    while True:
        for line in daemon.log().splitlines():
            if pattern.search(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError("no log line matches %r:\n%s" % (pattern.pattern, harness.tail(daemon.log())))
        time.sleep(0.05)


class RequestIdTest(DaemonTestCase):
    tenants = ("acme",)

    def test_every_reply_has_an_id_and_its_log_line_too(self):
        seen = set()
        for method, path, token, status in (("GET", "/healthz", None, 200), ("GET", "/v1/tenant", ..., 200),
                                            ("GET", "/v1/tenant", None, 401), ("GET", "/nope", None, 404),
                                            ("DELETE", "/healthz", None, 405)):
            with self.subTest(method=method, path=path):
                st, hdrs, _ = self.client.request(method, path, token=token)
                self.assertEqual(st, status)
                rid = hdrs.get("X-Request-Id")
                self.assertIsNotNone(rid, "no X-Request-Id")
                self.assertRegex(rid, GENERATED_ID)
                self.assertNotIn(rid, seen)
                seen.add(rid)
                line = wait_for_line(self.d, re.compile(r"msg=request .* req=%s( |$)" % rid))
                self.assertIn("status=%d" % status, line)

    def test_incoming_id_honoured_when_well_formed(self):
        st, hdrs, _ = self.client.request("GET", "/healthz", headers={"X-Request-Id": "proxy-42.a:b_C"})
        self.assertEqual((st, hdrs.get("X-Request-Id")), (200, "proxy-42.a:b_C"))
        wait_for_line(self.d, re.compile(r"msg=request .* req=proxy-42\.a:b_C$"))
        # Anything else is replaced, never echoed: a space, a quote, '=' (a forged field), too long.
        for bad in ("a b", 'x"y', "k=v", "x" * 65, ""):
            with self.subTest(bad=bad):
                st, hdrs, _ = self.client.request("GET", "/healthz", headers={"X-Request-Id": bad})
                self.assertEqual(st, 200)
                self.assertRegex(hdrs.get("X-Request-Id"), GENERATED_ID)

    def test_device_route_lines_name_the_device(self):
        tmp = os.path.join(self.d.tmp, "devices")
        os.makedirs(tmp, exist_ok=True)
        dev = test_mtls.Device(tmp, "logdev")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}], "claim": True}))
        tid = self.d.tenant_ids["acme"]
        base = os.path.join(self.d.pki_dir, "tenants", str(tid), "ca-1")
        cert = dev.issue(base + ".crt", base + ".key", tid)
        import http.client
        import ssl
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.load_cert_chain(cert, dev.key)
        c = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)
        try:
            c.request("GET", "/v1/device/whoami")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            rid = r.getheader("X-Request-Id")
        finally:
            c.close()
        line = wait_for_line(self.d, re.compile(r"msg=request .* req=%s " % rid))
        self.assertTrue(line.endswith(" device=" + dev.id), line)


class JsonLinesTest(DaemonTestCase):
    tenants = ("acme",)
    config = {"log_format": "json", "log_file": '""  # empty: stderr'}

    def test_every_line_is_one_json_object(self):
        st, hdrs, _ = self.client.request("GET", "/nope", token=None)
        rid = hdrs.get("X-Request-Id")
        wait_for_line(self.d, re.compile(r'"req":"%s"' % rid))
        lines = [line for line in self.d.log().splitlines() if line]
        self.assertGreater(len(lines), 3)
        for line in lines:
            obj = json.loads(line)  # fails on any line that is not JSON
            self.assertIsInstance(obj, dict)
            self.assertRegex(obj.get("ts", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(obj.get("level"), ("debug", "info", "warn", "error"))
            self.assertIsInstance(obj.get("msg"), str)
        req = [json.loads(line) for line in lines if '"req":"%s"' % rid in line]
        line = [o for o in req if o["msg"] == "request"][0]
        self.assertEqual((line["status"], line["method"], line["route"]), (st, "GET", "unmatched"))
        self.assertIsInstance(line["dur_ms"], (int, float))


class JournaldTest(DaemonTestCase):
    """aegisd under a journald-like stream: its stderr is the file $JOURNAL_STREAM names (as systemd sets it)."""

    tenants = ("acme",)

    @classmethod
    def daemon_wrapper(cls):
        return ["sh", "-c", 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"', "sh"]

    def test_priority_prefixes_and_no_timestamps(self):
        self.client.request("GET", "/healthz")
        wait_for_line(self.d, re.compile(r"msg=request "))
        lines = [line for line in self.d.log().splitlines() if line]
        for line in lines:
            self.assertRegex(line, r"^<[3467]>level=(debug|info|warn|error) ")
            self.assertNotIn("ts=", line.split(" ")[0])
        prio = {"error": "3", "warn": "4", "info": "6", "debug": "7"}
        for line in lines:
            level = re.match(r"^<(\d)>level=(\w+)", line)
            self.assertEqual(level.group(1), prio[level.group(2)], line)


class CheckConfigTest(unittest.TestCase):
    """aegisd --check-config: the configuration parses, and the files and directories it names are usable."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(tenants=())

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def check(self, config):
        self.d.write_config(config, name="check.conf")
        p = subprocess.run([harness.binary("aegisd"), "--config", self.d.config_path, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_good_configuration(self):
        rc, out, err = self.check("data_dir = %s  # trailing comment\nlog_file =\n" % self.d.data_dir)
        self.assertEqual((rc, out, err), (0, "configuration ok\n", ""))

    def test_each_problem_is_named(self):
        missing = os.path.join(self.d.tmp, "missing")
        logdir = os.path.join(self.d.tmp, "nolog", "aegisd.log")
        rc, out, err = self.check("data_dir = %s\ntls_cert = %s/server.crt\npki_dir = %s\nlog_file = %s\n"
                                  % (self.d.data_dir, missing, self.d.pki_dir, logdir))
        self.assertEqual(rc, 2, err)
        self.assertEqual(out, "")
        self.assertIn("aegisd: tls_cert %s/server.crt: does not exist" % missing, err)
        self.assertIn("aegisd: log_file %s: does not exist" % os.path.dirname(logdir), err)
        self.assertIn("2 problems", err)

    def test_key_readable_by_others(self):
        key = os.path.join(self.d.pki_dir, "server.key")
        mode = os.stat(key).st_mode & 0o777
        os.chmod(key, 0o640)
        try:
            rc, _, err = self.check("data_dir = %s\n" % self.d.data_dir)
        finally:
            os.chmod(key, mode)
        self.assertEqual(rc, 2, err)
        self.assertIn("tls_key %s: group or others may access it" % key, err)

    def test_a_file_is_not_a_directory(self):
        rc, _, err = self.check("data_dir = %s\npki_dir = %s\n" % (self.d.data_dir, self.d.cacert))
        self.assertEqual(rc, 2, err)
        self.assertIn("pki_dir %s: is not a directory" % self.d.cacert, err)

    def test_duplicate_key(self):
        rc, _, err = self.check("data_dir = %s\nthreads = 2\n\nthreads = 3\n" % self.d.data_dir)
        self.assertEqual(rc, 2)
        self.assertIn("check.conf:4: duplicate key 'threads' (first set on line 2)", err)


ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONFIG_C = os.path.join(ROOT, "server", "config.c")
CONF = os.path.join(ROOT, "deploy", "aegisd.conf")
# {"name", INT(field, lo, hi)} and {"name", <anything else>} entries of config.c's key table.
KEY_RE = re.compile(r'^\s*\{"([a-z_]+)",\s*(INT\(\w+,\s*([^,]+),\s*([^)]+)\)|.*)\},?\s*$', re.M)


def c_int(expr):
    """The value of a config.c bound such as 64LL * 1024 * 1024 or 7 * 86400."""
    expr = re.sub(r"(\d+)LL\b", r"\1", expr.strip())
    if not re.fullmatch(r"[\d\s*+]+", expr):
        raise ValueError("unexpected bound %r" % expr)
    return eval(expr, {"__builtins__": {}})  # digits, '*', '+' only


class ConfigReferenceTest(unittest.TestCase):
    """deploy/aegisd.conf is the reference of every key of server/config.c: each has a `key =` line (maybe
    commented out) and each integer key its range lo..hi in the paragraph around that line."""

    def test_every_key_and_range_documented(self):
        with open(CONFIG_C) as f:
            keys = KEY_RE.findall(f.read())
        self.assertGreater(len(keys), 30)
        with open(CONF) as f:
            paragraphs = f.read().split("\n\n")
        for name, _, lo, hi in keys:
            with self.subTest(key=name):
                line = re.compile(r"^#? ?%s = " % name, re.M)
                para = [p for p in paragraphs if line.search(p)]
                self.assertEqual(len(para), 1, "no (or more than one) `%s = ` line in deploy/aegisd.conf" % name)
                if lo:
                    rng = "%d..%d" % (c_int(lo), c_int(hi))
                    self.assertIn(rng, para[0], "the range of %s is not in its paragraph" % name)


if __name__ == "__main__":
    unittest.main()


class LogReopenTest(unittest.TestCase):
    """SIGHUP reopens log_file (logrotate's postrotate): `log reopened` in the new file when it could, and only then;
    when it could not (the directory is gone), `cannot reopen log file` and aegisd logs on into the file it had."""

    def test_reopen_only_said_when_done(self):
        d = Daemon(tenants=())
        self.addCleanup(d.cleanup)
        logs = os.path.join(d.tmp, "logs")
        os.mkdir(logs, 0o700)
        d.write_config({"log_file": os.path.join(logs, "aegisd.log")})
        d.start()

        def wait_in(path, text, count=1):
            deadline = time.monotonic() + 10
            while harness.read_text(path).count(text) < count:
                if time.monotonic() > deadline:
                    self.fail("no %r (x%d) in %s:\n%s" % (text, count, path, harness.read_text(path)[-3000:]))
                time.sleep(0.05)

        # rotated as logrotate does: renamed, then SIGHUP; the new file says it
        os.rename(os.path.join(logs, "aegisd.log"), os.path.join(logs, "aegisd.log.1"))
        d.signal(signal.SIGHUP)
        wait_in(os.path.join(logs, "aegisd.log"), 'msg="configuration reloaded"')
        self.assertIn('msg="log reopened"', harness.read_text(os.path.join(logs, "aegisd.log")))
        # the directory gone: the error, in the file aegisd still writes, and no "log reopened"
        moved = logs + ".old"
        os.rename(logs, moved)
        d.signal(signal.SIGHUP)
        cur = os.path.join(moved, "aegisd.log")
        wait_in(cur, 'msg="configuration reloaded"', 2)
        text = harness.read_text(cur)
        after = text[text.index('msg="cannot reopen log file"'):]
        self.assertNotIn('msg="log reopened"', after)
        self.assertEqual(text.count('msg="log reopened"'), 1)
        d.stop()
