"""`make demo`'s script (deploy/demo.sh, issue 15 item 5) on a small fleet: a fresh service, provisioning, import,
attestation, failure reports, a rollout in waves and a bad release the service halts by itself, every figure read
back from the API and checked by the script itself (CI runs the full `make demo`, 1,000 devices). Also: whatever
ends the script, the daemon is stopped and the temporary directories are removed.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "deploy", "demo.sh")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for this purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aegis-demo-test-")
        self.env = dict(os.environ, TMPDIR=self.tmp, DEVICES="100")
        self.env.pop("KEEP", None)

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp])

    def start(self):
        # cwd elsewhere: the script finds the tree by its own path
        return subprocess.Popen(["sh", SCRIPT, harness.build_dir()], cwd=self.tmp, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def places(self, out):
        m = re.search(r"^== a fresh service in (\S+) ", out, re.M)
        self.assertTrue(m, out)
        d = re.search(r"aegisd \(pid (\d+)\) serves https://127\.0\.0\.1:\d+; .*storage: (\S+)$", out, re.M)
        self.assertTrue(d, out)
        return m.group(1), int(d.group(1)), d.group(2)

    def assertCleanedUp(self, out):
        work, pid, fleet = self.places(out)
        self.assertFalse(os.path.exists(work), work)
        self.assertFalse(os.path.exists(fleet), fleet)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(alive(pid), "aegisd (pid %d) still runs" % pid)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_small_fleet_end_to_end(self):
        p = self.start()
        out, _ = p.communicate(timeout=600)
        print("\n[test_demo]\n" + out, flush=True)
        self.assertEqual(p.returncode, 0, out)
        checks = re.findall(r"^   (ok|FAILED)  ", out, re.M)
        self.assertEqual(checks, ["ok"] * 9, out)
        self.assertRegex(out, r"halted: update failure rate 100% \(\d+ of \d+\) in wave 1")
        self.assertRegex(out, r"(?m)^demo: every expectation held: 100 devices, \d+ s, \d+ s CPU")
        self.assertCleanedUp(out)

    def test_signal_stops_the_daemon_and_cleans_up(self):
        p = self.start()
        out = ""
        try:
            # until the fleet is in the middle of its first run
            for line in p.stdout:
                out += line
                if line.startswith("== every device boots"):
                    break
            time.sleep(1)
            p.send_signal(signal.SIGTERM)
            rest, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        out += rest
        self.assertEqual(p.returncode, 143, out)
        self.assertCleanedUp(out)

    def test_bad_arguments(self):
        p = subprocess.run(["sh", SCRIPT, os.path.join(self.tmp, "nothing")], env=self.env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is missing", p.stderr)
        p = subprocess.run(["sh", SCRIPT, harness.build_dir()], env=dict(self.env, DEVICES="ten"),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(os.listdir(self.tmp), [])


if __name__ == "__main__":
    unittest.main()
