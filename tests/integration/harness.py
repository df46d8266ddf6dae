"""Integration-test harness for aegisd: a real daemon per test class, on 127.0.0.1 port 0, in a temp dir.

The build directory comes from run.py (--build) through the AEGIS_BUILD environment variable.

    class ProductsTest(harness.DaemonTestCase):
        tenants = ("acme", "other")        # created with `aegisctl tenant create` before the daemon starts
        config = {"max_body_bytes": 4096}  # optional aegisd config file ("key = value" lines)

        def test_x(self):
            status, headers, body = self.api("GET", "/v1/products")

A daemon is stopped with SIGTERM at the end of its class; a non-zero exit status or a sanitizer report in its
stderr fails the class (reported as an error of tearDownClass). Daemons still running when the process exits
(a crash of the runner, ^C) are killed by an atexit hook; temp dirs are removed unless AEGIS_KEEP_TMP is set.
"""

import atexit
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse

READY_TIMEOUT = float(os.environ.get("AEGIS_READY_TIMEOUT", "10"))
STOP_TIMEOUT = float(os.environ.get("AEGIS_STOP_TIMEOUT", "20"))
HTTP_TIMEOUT = float(os.environ.get("AEGIS_HTTP_TIMEOUT", "60"))
CTL_TIMEOUT = 60

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

_live = []  # every Daemon with a running process, for the atexit hook
_instances = []  # every Daemon whose temp dir still exists, for the atexit hook


def build_dir():
    b = os.environ.get("AEGIS_BUILD")
    if not b:
        raise RuntimeError("AEGIS_BUILD is not set (run the tests through tests/integration/run.py --build DIR)")
    return os.path.abspath(b)


def binary(name):
    """Path of a built binary (aegisd, aegisctl, tests/tools/gen_keys); fails clearly when it is missing."""
    p = os.path.join(build_dir(), name)
    if not os.access(p, os.X_OK):
        raise RuntimeError("missing binary %s (build it first: make BUILD=%s all unit)" % (p, build_dir()))
    return p


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    for m in SANITIZER_MARKERS:
        if m in text:
            return m
    return None


def tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_tool(argv, timeout=CTL_TIMEOUT, stdin=None, env=None):
    """Runs a command; returns CompletedProcess (text). A sanitizer report in its stderr raises
    AssertionError, so every aegisctl call made by a test is also checked."""
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, text=True, errors="replace")
    m = sanitizer_report(p.stderr)
    if m:
        raise AssertionError("sanitizer report (%s) from %s:\n%s" % (m, " ".join(argv), tail(p.stderr, 80)))
    return p


def device_id(pem):
    """The device ID of a PEM public key: lower-case hex SHA-256 of its DER SubjectPublicKeyInfo."""
    lines = [l.strip() for l in pem.strip().splitlines() if l.strip() and not l.startswith("-----")]
    return hashlib.sha256(base64.b64decode("".join(lines))).hexdigest()


def gen_keys(n):
    """n fresh EC P-256 public keys (PEM strings), made by BUILD/tests/tools/gen_keys."""
    fd, path = tempfile.mkstemp(prefix="aegis-keys-", suffix=".json")
    os.close(fd)
    try:
        p = run_tool([binary("tests/tools/gen_keys"), str(n), path], timeout=300)
        if p.returncode != 0:
            raise RuntimeError("gen_keys %d failed (%d): %s" % (n, p.returncode, p.stderr))
        with open(path) as f:
            keys = json.load(f)
    finally:
        os.unlink(path)
    if len(keys) != n or len(set(keys)) != n:
        raise RuntimeError("gen_keys %d returned %d keys (%d distinct)" % (n, len(keys), len(set(keys))))
    return keys


