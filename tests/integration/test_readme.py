"""The README's path to a working fleet, run as a new user pastes it (issue 14 item 3): `deploy/dev-run.sh` (what
`make run PORT=N` runs) in a fresh directory, then every ```sh block of the README's "A simulated fleet" section,
in order, in one bash with `set -euo pipefail`, with only the port changed (the README says so). What the blocks
did is then checked in the service's database and in their output: the fleet attested, reported crashes, the four
fault switches ended in their refusals, and the rollout reached every healthy device."""

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README_PORT = 8443
SECTION = "## A simulated fleet"


def fleet_blocks():
    """The ```sh blocks of the README's fleet section, in order."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ReadmeFleetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aegis-readme-")
        os.symlink(os.path.abspath(harness.build_dir()), os.path.join(self.tmp, "build"))
        os.symlink(os.path.join(ROOT, "deploy"), os.path.join(self.tmp, "deploy"))
        home = os.path.join(self.tmp, "home")
        os.mkdir(home, 0o700)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AEGIS_") or k == "AEGIS_BUILD"}
        self.env.update(PORT=str(self.port), HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
        self.log_path = os.path.join(self.tmp, "make-run.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["sh", "deploy/dev-run.sh", "build"], cwd=self.tmp, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def tearDown(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if not os.environ.get("AEGIS_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def run_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_serving(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.assertIsNone(self.proc.poll(), "make run exited:\n" + harness.tail(self.run_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.fail("make run did not listen on %d:\n%s" % (self.port, harness.tail(self.run_log())))

    def db(self, sql, *args):
        con = sqlite3.connect(os.path.join(self.tmp, "var", "aegis.db"))
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def test_fleet_section_as_pasted(self):
        self.wait_serving()
        banner = self.run_log()
        url = "https://127.0.0.1:%d" % self.port
        self.assertIn("Aegis dev instance on " + url, banner)
        self.assertNotIn(":%d" % README_PORT, banner, "make run printed the default port, not PORT's")
        blocks = fleet_blocks()
        self.assertGreaterEqual(len(blocks), 4, "the README's fleet section lost its blocks")
        # "change the first line to match": the export is the one line with the address, the rest say $AEGIS_SERVER
        addr = "127.0.0.1:%d" % README_PORT
        self.assertEqual([ln for b in blocks for ln in b.splitlines() if addr in ln],
                         ["export AEGIS_SERVER=https://%s AEGIS_CACERT=var/pki/root.crt" % addr])
        # A line between blocks tells, in a failure's output, which block ran and when.
        script = "\n".join('echo "== block %d at ${SECONDS}s" >&2\n%s' % (i + 1, b) for i, b in enumerate(blocks))
        script = script.replace("127.0.0.1:%d" % README_PORT, "127.0.0.1:%d" % self.port)
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.tmp, env=self.env,
                           capture_output=True, text=True, timeout=900)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, "the README's fleet section failed:\n" + harness.tail(out, 80) +
                         "\n--- make run log ---\n" + harness.tail(self.run_log()))

        devices = [r[0] for r in self.db("SELECT id FROM devices")]
        self.assertEqual(len(devices), 50)
        passed = {r[0] for r in self.db("SELECT DISTINCT device_id FROM attestations WHERE result = 'pass'")}
        self.assertEqual(len(passed), 50, "every device attested at least once")
        reasons = {r[0] for r in self.db("SELECT reason FROM attestations WHERE result = 'fail'")}
        for reason in ("unknown_measurement", "rollback", "blocked"):
            self.assertIn(reason, reasons)
        for reason in ("unknown_measurement", "rollback", "bad_nonce", "blocked"):
            self.assertIn(reason, out, "the fault run's summary shows %s" % reason)
        crashes = self.db("SELECT count(*) FROM telemetry_reports WHERE type = 'crash'")[0][0]
        self.assertGreater(crashes, 0, "the boots with crashes were reported")
        self.assertGreater(self.db("SELECT count(*) FROM failure_buckets")[0][0], 0)
        committed = self.db("SELECT count(DISTINCT device_id) FROM update_attempts WHERE state = 'committed'")[0][0]
        self.assertEqual(committed, 46, "the rollout reached every healthy device")
        self.assertRegex(out, r"(?m)^aegis_\w+(\{[^}]*\})? \d", "the metrics line of 'what to look at' printed figures")
        self.assertIsNone(self.proc.poll(), "the service is still serving")
        timing = re.findall(r"== block (\d+) at (\d+)s", out)
        print("\nREADME blocks started at (s): %s" % ", ".join("%s:%s" % t for t in timing))


if __name__ == "__main__":
    unittest.main()
