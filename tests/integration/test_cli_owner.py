"""aegisctl run by root on a data directory that belongs to another user (the service's, under systemd) refuses,
naming the fix, and changes nothing: files root made there (a new CA key, a TLS key, a restored database) would be
root's, 0600, and the service could not read them. Root on its own data directory, and the owner on its own, work;
a remote command (--server) is not concerned."""

import os
import shutil
import tempfile
import unittest

import harness

NOBODY = 65534


def ctl(*args, as_uid=None):
    argv = [harness.binary("aegisctl")] + list(args)
    if as_uid is None:
        return harness.run_tool(argv)
    import subprocess
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=harness.CTL_TIMEOUT,
                       preexec_fn=lambda: (os.setgroups([]), os.setgid(as_uid), os.setuid(as_uid)))
    return p


def chown_tree(path, uid):
    for d, dirs, files in os.walk(path):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(n, uid, uid)


@unittest.skipUnless(os.geteuid() == 0, "needs root (the rule is about root)")
class CliOwnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aegis-owner-")  # 0700, root's
        self.conf = os.path.join(self.dir, "aegisd.conf")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def assertExit(self, p, code):
        self.assertEqual(p.returncode, code, "exit %d, expected %d\nstdout: %s\nstderr: %s"
                         % (p.returncode, code, p.stdout[-2000:], p.stderr[-2000:]))

    def test_root_on_its_own_data_dir_works(self):
        p = ctl("--data-dir", self.dir, "migrate")
        self.assertExit(p, 0)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "aegis.db")))

    def test_root_refused_on_another_users_data_dir(self):
        self.assertExit(ctl("--data-dir", self.dir, "migrate"), 0)
        chown_tree(self.dir, NOBODY)
        with open(self.conf, "w") as f:
            f.write("data_dir = %s\n" % self.dir)
        before = sorted(os.listdir(self.dir))
        for args in (["--data-dir", self.dir, "pki", "init"], ["--config", self.conf, "pki", "init"],
                     ["--data-dir", self.dir, "tenant", "create", "acme"], ["--data-dir", self.dir, "migrate"],
                     ["--config", self.conf, "restore", os.path.join(self.dir, "no-such-backup"), "--force"]):
            p = ctl(*args)
            self.assertExit(p, 4)
            self.assertIn("belongs to nobody", p.stderr)
            self.assertIn("runuser -u nobody -- aegisctl", p.stderr)
            self.assertEqual(p.stdout, "")
        os.remove(self.conf)
        self.assertEqual(sorted(os.listdir(self.dir)), [x for x in before if x != "aegisd.conf"],
                         "a refused command changed the data directory")
        # The owner itself works there (runuser -u nobody -- aegisctl ...).
        p = ctl("--data-dir", self.dir, "migrate", as_uid=NOBODY)
        self.assertExit(p, 0)
        p = ctl("--data-dir", self.dir, "pki", "init", as_uid=NOBODY)
        self.assertExit(p, 0)
        st = os.stat(os.path.join(self.dir, "pki", "root.key"))
        self.assertEqual(st.st_uid, NOBODY)

    def test_remote_commands_ignore_the_rule(self):
        os.chown(self.dir, NOBODY, NOBODY)
        # --server makes it an API command: the data directory is not worked on; no server listens on port 1.
        p = ctl("--data-dir", self.dir, "--server", "https://127.0.0.1:1", "--token", "aegis_1_" + "a" * 43, "products", "list")
        self.assertNotIn("belongs to", p.stderr)
        self.assertExit(p, 3)
