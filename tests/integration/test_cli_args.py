"""aegisctl's habits of gh and kubectl (issue 14 item 2): global options anywhere on the line, exit codes 5
(unauthorized, forbidden) and 6 (not found), a stored context (login, logout, config view) that never holds the
token, times as RFC 3339 with offsets, dates and durations sent as the API's UTC form, device ID prefixes, "did you
mean", help and version, shell completion, and imports batched under the API's per-request limit."""

import json
import os
import stat
import subprocess
import time
import urllib.parse

import harness
from test_ota_cli import Proxy


def items_of(out):
    v = json.loads(out)
    return v["items"] if isinstance(v, dict) else v


class CliArgsTest(harness.DaemonTestCase):
    tenants = ("acme",)

    @classmethod
    def prepare(cls):
        cls.proxy = Proxy(cls.d)
        cls.seen = []

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()
        super().tearDownClass()

    def setUp(self):
        self.proxy.rewrite = None
        self.xdg = os.path.join(self.d.tmp, "xdg-" + self._testMethodName)
        os.makedirs(self.xdg, exist_ok=True)

    def run_ctl(self, *args, stdin=None, env=None):
        """aegisctl with exactly args: no options added, no AEGIS_* from the test's environment, and a context
        directory of this test's own."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("AEGIS_") or k == "AEGIS_BUILD"}
        e["XDG_CONFIG_HOME"] = self.xdg
        e.update(env or {})
        return harness.run_tool([harness.binary("aegisctl")] + list(args), stdin=stdin, env=e)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, expected %d\nstdout: %s\nstderr: %s"
                         % (p.returncode, code, p.stdout[-2000:], p.stderr[-2000:]))

    def conn(self, server=None):
        return ["--server", server or self.d.url(), "--cacert", self.d.cacert, "--token", self.d.token]

    def token_file(self, token=None, name="tok"):
        path = os.path.join(self.d.tmp, name)
        with open(path, "w") as f:
            f.write((token or self.d.token) + "\n")
        os.chmod(path, 0o600)
        return path

    # --- global options, exit codes, did you mean, help ---

    def test_global_options_after_and_between_the_command_words(self):
        self.create("/v1/products", {"name": "args-prod"})
        for argv in (["products", "list"] + self.conn() + ["-o", "json"],
                     ["products", "--json", "list"] + self.conn(),
                     ["products"] + self.conn()[:2] + ["list", "--output=json"] + self.conn()[2:]):
            p = self.run_ctl(*argv)
            self.assertExit(p, 0)
            self.assertIn("args-prod", [x["name"] for x in items_of(p.stdout)], argv)
        # the output options are taken after the command too (their printing: ctl_print)
        for opt in (["--no-headers"], ["-o", "wide"], ["-oname"], ["-o", "jsonpath={.items[*].id}"]):
            self.assertExit(self.run_ctl("products", "list", *opt, *self.conn()), 0)
        # a global option given before and after the command is given twice
        p = self.run_ctl(*self.conn(), "products", "list", "--server", self.d.url())
        self.assertExit(p, 2)
        self.assertIn("given twice", p.stderr)

    def test_exit_codes_tell_unauthorized_from_not_found(self):
        p = self.run_ctl("products", "list", "--server", self.d.url(), "--cacert", self.d.cacert,
                         "--token", "aegis_1_" + "x" * 43)
        self.assertExit(p, 5)
        self.assertIn("unauthorized", p.stderr)
        p = self.run_ctl("products", "show", "999999", *self.conn())
        self.assertExit(p, 6)
        self.assertIn("not_found", p.stderr)
        p = self.run_ctl("devices", "show", "ab" * 32, *self.conn())
        self.assertExit(p, 6)
        p = self.run_ctl("products", "create", "", *self.conn())  # a 400 stays 1 (or 2 when refused locally)
        self.assertIn(p.returncode, (1, 2), p.stderr)
        self.assertIn("5 unauthorized", self.run_ctl("--help").stdout.replace("\n", " "))

    def test_did_you_mean(self):
        for argv, want in ((["prodcts", "list"], "did you mean 'products list'?"),
                           (["devices", "lst"], "did you mean 'devices list'?"),
                           (["device", "lst"], "did you mean 'devices list'?"),
                           (["devices", "list", "--limt", "3"], "did you mean '--limit'?"),
                           (["--sever", "x", "products", "list"], "did you mean '--server'?"),
                           (["logn"], "did you mean 'login'?")):
            p = self.run_ctl(*argv)
            self.assertExit(p, 2)
            self.assertIn(want, p.stderr, argv)

    def test_help_and_version(self):
        p = self.run_ctl("help", "devices", "list")
        self.assertExit(p, 0)
        self.assertIn("usage: aegisctl [GLOBAL OPTIONS] devices list", p.stdout)
        p = self.run_ctl("help", "devices")
        self.assertExit(p, 0)
        self.assertIn("devices import", p.stdout)
        p = self.run_ctl("help")
        self.assertExit(p, 0)
        for word in ("Exit codes", "--output", "login", "completion"):
            self.assertIn(word, p.stdout)
        p = self.run_ctl("version")
        self.assertExit(p, 0)
        self.assertEqual(p.stdout, self.run_ctl("--version").stdout)
        self.assertTrue(p.stdout.startswith("aegisctl "))
        self.assertExit(self.run_ctl("help", "nosuch"), 2)

    # --- the stored context ---

    def test_login_stores_a_context_without_the_token(self):
        secret = self.d.token.split("_", 2)[2]
        tf = self.token_file()
        p = self.run_ctl("login", "--server", self.d.url(), "--cacert", self.d.cacert, "--token-file", tf)
        self.assertExit(p, 0)
        self.assertIn("acme", p.stdout)
        cfg = os.path.join(self.xdg, "aegis", "config")
        self.assertEqual(stat.S_IMODE(os.stat(cfg).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(cfg)).st_mode), 0o700)
        with open(cfg) as f:
            text = f.read()
        self.assertNotIn(secret, text)
        self.assertIn("token_file = " + os.path.realpath(tf), text)
        # later commands need no flag, from any directory
        self.create("/v1/products", {"name": "ctx-prod"})
        p = subprocess.run([harness.binary("aegisctl"), "products", "list", "-o", "json"], cwd="/",
                           env=dict({k: v for k, v in os.environ.items() if not k.startswith("AEGIS_")},
                                    XDG_CONFIG_HOME=self.xdg),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertExit(p, 0)
        self.assertIn("ctx-prod", [x["name"] for x in items_of(p.stdout)])
        p = self.run_ctl("config", "view")
        self.assertExit(p, 0)
        self.assertNotIn(secret, p.stdout)
        self.assertIn("(context)", p.stdout)
        # flags and the environment win over the context; the context's token never goes to another server
        p = self.run_ctl("products", "list", env={"AEGIS_TOKEN": "aegis_1_" + "x" * 43})
        self.assertExit(p, 5)
        sock, port = harness.free_refusing_port()
        try:
            p = self.run_ctl("products", "list", "--server", "https://127.0.0.1:%d" % port)
            self.assertExit(p, 2)
            self.assertIn("no API token", p.stderr)
        finally:
            sock.close()
        p = self.run_ctl("logout")
        self.assertExit(p, 0)
        self.assertFalse(os.path.exists(cfg))
        self.assertTrue(os.path.exists(tf), "logout removed a token file login did not make")
        self.assertExit(self.run_ctl("products", "list"), 2)

    def test_login_token_from_stdin(self):
        secret = self.d.token.split("_", 2)[2]
        p = self.run_ctl("login", "--server", self.d.url(), "--cacert", self.d.cacert, stdin=self.d.token + "\n")
        self.assertExit(p, 0)
        self.assertNotIn(secret, p.stdout + p.stderr)
        tok = os.path.join(self.xdg, "aegis", "token")
        self.assertEqual(stat.S_IMODE(os.stat(tok).st_mode), 0o600)
        self.assertExit(self.run_ctl("tenant", "show"), 0)
        self.assertExit(self.run_ctl("logout"), 0)
        self.assertFalse(os.path.exists(tok))

    def test_login_refused_stores_nothing(self):
        cfg = os.path.join(self.xdg, "aegis", "config")
        p = self.run_ctl("login", "--server", self.d.url(), "--cacert", self.d.cacert,
                         "--token-file", self.token_file("aegis_1_" + "x" * 43, "bad-tok"))
        self.assertExit(p, 5)
        self.assertFalse(os.path.exists(cfg))
        # the token is never an argument
        p = self.run_ctl("login", "--server", self.d.url(), "--token", self.d.token)
        self.assertExit(p, 2)
        self.assertFalse(os.path.exists(cfg))

    # --- times ---

    def sent(self, *argv):
        """The query of each GET aegisctl sent through the proxy for argv."""
        seen = []

        def record(method, path, status, body):
            seen.append(urllib.parse.parse_qs(urllib.parse.urlsplit(path).query))

        self.proxy.rewrite = record
        p = self.run_ctl(*argv, *self.conn(self.proxy.url))
        self.assertExit(p, 0)
        return seen

    def test_times_are_sent_in_utc(self):
        before = time.time()
        q = self.sent("failures", "buckets", "--since", "1h")[0]
        t = time.mktime(time.strptime(q["since"][0], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertLess(abs(t - (before - 3600)), 120, q)
        q = self.sent("failures", "buckets", "--since", "2026-11-22T11:00:00.250+01:00", "--until", "2026-11-23")[0]
        self.assertEqual((q["since"], q["until"]), (["2026-11-22T10:00:00Z"], ["2026-11-23T00:00:00Z"]))
        q = self.sent("failures", "export", "--format", "csv", "--since", "2026-11-22T05:30:00-04:30")[0]
        self.assertEqual(q["since"], ["2026-11-22T10:00:00Z"])
        p = self.run_ctl("failures", "buckets", "--since", "yesterday", *self.conn())
        self.assertExit(p, 2)
        self.assertIn("--since", p.stderr)

    # --- device ID prefixes ---

    def import_devices(self, n):
        keys = harness.gen_keys(n)
        st, _, body = self.api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in keys]})
        self.assertEqual(st, 200, body)
        return sorted(harness.device_id(k) for k in keys)

    def test_device_prefix_resolution(self):
        """Against a server that answers ?id_prefix= (the proxy plays it until the daemon does)."""
        ids = self.import_devices(3)
        asked = []

        def answer(method, path, status, body):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            if method == "GET" and "id_prefix" in q:
                asked.append(q)
                limit = int(q["limit"][0])
                hits = [i for i in ids + ["ab" * 32, "ab" * 31 + "cd"] if i.startswith(q["id_prefix"][0])]
                return 200, {"items": [{"id": i} for i in hits[:limit]],
                             "next_cursor": "more" if len(hits) > limit else None}
            return None

        self.proxy.rewrite = answer
        target = ids[0]
        p = self.run_ctl("devices", "show", target[:12].upper(), *self.conn(self.proxy.url), "-o", "json")
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["id"], target)
        self.assertEqual(asked[-1], {"id_prefix": [target[:12]], "limit": ["2"]})
        p = self.run_ctl("devices", "block", target[:10], *self.conn(self.proxy.url))
        self.assertExit(p, 0)
        st, _, dev = self.api("GET", "/v1/devices/" + target)
        self.assertEqual(dev["state"], "blocked")
        p = self.run_ctl("devices", "show", "abab", *self.conn(self.proxy.url))
        self.assertExit(p, 2)
        self.assertIn("device prefix abab is ambiguous: matches " + "ab" * 32 + ", " + "ab" * 31 + "cd", p.stderr)
        missing = next(x for x in ("0000", "1111", "2222") if not any(i.startswith(x) for i in ids))
        p = self.run_ctl("devices", "show", missing, *self.conn(self.proxy.url))
        self.assertExit(p, 6)
        self.assertIn("no device matches prefix " + missing, p.stderr)
        n = len(asked)
        self.assertExit(self.run_ctl("devices", "show", "abc", *self.conn(self.proxy.url)), 2)
        self.assertEqual(len(asked), n, "a prefix of 3 was sent")

    def test_device_prefix_live(self):
        """The same against the daemon itself (GET /v1/devices?id_prefix=, issue 14 item 4's server side)."""
        ids = self.import_devices(2)
        st, _, page = self.api("GET", "/v1/devices?id_prefix=%s&limit=1000" % ids[1][:16])
        self.assertEqual(st, 200, page)
        self.assertEqual([d["id"] for d in page["items"]], [ids[1]], "the daemon filters by ?id_prefix=")
        p = self.run_ctl("devices", "show", ids[1][:16], *self.conn(), "-o", "json")
        self.assertExit(p, 0)
        self.assertEqual(json.loads(p.stdout)["id"], ids[1])
        missing = next(x for x in ("0000", "1111", "2222") if not any(i.startswith(x) for i in ids))
        self.assertExit(self.run_ctl("devices", "show", missing * 2, *self.conn()), 6)

    # --- completion ---

    def complete(self, shell_words, cword):
        script = self.run_ctl("completion", "bash").stdout
        path = os.path.join(self.d.tmp, "aegisctl.bash")
        with open(path, "w") as f:
            f.write(script)
        words = " ".join("'%s'" % w for w in shell_words)
        p = subprocess.run(["bash", "-c", 'source "$1"; COMP_WORDS=(%s); COMP_CWORD=%d; _aegisctl; '
                            'printf "%%s\\n" "${COMPREPLY[@]}"' % (words, cword), "x", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def test_completion_bash(self):
        p = subprocess.run(["bash", "-c", "source <(\"$1\" completion bash) && complete -p aegisctl", "x",
                            harness.binary("aegisctl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("-F _aegisctl aegisctl", p.stdout)
        self.assertEqual(p.stderr, "")
        self.assertIn("devices", self.complete(["aegisctl", "dev"], 1))
        self.assertIn("deployments", self.complete(["aegisctl", "dep"], 1))
        self.assertEqual(self.complete(["aegisctl", "--server", "u", "devices", "li"], 4), ["list"])
        self.assertIn("--limit", self.complete(["aegisctl", "devices", "list", "--li"], 3))
        self.assertIn("--batch-size", self.complete(["aegisctl", "devices", "import", "f", "--b"], 4))
        self.assertIn("--no-headers", self.complete(["aegisctl", "devices", "list", "--no"], 3))
        self.assertIn("--token-file", self.complete(["aegisctl", "login", "--tok"], 2))
        self.assertEqual(self.complete(["aegisctl", "-o", "js"], 2), ["json", "jsonpath="])
        self.assertExit(self.run_ctl("completion", "fish"), 2)

    def test_completion_zsh(self):
        # zsh comes with deploy/install-deps.sh; the script must register a completer for aegisctl.
        script = ('autoload -U compinit && compinit -u -d "$2"; source <("$1" completion zsh) && '
                  'print -r -- "${_comps[aegisctl]}"')
        p = subprocess.run(["zsh", "-c", script, "x", harness.binary("aegisctl"),
                            os.path.join(self.d.tmp, "zcompdump")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("_aegisctl", p.stdout, p.stderr)

    # --- import batches ---

    def write_keys(self, keys, name):
        path = os.path.join(self.d.tmp, name)
        with open(path, "w") as f:
            json.dump(keys, f)
        return path

    def test_import_in_batches(self):
        keys = harness.gen_keys(100)
        p = self.run_ctl("devices", "import", self.write_keys(keys, "k100.json"), "--batch-size", "40", *self.conn())
        self.assertExit(p, 0)
        self.assertIn("batch 1/3 (entries 0-39): imported 40 (40 new)", p.stdout)
        self.assertIn("batch 3/3 (entries 80-99): imported 20 (20 new)", p.stdout)
        self.assertIn("imported 100 devices (100 new) in 3 batches", p.stdout)
        for k in keys:
            self.assertEqual(self.api("GET", "/v1/devices/" + harness.device_id(k))[0], 200)
        # JSON: one answer for the file, indexes in the file
        more = harness.gen_keys(5)
        p = self.run_ctl("devices", "import", self.write_keys(keys[:5] + more, "k10.json"), "--batch-size", "3",
                         *self.conn(), "--json")
        self.assertExit(p, 0)
        o = json.loads(p.stdout)
        self.assertEqual((o["imported"], o["created"], o["batches"]), (10, 5, 4))
        self.assertEqual([d["index"] for d in o["devices"]], list(range(10)))
        self.assertEqual(o["devices"][7]["device_id"], harness.device_id(more[2]))

    def test_import_stops_at_the_first_failed_batch(self):
        keys = harness.gen_keys(12)
        keys[6] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        p = self.run_ctl("devices", "import", self.write_keys(keys, "k12.json"), "--batch-size", "4", *self.conn())
        self.assertExit(p, 1)
        self.assertIn("6: bad_public_key", p.stderr)  # the index in the file, not in the batch
        self.assertIn("batch 2/3 (entries 4-7 of", p.stderr)
        self.assertIn("batches 1-1 (entries 0-3: 4 devices, 4 new) ARE imported", p.stderr)
        got = [self.api("GET", "/v1/devices/" + harness.device_id(k))[0] for k in keys[:6] + keys[7:]]
        self.assertEqual(got, [200] * 4 + [404] * 7)

    def test_import_above_the_api_limit(self):
        keys = harness.gen_keys(10001)  # the API takes at most 10000 devices per request
        p = self.run_ctl("devices", "import", self.write_keys(keys, "k10001.json"), *self.conn())
        self.assertExit(p, 0)
        self.assertIn("batch 2/2 (entries 10000-10000): imported 1 (1 new)", p.stdout)
        self.assertIn("imported 10001 devices (10001 new) in 2 batches", p.stdout)
        self.assertEqual(self.api("GET", "/v1/devices/" + harness.device_id(keys[-1]))[0], 200)
