"""aegisctl's text output against a live daemon (issue 14): UTF-8 kept, controls and bidirectional
overrides inert, columns aligned by display width, tables fitted to a terminal (and only to a
terminal), the data modes -o name, -o jsonpath=, --no-headers."""

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import unicodedata
import unittest

import harness
import test_attest

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def width(s):
    """Display columns of s, as a terminal draws it (East Asian wide = 2, marks and format = 0)."""
    w = 0
    for ch in s:
        if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def column_of(line, m):
    """The display column where the match m of line starts."""
    return width(line[:m.start()])


class CliTextTest(harness.DaemonTestCase):
    tenants = ("text",)

    def ctl_argv(self):
        return [harness.binary("aegisctl"), "--server", self.d.url(), "--cacert", self.d.cacert,
                "--token", self.d.token]

    def ok(self, *args, **kw):
        p = self.d.ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, "aegisctl %s\nstdout: %s\nstderr: %s" % (args, p.stdout, p.stderr))
        return p.stdout

    def product(self, name, description=None):
        body = {"name": name}
        if description is not None:
            body["description"] = description
        return self.create("/v1/products", body)

    def on_pty(self, args, columns):
        """Runs aegisctl with stdout on a pseudo-terminal of COLUMNS columns; returns its output."""
        master, slave = pty.openpty()
        env = dict(os.environ, COLUMNS=str(columns))
        p = subprocess.Popen(self.ctl_argv() + list(args), stdout=slave, stderr=subprocess.PIPE, env=env)
        os.close(slave)
        out = b""
        while True:
            r, _, _ = select.select([master], [], [], harness.CTL_TIMEOUT)
            if not r:
                p.kill()
                self.fail("aegisctl on a pty timed out")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        err = p.stderr.read().decode("utf-8", "replace")
        p.stderr.close()
        self.assertEqual(p.wait(), 0, err)
        self.assertEqual(harness.sanitizer_report(err), None, err)
        return out.decode("utf-8").replace("\r\n", "\n")

    def test_create_and_list_keep_utf8(self):
        out = self.ok("products", "create", "Thermostat Zürich", "--description", "Ürün açıklaması")
        self.assertIn("name:        Thermostat Zürich\n", out)
        self.assertIn("Ürün açıklaması", out)
        self.assertNotIn("\ufffd", out)
        self.assertNotIn("?", out)
        row = [l for l in self.ok("products", "list").splitlines() if "Thermostat" in l]
        self.assertEqual(len(row), 1)
        self.assertIn("Thermostat Zürich", row[0])
        self.assertIn("Ürün açıklaması", row[0])
        self.assertNotIn("?", row[0])
        self.assertNotIn("\ufffd", row[0])

    def assertAligned(self, out, names):
        """Every row's CREATED_AT starts at the header's display column, rows with names included."""
        lines = out.splitlines()
        want = lines[0].index("CREATED_AT")  # the header is ASCII
        seen = set()
        for line in lines[1:]:
            m = TS.search(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(column_of(line, m), want, "misaligned: %r\n%s" % (line, out))
            seen.update(n for n in names if n in line)
        self.assertEqual(seen, set(names), out)

    def test_wide_characters_align(self):
        names = ["温度计-北京", "Zürich-Süd", "ascii-name", "e\u0301-combining", "😀-emoji"]
        for n in names:
            self.product(n)
        self.assertAligned(self.ok("products", "list"), names)

    def test_controls_and_bidi_are_inert(self):
        # The API refuses C0 controls in names but takes C1 and bidirectional controls; a record
        # written around the API (an older version, a restore) may hold anything, so the C0 ones
        # go in through the database.
        made = self.product("evil\u202e3pm.exe", "a\u2028b")
        name = "evil\u202e3pm.exe\x1b[31m red\x1b]0;title\x07 \u2066x\u2069\u200f\u009b2J"
        db = sqlite3.connect(os.path.join(self.d.data_dir, "aegis.db"), timeout=30)
        with db:
            db.execute("UPDATE products SET name = ?, description = ? WHERE id = ?",
                       (name, "a\r\nb\u2028c", made["id"]))
        db.close()
        for args in (("products", "list"), ("products", "show", str(made["id"]))):
            out = self.ok(*args)
            for bad in ("\x1b", "\u202e", "\u2066", "\u2069", "\u200f", "\x07", "\r", "\u2028", "\u009b"):
                self.assertNotIn(bad, out, "%r in the output of %s" % (bad, args))
            self.assertIn("evil?3pm.exe?[31m red?]0;title? ?x???2J", out)
            # a table cell on one line; a multi-line value below its key, each line inert
            self.assertIn("a??b?c" if args[1] == "list" else "    a?\n    b?c\n", out)
        # The API's JSON is untouched (escaped by the encoder): scripts see the real name.
        out = self.ok("products", "show", str(made["id"]), json_out=True)
        self.assertEqual(json.loads(out)["name"], name)

    def test_not_a_terminal_never_cuts(self):
        long_name = "N" * 30 + "-end"
        self.product(long_name, "d" * 200 + "-tail")
        out = self.ok("products", "list")
        self.assertIn(long_name, out)
        self.assertIn("d" * 200 + "-tail", out)
        self.assertNotIn("…", out)

    def test_terminal_width_fits(self):
        made = self.product("fit-" + "名" * 20, "x" * 300)
        out = self.on_pty(("products", "list"), 80)
        lines = [l for l in out.splitlines() if l]
        self.assertGreater(len(lines), 1, out)
        for line in lines:
            self.assertLessEqual(width(line), 80, "wider than the terminal: %r" % line)
        row = [l for l in lines if l.startswith(str(made["id"]) + " ")]
        self.assertEqual(len(row), 1, out)
        self.assertIn("…", row[0])
        self.assertIn("fit-名", row[0])
        # The same on a wider terminal: the name whole (its cap is 40), the description cut at its cap.
        out = self.on_pty(("products", "list"), 400)
        row = [l for l in out.splitlines() if l.startswith(str(made["id"]) + " ")][0]
        self.assertIn("fit-" + "名" * 17 + "…", row)  # 4 + 34 + 1 = 39 columns <= 40
        self.assertIn("x" * 49 + "…", row)

    def test_device_ids_short_on_a_terminal(self):
        """On a terminal a device ID is its 12-character prefix (which the CLI resolves), never cut
        with "…"; whole with -o wide, -o name and when stdout is not a terminal."""
        keys = harness.gen_keys(2)
        st, _, body = self.api("POST", "/v1/devices/import", {"devices": [{"public_key": k} for k in keys]})
        self.assertIn(st, (200, 201), body)
        ids = [harness.device_id(k) for k in keys]
        out = self.on_pty(("devices", "list"), 40)
        for i in ids:
            self.assertRegex(out, r"(?m)^%s +" % i[:12])
            self.assertNotIn(i, out)
        for args in (("devices", "list", "-o", "wide"), ("devices", "list", "-o", "name")):
            out = self.on_pty(args, 40)
            for i in ids:
                self.assertIn(i, out)
        out = self.ok("devices", "list")
        for i in ids:
            self.assertIn(i, out)
        shown = self.on_pty(("devices", "show", ids[0][:12]), 80)
        self.assertRegex(shown, r"(?m)^id: +%s$" % ids[0])

    def test_lists_fit_the_terminal(self):
        """devices, attestations and audit lists fit 80 and 100 columns, with a device behind each."""
        tmp = os.path.join(self.d.tmp, "fit-devices")
        dev = test_attest.Device(tmp, "fit")
        self.assertOk(self.api("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}]}))
        self.assertOk(self.api("PATCH", "/v1/devices/" + dev.id, {"tags": {"site": "x" * 100}}))
        client = self.d.client(token=None)
        st, _, body = client.api("POST", "/v1/device/attest/challenge", {"device_id": dev.id}, token=None)
        self.assertEqual(st, 200, body)
        # signed by the device, but no reference values here: refused and recorded
        st, _, body = client.api("POST", "/v1/device/attest", dev.evidence(body["nonce"]), token=None)
        self.assertEqual(st, 403, body)
        for args in (("devices", "list"), ("attestations", "list"), ("audit", "list")):
            for columns in (80, 100):
                out = self.on_pty(args, columns)
                lines = [l for l in out.splitlines() if l]
                self.assertGreater(len(lines), 1, out)
                for line in lines:
                    self.assertLessEqual(width(line), columns, "%s at %d: %r\n%s" % (args, columns, line, out))
                self.assertIn(dev.id[:12], out, args)
                self.assertNotIn(dev.id, out, args)

    def test_nested_values_readable(self):
        keys = harness.gen_keys(1)
        st, _, body = self.api("POST", "/v1/devices/import", {"devices": [{"public_key": keys[0]}]})
        self.assertIn(st, (200, 201), body)
        out = self.ok("devices", "show", harness.device_id(keys[0]))
        self.assertRegex(out, r"(?m)^id: +%s$" % harness.device_id(keys[0]))
        self.assertRegex(out, r"(?m)^public_key:\n    -----BEGIN PUBLIC KEY-----$")
        self.assertNotIn("{", out)


def _o_supported():
    """-o comes with the global flag parser (ctl_args); these tests wait for it."""
    p = subprocess.run([harness.binary("aegisctl"), "-o", "name", "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    return p.returncode == 0


@unittest.skipUnless(_o_supported(), "aegisctl does not parse -o yet (the global flag parser)")
class CliDataModesTest(harness.DaemonTestCase):
    tenants = ("modes",)

    def ok(self, *args):
        p = self.d.ctl(*args)
        self.assertEqual(p.returncode, 0, "aegisctl %s\nstdout: %s\nstderr: %s" % (args, p.stdout, p.stderr))
        return p.stdout

    def test_name_jsonpath_no_headers(self):
        made = [self.create("/v1/products", {"name": "mode-%d-Zürich" % i}) for i in range(3)]
        ids = sorted(m["id"] for m in made)
        self.assertEqual(sorted(int(x) for x in self.ok("products", "list", "-o", "name").split()), ids)
        self.assertEqual(self.ok("-o", "name", "products", "show", str(ids[0])), "%d\n" % ids[0])
        out = self.ok("products", "list", "-o", "jsonpath={range .items[*]}{.id}={.name}{\"\\n\"}{end}")
        self.assertEqual(out, "".join("%d=mode-%d-Zürich\n" % (m["id"], i) for i, m in enumerate(made)))
        self.assertEqual(self.ok("products", "list", "-o", "jsonpath={.items[*].id}").split(),
                         [str(i) for i in ids])
        out = self.ok("products", "list", "--no-headers")
        self.assertNotIn("CREATED_AT", out)
        self.assertEqual(len(out.splitlines()), 3)
        self.create("/v1/device-groups", {"product_id": ids[0], "name": "wide-group"})
        wide = self.ok("groups", "list", "-o", "wide")
        self.assertIn("UPDATED_AT", wide.splitlines()[0])
        self.assertNotIn("UPDATED_AT", self.ok("groups", "list").splitlines()[0])
        self.assertEqual(json.loads(self.ok("products", "list", "-o", "json"))["items"][0]["id"], ids[0])
        p = self.d.ctl("products", "list", "-o", "jsonpath={.items[?(@.id==1)]}")
        self.assertEqual(p.returncode, 2, p.stderr)
        # refused when parsed, before any request: a server that cannot answer changes nothing
        for tpl in ("jsonpath={", "jsonpath={range .items[*]}{.id}"):
            p = self.d.ctl("products", "list", "-o", tpl, server="https://127.0.0.1:1")
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertIn("jsonpath", p.stderr)