def free_refusing_port():
    """(sock, port): a TCP socket bound on 127.0.0.1 but not listening, so connections to port are refused and
    no one else can take the port while sock is open. Close sock when done."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def qs(**kw):
    """A query string ("?a=1&b=x") of the arguments that are not None."""
    items = [(k, v) for k, v in kw.items() if v is not None]
    return "?" + urllib.parse.urlencode(items) if items else ""


class Client:
    """An HTTPS client on one keep-alive connection (http.client), trusting the daemon's root CA."""

    def __init__(self, daemon, token=None, timeout=HTTP_TIMEOUT):
        self.daemon = daemon
        self.token = token
        self.timeout = timeout
        self.conn = None

    def connect(self):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.daemon.port, timeout=self.timeout,
                                                    context=self.daemon.ssl_context())
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, token=..., headers=None, content_type=None):
        """Sends one request; returns (status, headers, raw body bytes).
        body: dict/list (sent as JSON), str/bytes (sent as is), or None. token: ... = the client's token,
        None = no Authorization header, a str = that token. headers: extra headers (a dict)."""
        h = {}
        tok = self.token if token is ... else token
        if tok is not None:
            h["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            else:
                data = body.encode() if isinstance(body, str) else body
                h["Content-Type"] = "application/json"
        if content_type is not None:
            h["Content-Type"] = content_type
        if headers:
            h.update(headers)
        for attempt in (1, 2):
            conn = self.connect()
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=data, headers=h)
                resp = conn.getresponse()
                raw = resp.read()
                return resp.status, resp.headers, raw
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server may close an idle keep-alive connection at any time (connection_timeout): retry
                # once, on a fresh connection. A server that drops the request again fails there, so this
                # hides nothing persistent; tests about connection reuse check conn.sock themselves.
                self.close()
                if attempt == 2 or not reused:
                    raise
            except Exception:
                self.close()
                raise

    def api(self, method, path, body=None, token=..., headers=None, content_type=None):
        """As request(), but returns (status, headers, parsed JSON body or None when empty)."""
        status, hdrs, raw = self.request(method, path, body, token, headers, content_type)
        if not raw:
            return status, hdrs, None
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise AssertionError("%s %s -> %d: body is not JSON: %r" % (method, path, status, raw[:300]))
        return status, hdrs, parsed


