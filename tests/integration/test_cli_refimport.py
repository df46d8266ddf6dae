"""`aegisctl refvals import FILE` (docs/cli.md): the platform's values on the data directory, the tenant's app values
through the API, idempotent, a changed value refused, a bad file refused before anything is written."""

import json
import os
import tempfile

import harness


def value(stage, component, version, svn, fill):
    return {"stage": stage, "component": component, "version": version, "svn": svn, "digest": fill * 64}


class RefvalsImportTest(harness.DaemonTestCase):
    tenants = ("acme",)

    def write(self, doc):
        fd, path = tempfile.mkstemp(prefix="refvals-", suffix=".json", dir=self.d.tmp)
        with os.fdopen(fd, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def imp(self, path, local=True, json_out=False):
        extra = ["--data-dir", self.d.data_dir] if local else []
        return self.d.ctl(*extra, "refvals", "import", path, json_out=json_out)

    def listed(self):
        items = self.assertOk(self.api("GET", "/v1/reference-values?limit=1000"))["items"]
        return {(v["stage"], v["component"], v["version"]): (v["svn"], v["digest"], v["scope"]) for v in items}

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, expected %d\n%s%s" % (p.returncode, code, p.stdout, p.stderr))

    def test_import_repeat_and_without_data_dir(self):
        vals = [value("bootloader", "imp-bl", "1.0.0", 1, "a"), value("os", "imp-os", "2.0.0", 4, "b"),
                value("app", "imp-app", "1.0.0", 2, "c")]
        path = self.write(vals)
        p = self.imp(path, json_out=True)
        self.assertExit(p, 0)
        out = json.loads(p.stdout)
        self.assertEqual((len(out["added"]), len(out["present"])), (3, 0))
        have = self.listed()
        self.assertEqual(have[("bootloader", "imp-bl", "1.0.0")], (1, "a" * 64, "platform"))
        self.assertEqual(have[("os", "imp-os", "2.0.0")], (4, "b" * 64, "platform"))
        self.assertEqual(have[("app", "imp-app", "1.0.0")], (2, "c" * 64, "tenant"))
        p = self.imp(path)  # again: nothing new
        self.assertExit(p, 0)
        self.assertIn("0 added, 3 already present", p.stdout)
        p = self.imp(path, local=False)  # a tenant without the data directory: the platform values are there
        self.assertExit(p, 0)
        self.assertIn("0 added, 3 already present", p.stdout)
        self.assertEqual(len(self.listed()), len(have))

    def test_missing_platform_value_without_data_dir(self):
        path = self.write([value("os", "imp-missing", "9.9.9", 1, "d"), value("app", "imp-after", "1.0.0", 1, "e")])
        p = self.imp(path, local=False)
        self.assertExit(p, 1)
        self.assertIn("imp-missing", p.stderr)
        self.assertIn("--data-dir", p.stderr)
        self.assertNotIn(("os", "imp-missing", "9.9.9"), self.listed())

    def test_changed_value_is_refused(self):
        self.assertExit(self.imp(self.write([value("app", "imp-chg", "1.0.0", 1, "1")])), 0)
        for changed in (value("app", "imp-chg", "1.0.0", 1, "2"), value("app", "imp-chg", "1.0.0", 3, "1")):
            p = self.imp(self.write([changed]))
            self.assertExit(p, 1)
            self.assertIn("another svn or digest", p.stderr)
        self.assertEqual(self.listed()[("app", "imp-chg", "1.0.0")], (1, "1" * 64, "tenant"))

    def test_bad_files_write_nothing(self):
        before = self.listed()
        good = value("app", "imp-bad", "1.0.0", 1, "f")
        bad = [
            "{}", "[]", "not json", json.dumps([good, {"stage": "app"}]),
            json.dumps([good, dict(good, digest="F" * 64)]), json.dumps([good, dict(good, stage="kernel")]),
            json.dumps([good, dict(good, svn=-1)]), json.dumps([good, dict(good, component="Bad Name")]),
            json.dumps([good, dict(good, extra=1)]), json.dumps([good] * 1001),
        ]
        for doc in bad:
            p = self.imp(self.write(doc))
            self.assertIn(p.returncode, (2, 4), doc[:80])
            self.assertTrue(p.stderr.startswith("error:"), p.stderr)
        p = self.imp(os.path.join(self.d.tmp, "no-such.json"))
        self.assertExit(p, 4)
        self.assertEqual(self.listed(), before)
