"""Power loss at any step of an update (issue 12 item 2; docs/update.md 9.1 "Power loss"), with the whole simulator
process killed (SIGKILL) by `aegis-sim update --kill-at POINT:N`: during the download (after the N-th stored piece),
after the digest check, after the inactive slot was written, after the switch (the slot armed), on the trial boot
(after the bootloader's write, and after the attestation, before the commit), before the commit's control-block
write, after the commit (the point between the commit's two writes is cut in tests/unit/test_fw_ab.c), and after a
status report was answered. After each kill the same devices are powered on again by a new simulator process: every one must boot a good slot (its first attestation passes: a broken or mixed slot would
fail to boot or measure wrong), finish the update, and the service must hold one committed attempt per device whose
reports arrived in order (the state machine of docs/update.md 6 refuses any other order).

The write-level matrix (every single write of the A/B state machine interrupted, with torn temporary files) is the
unit test tests/unit/test_fw_ab.c."""

import os
import random
import signal

import harness
from test_sim_update import CONFIG, UpdateFixtures

# (point, N): the process dies the N-th time any device of the round reaches the point
KILLS = [("boot", 1), ("boot", 2), ("download", 1), ("download", 2), ("download", 4), ("downloaded", 1),
         ("staged", 1), ("armed", 1), ("armed", 2), ("trial", 1), ("committing", 1), ("committed", 1),
         ("committed", 2), ("reported", 1), ("reported", 3), ("reported", 6)]
# and more rounds at points and counts drawn with a fixed seed (the same every run, so a failure repeats)
_rng = random.Random(12)
_MAX_N = {"download": 6, "reported": 6, "boot": 3}
for _ in range(12):
    _point = _rng.choice(["boot", "download", "downloaded", "staged", "armed", "trial", "committing", "committed",
                          "reported"])
    KILLS.append((_point, _rng.randint(1, _MAX_N.get(_point, 2))))
PER_ROUND = 2


class UpdatePowerLossTest(UpdateFixtures, harness.DaemonTestCase):
    tenants = ("acme",)
    config = CONFIG

    @classmethod
    def prepare(cls):
        cls.prepare_repos(len(KILLS) * PER_ROUND)
        cls.release = cls.upload(os.urandom(200 * 1024 + 7), "1.1.0", 2)
        cls.sign()
        group = cls.group_of(range(len(KILLS) * PER_ROUND))
        cls.dep = cls.deploy_cls(group, cls.release)

    @classmethod
    def deploy_cls(cls, group, image):
        body = {"group_id": group, "name": "power", "images": [image["sha256"]], "waves": [100],
                "soak_seconds": 3600, "failure_threshold_pct": 100, "min_attempts": 1000}
        st, _, dep = cls.client.api("POST", "/v1/deployments", body)
        assert st == 201, dep
        return dep

    def sim_update(self, first, *args):
        return self.sim("update", "--dir", self.fleet, "--server", self.d.url(), "--cacert", self.d.cacert,
                        "--from", first, "--devices", PER_ROUND, "--product-id", self.product, "--image-root",
                        self.roots["repo"], "--director-root", self.roots["director"], "--time-scale", 600,
                        "--json", *args, timeout=120)

    def test_kill_at_every_step(self):
        for k, (point, n) in enumerate(KILLS):
            first = k * PER_ROUND
            with self.subTest(point=point, n=n):
                p = self.sim_update(first, "--kill-at", "%s:%d" % (point, n), "--duration", 60)
                self.assertEqual(p.returncode, -signal.SIGKILL,
                                 "%s:%d was never reached: %s" % (point, n, p.stderr[-2000:]))
                s = self.update(first, PER_ROUND, "--until-version", "aegis-app@1.1.0", "--duration", 60)
                self.assertEqual(s["attest"]["outcomes"].get("pass", 0) >= PER_ROUND, True, s["attest"])
                self.assertEqual(set(s["attest"]["outcomes"]), {"pass"}, s["attest"])  # every boot was good
                self.assertEqual([r["outcome"] for r in s["results"]], ["updated"] * PER_ROUND, s["results"])
                for i in range(first, first + PER_ROUND):
                    self.assertEqual(self.last_measured_app(i), ["1.1.0"], i)
                    rows = [r for r in self.attempts([i]) if r[1] != "failed"]
                    self.assertEqual([r[1] for r in rows], ["committed"], (i, rows))