class Daemon:
    """One aegisd in its own temp data dir.

    tenants: names to create (`aegisctl tenant create NAME --json`) before the first start; their admin tokens
    are in self.tokens[name] (and the first in self.token). config: a dict or text for an aegisd config file
    passed with --config. env: extra environment variables for the daemon's process (a dict), e.g. an LD_PRELOAD
    fault injection; aegisctl runs without them."""

    def __init__(self, tenants=("acme",), config=None, log_level="debug", hosts="127.0.0.1,localhost", env=None):
        self.tmp = tempfile.mkdtemp(prefix="aegis-it-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.pki_dir = os.path.join(self.data_dir, "pki")
        self.cacert = os.path.join(self.pki_dir, "root.crt")
        # apart from data/ (which holds pki/): aegisd writes it after it has shut itself off the keys
        self.ready_file = os.path.join(self.tmp, "run", "ready")
        self.wrapper = []  # a command the daemon runs under, e.g. ["prlimit", "--nofile=300", "--"]
        self.config_path = None
        self.log_level = log_level
        self.env = env
        self.proc = None
        self.port = None
        self.starts = 0
        self.stderr_path = None
        self.tokens = {}
        self.tenant_ids = {}
        self.token = None
        self._ctx = None
        self._clients = []
        _instances.append(self)
        try:
            os.mkdir(self.data_dir, 0o700)
            os.mkdir(os.path.dirname(self.ready_file), 0o700)
            self.ctl_local("pki", "init", "--hosts", hosts)
            for name in tenants:
                self.create_tenant(name)
            if config is not None:
                self.write_config(config)
        except BaseException:
            self.cleanup()
            raise

    # --- setup ---

    def ctl_local(self, *args, check=True):
        p = run_tool([binary("aegisctl"), "--data-dir", self.data_dir] + list(args))
        if check and p.returncode != 0:
            raise RuntimeError("aegisctl %s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def create_tenant(self, name):
        p = self.ctl_local("tenant", "create", name, "--json")
        try:
            out = json.loads(p.stdout)
            token = out["token"]
            tid = out["tenant"]["id"]
        except (ValueError, KeyError, TypeError):
            raise RuntimeError("aegisctl tenant create %s --json printed %r" % (name, p.stdout[:500]))
        if not re.fullmatch(r"aegis_[0-9]+_\S+", token):
            raise RuntimeError("tenant create printed a malformed token %r" % token[:20])
        self.tokens[name] = token
        self.tenant_ids[name] = tid
        if self.token is None:
            self.token = token
        return token

    def write_config(self, config, name="aegis.conf"):
        path = os.path.join(self.tmp, name)
        if isinstance(config, dict):
            text = "# written by the integration tests\n" + "".join("%s = %s\n" % kv for kv in config.items())
        else:
            text = config
        with open(path, "w") as f:
            f.write(text)
        self.config_path = path
        return path

    def ssl_context(self):
        if self._ctx is None:
            ctx = ssl.create_default_context(cafile=self.cacert)
            ctx.check_hostname = True
            self._ctx = ctx
        return self._ctx

    # --- process ---

    def argv(self, extra=()):
        a = [binary("aegisd"), "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
             "--ready-file", self.ready_file]
        if self.config_path:
            a += ["--config", self.config_path]
        if self.log_level:
            a += ["--log-level", self.log_level]
        return a + list(extra)

    def spawn(self, extra=(), argv=None):
        """Starts the process without waiting for readiness. stderr goes to a file (one per start)."""
        assert self.proc is None, "daemon already running"
        if os.path.exists(self.ready_file):
            os.unlink(self.ready_file)
        self.starts += 1
        self.stderr_path = os.path.join(self.tmp, "aegisd.%d.stderr" % self.starts)
        self.port = None
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv or self.wrapper + self.argv(extra), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err,
                                         env=None if self.env is None else dict(os.environ, **self.env))
        _live.append(self)
        return self.proc

    def start(self, extra=()):
        """Starts aegisd and waits (bounded) for the port in the ready file."""
        self.spawn(extra)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                with open(self.ready_file) as f:
                    text = f.read()
                if text.endswith("\n") and text.strip().isdigit():
                    self.port = int(text.strip())
                    if not 0 < self.port < 65536:
                        self.kill()
                        raise RuntimeError("aegisd wrote a bad port %r to the ready file" % text)
                    return self
            except FileNotFoundError:
                pass
            rc = self.proc.poll()
            if rc is not None:
                log = self.log()
                self.proc = None
                _live.remove(self)
                raise RuntimeError("aegisd exited with %d before it was ready:\n%s" % (rc, tail(log)))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("aegisd not ready after %.0f s:\n%s" % (READY_TIMEOUT, tail(self.log())))
            time.sleep(0.02)

    def log(self):
        return read_text(self.stderr_path) if self.stderr_path else ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; returns its status (kills it and raises on timeout)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("aegisd did not exit within %.0f s of SIGTERM:\n%s" % (timeout, tail(self.log())))
        self.proc = None
        if self in _live:
            _live.remove(self)
        return rc

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM; requires exit status 0 within timeout and no sanitizer report in the log."""
        self.close_clients()
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        self.check_exit(rc)

    def check_exit(self, rc, expect_zero=True):
        log = self.log()
        m = sanitizer_report(log)
        if m:
            raise AssertionError("sanitizer report (%s) in the aegisd log:\n%s" % (m, tail(log, 80)))
        if expect_zero and rc != 0:
            raise AssertionError("aegisd exited with %d after SIGTERM (expected 0):\n%s" % (rc, tail(log)))

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self in _live:
            _live.remove(self)

    def cleanup(self):
        """Kills the daemon if still running and removes the temp dir. Never raises."""
        self.close_clients()
        self.kill()
        if self in _instances:
            _instances.remove(self)
        if not os.environ.get("AEGIS_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- clients ---

    def client(self, token=..., timeout=HTTP_TIMEOUT):
        c = Client(self, self.token if token is ... else token, timeout)
        self._clients.append(c)
        return c

    def close_clients(self):
        for c in self._clients:
            c.close()

    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def ota_publish(self, keydir, token=...):
        """Publishes every image of the token's tenant in its TUF image repository, as its manufacturer would
        (docs/update.md 2): `aegisctl ota keys init` into keydir the first time (offline keys and the trusted
        roots), `aegisctl ota sign` after; a deployment names only published images."""
        trusted = os.path.join(keydir, "trusted", "image-root.json")
        step = ("sign",) if os.path.exists(trusted) else ("keys", "init")
        p = self.ctl("ota", *step, "--dir", keydir, "--yes", token=token)
        if p.returncode != 0:
            raise RuntimeError("aegisctl ota %s: %s%s" % (" ".join(step), p.stdout, p.stderr))

    def ctl(self, *args, token=..., json_out=False, timeout=CTL_TIMEOUT, server=None, cacert=None):
        """Runs aegisctl against the live daemon; returns CompletedProcess."""
        tok = self.token if token is ... else token
        a = [binary("aegisctl"), "--server", server or self.url(), "--cacert", cacert or self.cacert]
        if tok is not None:
            a += ["--token", tok]
        if json_out:
            a.append("--json")
        return run_tool(a + list(args), timeout=timeout)


def _kill_all():
    for d in list(_live):
        d.kill()
    for d in list(_instances):
        d.cleanup()


atexit.register(_kill_all)


class DaemonTestCase(unittest.TestCase):
    """One daemon per test class, started in setUpClass and stopped (SIGTERM, exit 0, clean log) in
    tearDownClass. self.api() calls it on a keep-alive connection with the first tenant's admin token."""

    tenants = ("acme",)
    config = None
    start_daemon = True
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.d = None
        if not cls.start_daemon:
            return
        try:
            cls.d = Daemon(tenants=cls.tenants, config=cls.config, env=cls.daemon_env())
            cls.d.wrapper = cls.daemon_wrapper()
            cls.d.start()
            cls.client = cls.d.client()
            cls.prepare()
        except BaseException:
            if cls.d is not None:
                cls.d.cleanup()
            raise

    @classmethod
    def daemon_env(cls):
        """Hook: extra environment variables for the daemon (a dict, see Daemon), or None."""
        return None

    @classmethod
    def daemon_wrapper(cls):
        """Hook: a command the daemon runs under (a list, see Daemon.wrapper)."""
        return []

    @classmethod
    def prepare(cls):
        """Hook for class-level fixtures once the daemon runs."""

    @classmethod
    def tearDownClass(cls):
        if cls.d is None:
            return
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    # --- helpers ---

    def api(self, method, path, body=None, token=..., headers=None, content_type=None):
        return self.client.api(method, path, body, token, headers, content_type)

    def token_of(self, tenant):
        return self.d.tokens[tenant]

    def assertError(self, resp, status, code):
        """resp is (status, headers, json): checks the status and the {"error", "message"} body."""
        st, hdrs, body = resp
        self.assertEqual(st, status, "expected %d %s, got %d: %r" % (status, code, st, body))
        self.assertIsInstance(body, dict, "error body is not a JSON object: %r" % (body,))
        self.assertEqual(body.get("error"), code, "body: %r" % (body,))
        self.assertIsInstance(body.get("message"), str, "error without a message: %r" % (body,))
        ctype = hdrs.get("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"), "error Content-Type %r" % ctype)
        return body

    def assertOk(self, resp, status=200):
        st, hdrs, body = resp
        self.assertEqual(st, status, "expected %d, got %d: %r" % (status, st, body))
        return body

    def create(self, path, body, token=...):
        """POST that must answer 201; returns the object."""
        return self.assertOk(self.api("POST", path, body, token=token), 201)

    def list_all(self, path, token=..., limit=1000):
        """Follows next_cursor from the first page; returns all items (fails on a cursor loop)."""
        items = []
        cursor = None
        sep = "&" if "?" in path else "?"
        for _ in range(10000):
            q = "limit=%d" % limit + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
            body = self.assertOk(self.api("GET", path + sep + q, token=token))
            self.assertIsInstance(body.get("items"), list, "page without items: %r" % (body,))
            self.assertIn("next_cursor", body)
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items
            self.assertIsInstance(cursor, str)
        self.fail("pagination of %s does not end" % path)


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
