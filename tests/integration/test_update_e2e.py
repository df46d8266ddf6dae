"""End to end (issue 12 item 5): 1,000 simulated devices (aegis-sim update, the firmware-ref update agent in each)
against a real aegisd.

1. A good release rolls out through all its waves: every device commits it, and every device's last attestation
   record measures the new version.
2. A crashing release: the devices of its first wave install it, crash on their trial boot and roll back by
   themselves; their crash reports reach the service after the rollback boot, failure reporting flags the new
   version's crash buckets, and the rollout **halts by itself** on that flag (the update-failure check is switched
   off here, so the flag is what halts it). Later waves are never offered it; every device of the first wave runs
   the good version again and attests.
3. Recovery: the tenant raises the OS's security minimum above what a few devices run; their attestation is
   refused with a recovery grant; they fetch and verify an OS release through the recovery routes with the grant's
   bearer token, install it, boot it on trial, attest with the new measurements and commit.
"""

import os

import harness
from test_deployments import wave_of
from test_sim_update import CONFIG, HW, SCALE, UpdateFixtures  # noqa: F401 (HW: the fleet's hardware class)

FLEET = 1000
RECOVER = 3  # devices FLEET .. FLEET + RECOVER - 1: the recovery group
E2E_CONFIG = dict(CONFIG, flag_new_bucket_devices=3)


class UpdateEndToEndTest(UpdateFixtures, harness.DaemonTestCase):
    tenants = ("acme",)
    config = E2E_CONFIG

    @classmethod
    def prepare(cls):
        cls.prepare_repos(FLEET + RECOVER)
        cls.good = cls.upload(os.urandom(64 * 1024), "1.1.0", 2)
        cls.bad = cls.upload(os.urandom(64 * 1024), "1.2.0", 3)
        cls.os_data = os.urandom(96 * 1024)
        cls.os_img = cls.upload(cls.os_data, "2.2.0", 4, component="aegis-os", kind="os")
        cls.sign()
        cls.fleet_group = cls.group_of(range(FLEET))
        cls.recovery_group = cls.group_of(range(FLEET, FLEET + RECOVER))

    def run_fleet(self, *args, first=0, n=FLEET):
        s = self.update(first, n, "--concurrency", 64, *args, timeout=600)
        print("\n[test_update_e2e] %d devices: %.1f s, attestations %s, refusals %s" % (
            n, s["elapsed_s"], s["attest"]["outcomes"], s["refusals"]), flush=True)
        return s

    def last_measured(self, i, component):
        items = self.assertOk(self.api("GET", "/v1/devices/%s/attestations?limit=1" % self.ids[i]))["items"]
        self.assertTrue(items, "device %d has no attestation record" % i)
        self.assertEqual(items[0]["result"], "pass", (i, items[0]))
        return [m["version"] for m in items[0]["measurements"] if m["component"] == component]

    def test_1_good_release_through_all_waves(self):
        waves = (10, 50, 100)
        dep = self.deploy(self.fleet_group, self.good, waves, soak=1, threshold=20, min_attempts=10)
        s = self.run_fleet("--until-version", "aegis-app@1.1.0", "--duration", 300)
        outcomes = {}
        for r in s["results"]:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        self.assertEqual(outcomes, {"updated": FLEET}, s["waves"])
        d = self.show(dep)
        self.assertEqual(d["state"], "completed", d)
        self.assertEqual(sum(p["committed"] for p in d["progress"]), FLEET, d["progress"])
        self.assertEqual(sorted(k for k in s["waves"]), ["1", "2", "3"], s["waves"])
        for w, p in zip(("1", "2", "3"), d["progress"]):
            self.assertEqual(s["waves"][w]["updated"], p["devices"], (s["waves"], d["progress"]))
        for i in range(FLEET):
            self.assertEqual(self.last_measured(i, "aegis-app"), ["1.1.0"], i)

    def test_2_crashing_release_halts_by_itself(self):
        waves = (5, 50, 100)
        # failure_threshold 100 % over at least 1,000,000 finished attempts: never; only a failure flag halts it
        dep = self.deploy(self.fleet_group, self.bad, waves, soak=3600, threshold=100, min_attempts=1000000)
        wave = {i: wave_of(self.ids[i], dep["id"], waves) for i in range(FLEET)}
        first = [i for i in range(FLEET) if wave[i] == 1]
        self.assertGreaterEqual(len(first), 20, "wave 1 of this fixture")
        s = self.run_fleet("--crash", "1@aegis-app:1.2.0", "--idle-stop", 10, "--duration", 240)
        d = self.show(dep)
        self.assertEqual(d["state"], "halted", d)
        self.assertEqual(d["current_wave"], 1, d)
        self.assertRegex(d["reason"], r"^halted: (bucket [0-9a-f]+.* on \d+ devices|crash rate of aegis-app 1\.2\.0)",
                         d["reason"])
        # later waves untouched: never offered, no attempt, still on the good release
        p = d["progress"]
        self.assertEqual((p[1]["waiting"], p[2]["waiting"]), (p[1]["devices"], p[2]["devices"]), p)
        self.assertEqual(set(s["waves"]) - {"1"}, {"waiting"}, s["waves"])
        self.assertEqual(s["waves"]["waiting"]["held_back"], FLEET - len(first), s["waves"])
        # wave 1: whoever installed it rolled back by itself; all of it runs 1.1.0 again and attests
        self.assertGreater(p[0]["rolled_back"], 0, p)
        self.assertEqual(p[0]["committed"] + p[0]["in_progress"], 0, p)
        # (a device still downloading when the halt emptied its answer gave up: "superseded")
        self.assertIn("crashed_on_trial", p[0]["reasons"], p)
        self.assertLessEqual(set(p[0]["reasons"]), {"crashed_on_trial", "superseded"}, p)
        for i in first:
            self.assertEqual(self.last_measured(i, "aegis-app"), ["1.1.0"], i)
        # the crash reports that halted it are in the service, on the new version
        buckets = self.assertOk(self.api("GET", "/v1/failures/buckets?image_version=1.2.0&limit=100"))["items"]
        self.assertTrue(buckets, "no crash bucket on aegis-app 1.2.0")
        flags = self.assertOk(self.api("GET", "/v1/failures/flags?limit=100"))["items"]
        self.assertTrue(flags, "no failure flag")

    def test_3_revoked_os_heals_through_recovery(self):
        devs = list(range(FLEET, FLEET + RECOVER))
        # the operator knows the OS release as good before it rolls out (a grant offers only such images)
        self.d.ctl_local("refvals", "add", "--stage", "os", "--component", "aegis-os", "--version", "2.2.0",
                         "--svn", "4", "--digest", self.os_img["sha256"])
        dep = self.deploy(self.recovery_group, self.os_img, (1, 100), soak=3600)
        # the devices' OS (aegis-os 2.1.0, svn 3) is revoked: below the tenant's minimum from now on
        self.assertOk(self.api("PUT", "/v1/security-minimums/aegis-os", {"min_svn": 4}))
        s = self.run_fleet("--until-version", "aegis-os@2.2.0", "--duration", 120, first=FLEET, n=RECOVER)
        self.assertEqual([r["outcome"] for r in s["results"]], ["updated"] * RECOVER, s["results"])
        self.assertGreaterEqual(s["attest"]["outcomes"].get("rollback", 0), RECOVER, s["attest"])
        for i in devs:
            self.assertEqual(self.last_measured(i, "aegis-os"), ["2.2.0"], i)
        self.assertEqual(self.show(dep)["state"], "running")  # wave 2 never came: this was recovery
