"""Device attestation (docs/protocol.md section 3) against the real daemon: challenge, evidence, every
failure reason, the issued certificate, records and tenant isolation, malformed evidence, nonce expiry,
the challenge rate limit, and nonces across a restart.

Devices are played here with the openssl CLI: P-256 identity and certificate keys, CSRs, and
`openssl dgst -sha256 -sign` over the 144-byte message. The event encoding and composite fold are
written out in Python from the protocol text (the C side is checked against docs/protocol.md section 6
by tests/unit/test_attest.c)."""

import base64
import calendar
import hashlib
import http.client
import json
import os
import re
import ssl
import struct
import subprocess
import time

import harness

STAGES = {"bootloader": 1, "os": 2, "app": 3}
PREFIX = b"AEGIS-ATTEST-V1\x00"


def sha256(b):
    return hashlib.sha256(b).digest()


def openssl(*args, stdin=None):
    p = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def genkey(path, kind="P-256"):
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + kind, "-out", path)
    return path


def pem_blocks(text):
    return re.findall(r"-----BEGIN [A-Z ]+-----\n.*?-----END [A-Z ]+-----\n?", text, re.S)


def der_of_pem(pem):
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    return base64.b64decode(body)


def pem_of_der(der, label="CERTIFICATE REQUEST"):
    b64 = base64.b64encode(der).decode()
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        label, "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)), label)


def event(stage, component, version, svn, digest=None):
    return {"stage": stage, "component": component, "version": version, "svn": svn,
            "digest": digest or sha256(("%s %s" % (component, version)).encode()).hex()}


def enc(e):
    c, v = e["component"].encode(), e["version"].encode()
    return (bytes([STAGES[e["stage"]], len(c)]) + c + bytes([len(v)]) + v + struct.pack(">I", e["svn"])
            + bytes.fromhex(e["digest"]))


def composite(events):
    c = bytes(32)
    for e in events:
        c = sha256(c + sha256(enc(e)))
    return c


BOOT = event("bootloader", "aegis-bl", "1.0.0", 1)
OS = event("os", "aegis-os", "2.3.1", 7)
APP = event("app", "thermo", "1.4.0", 3)
LOG = [BOOT, OS, APP]


class Device:
    """A device: its identity key (in tmp) and ID."""

    def __init__(self, tmp, name, kind="P-256"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.key = genkey(os.path.join(self.dir, "id.key"), kind)
        self.pub = openssl("pkey", "-in", self.key, "-pubout").decode()
        self.id = hashlib.sha256(der_of_pem(self.pub)).hexdigest()

    def csr(self, kind="P-256", name="cert"):
        """(csr_pem, csr_der, key path) for a fresh certificate key of this kind."""
        key = genkey(os.path.join(self.dir, name + ".key"), kind)
        pem = openssl("req", "-new", "-key", key, "-subj", "/CN=ignored").decode()
        return pem, der_of_pem(pem), key

    def sign(self, msg, key=None):
        path = os.path.join(self.dir, "msg.bin")
        with open(path, "wb") as f:
            f.write(msg)
        return openssl("dgst", "-sha256", "-sign", key or self.key, path)

    def evidence(self, nonce, events=None, csr=None, comp=None, sign_key=None, device_id=None):
        """The evidence body; every part can be replaced to build a failure."""
        events = LOG if events is None else events
        if csr is None:
            csr = self.csr()
        pem, der = csr[0], csr[1]
        comp = composite(events) if comp is None else comp
        did = device_id or self.id
        msg = PREFIX + bytes.fromhex(nonce) + bytes.fromhex(did) + comp + sha256(der)
        assert len(msg) == 144
        return {"version": 1, "device_id": did, "nonce": nonce, "composite": comp.hex(), "event_log": events,
                "csr": pem, "signature": base64.b64encode(self.sign(msg, sign_key)).decode()}


class AttestBase(harness.DaemonTestCase):
    """Reference values for LOG registered (platform values with `aegisctl --data-dir D refvals add`, the app
    value through the API), and helpers that play devices."""

    tenants = ("acme", "rival")

    @classmethod
    def prepare(cls):
        cls.tmp = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.tmp)
        cls.n = 0
        for e in (BOOT, OS):
            cls.d.ctl_local("refvals", "add", "--stage", e["stage"], "--component", e["component"], "--version",
                            e["version"], "--svn", str(e["svn"]), "--digest", e["digest"])
        st, _, body = cls.client.api("POST", "/v1/reference-values",
                                     {k: APP[k] for k in ("component", "version", "svn", "digest")})
        assert st == 201, body
        cls.dev_client = cls.d.client(token=None)

    def new_device(self, tenant="acme", claim=True, register=True):
        type(self).n += 1
        dev = Device(self.tmp, "dev%d" % self.n)
        if register:
            res = self.assertOk(self.api("POST", "/v1/devices/import",
                                         {"devices": [{"public_key": dev.pub}], "claim": claim},
                                         token=self.token_of(tenant)))
            self.assertEqual(res["devices"][0]["device_id"], dev.id)
        return dev

    def challenge(self, device_id, client=None):
        st, hdrs, body = (client or self.dev_client).api("POST", "/v1/device/attest/challenge",
                                                          {"device_id": device_id}, token=None)
        self.assertEqual(st, 200, body)
        self.assertEqual(set(body), {"nonce", "expires_at", "ttl_s"})
        self.assertRegex(body["nonce"], r"^[0-9a-f]{64}$")
        self.assertRegex(body["expires_at"], harness.RFC3339)
        return body["nonce"]

    def post_evidence(self, ev):
        return self.dev_client.api("POST", "/v1/device/attest", ev, token=None)

    def attest(self, dev, **kw):
        """Challenge + evidence; returns (status, headers, body)."""
        nonce = kw.pop("nonce", None) or self.challenge(dev.id)
        return self.post_evidence(dev.evidence(nonce, **kw))

    def assertFails(self, resp, reason):
        body = self.assertError(resp, 403, "attestation_failed")
        self.assertEqual(body.get("reason"), reason, body)
        return body

    def records(self, dev, tenant="acme"):
        return self.list_all("/v1/devices/%s/attestations" % dev.id, token=self.token_of(tenant))


class AttestTest(AttestBase):

    # --- the pass path and the certificate ---

    def test_pass_issues_a_verifiable_certificate(self):
        dev = self.new_device()
        csr = dev.csr()
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)
        self.assertEqual(set(body), {"result", "certificate", "chain", "trust_bundle", "not_before", "not_after"})
        self.assertEqual(body["result"], "pass")
        chain = pem_blocks(body["chain"])
        self.assertEqual(len(chain), 2)
        self.assertEqual(chain[0].strip(), body["certificate"].strip())
        self.assertGreaterEqual(len(pem_blocks(body["trust_bundle"])), 1)
        self.assertIn(chain[1].strip(), body["trust_bundle"])
        leaf = os.path.join(dev.dir, "leaf.pem")
        ca = os.path.join(dev.dir, "ca.pem")
        with open(leaf, "w") as f:
            f.write(chain[0])
        with open(ca, "w") as f:
            f.write(chain[1])
        # The chain ends at the tenant's device root, which heads the trust bundle (protocol.md §4), and a full
        # chain to it verifies without -partial_chain; the service root, which devices pin for the service only,
        # vouches for neither the device nor its issuing CA.
        bundle = pem_blocks(body["trust_bundle"])
        troot = os.path.join(dev.dir, "tenant-root.pem")
        with open(troot, "w") as f:
            f.write(bundle[0])
        root_text = openssl("x509", "-in", troot, "-noout", "-subject", "-issuer", "-nameopt", "RFC2253").decode()
        self.assertIn("subject=CN=Aegis Device Root acme,O=acme", root_text)
        self.assertIn("issuer=CN=Aegis Device Root acme,O=acme", root_text)
        out = openssl("verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", troot, "-untrusted", ca,
                      leaf).decode()
        self.assertIn("OK", out)
        for args in (("-CAfile", self.d.cacert, "-untrusted", ca, leaf), ("-CAfile", self.d.cacert, ca)):
            p = subprocess.run(["openssl", "verify"] + list(args), capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, p.stdout)
        text = openssl("x509", "-in", leaf, "-noout", "-text", "-nameopt", "RFC2253").decode()
        tid = self.d.tenant_ids["acme"]
        self.assertIn("URI:urn:aegis:tenant:%d:device:%s" % (tid, dev.id), text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertIn("Digital Signature", text)
        self.assertRegex(text, r"Subject: CN=%s,O=acme" % dev.id)
        # The certificate carries the CSR's key, not the identity key.
        leaf_pub = openssl("x509", "-in", leaf, "-noout", "-pubkey")
        csr_pub = openssl("pkey", "-in", csr[2], "-pubout")
        self.assertEqual(leaf_pub, csr_pub)
        # Lifetime: cert_lifetime (24 h) from now, notBefore backdated 5 minutes.
        nb = self.parse_time(body["not_before"])
        na = self.parse_time(body["not_after"])
        self.assertAlmostEqual(na - nb, 86400 + 300, delta=5)
        self.assertAlmostEqual(na, time.time() + 86400, delta=60)
        # The device shows the last attestation; the record has the certificate's serial.
        d = self.assertOk(self.api("GET", "/v1/devices/" + dev.id))
        self.assertEqual(d["attestation"]["result"], "pass")
        self.assertIsNone(d["attestation"]["reason"])
        self.assertRegex(d["attestation"]["at"], harness.RFC3339)
        recs = self.records(dev)
        self.assertEqual(len(recs), 1)
        serial = openssl("x509", "-in", leaf, "-noout", "-serial").decode().strip().split("=")[1]
        self.assertEqual(int(recs[0]["certificate"]["serial"], 16), int(serial, 16))
        self.assertRegex(recs[0]["certificate"]["serial"], r"^[0-9a-f]+$")
        self.assertEqual(recs[0]["certificate"]["not_after"], body["not_after"])
        self.assertEqual(recs[0]["measurements"], LOG)
        self.assertEqual(recs[0]["peer"], "127.0.0.1")
        # The certificate works for device mutual TLS.
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.load_cert_chain(os.path.join(dev.dir, "leaf.pem"), csr[2])
        conn = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)
        try:
            conn.request("GET", "/v1/device/whoami")
            r = conn.getresponse()
            who = json.loads(r.read())
            self.assertEqual(r.status, 200, who)
            self.assertEqual(who["device_id"], dev.id)
        finally:
            conn.close()

    @staticmethod
    def parse_time(s):
        return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))

    def test_five_apps_pass(self):
        # The most events a log may have: bootloader, os and six apps.
        dev = self.new_device()
        self.assertOk(self.attest(dev, events=[BOOT, OS] + [APP] * 6))

    # --- every reason, in the protocol's order ---

    def attest_counter(self, result, reason):
        st, _, raw = self.client.request("GET", "/metrics", token=None)
        self.assertEqual(st, 200)
        text = raw.decode()
        key = 'aegis_attestations_total{result="%s",reason="%s"} ' % (result, reason)
        for line in text.splitlines():
            if line.startswith(key):
                return int(line[len(key):])
        self.fail("no %s in /metrics" % key)

    def test_metrics_count_results_by_reason(self):
        passes = self.attest_counter("pass", "")
        unknown = self.attest_counter("fail", "unknown_device")
        dev = self.new_device()
        self.assertEqual(self.attest(dev)[0], 200)
        ghost = self.new_device(register=False)
        # The caller is told a bad signature; the operator's metrics tell an unknown device.
        self.assertFails(self.attest(ghost), "bad_signature")
        self.assertEqual(self.attest_counter("pass", ""), passes + 1)
        self.assertEqual(self.attest_counter("fail", "unknown_device"), unknown + 1)

    def test_unknown_device(self):
        dev = self.new_device(register=False)
        before = len(self.list_all("/v1/attestations"))
        nonce = self.challenge(dev.id)  # an unknown device gets a nonce too
        # Answered as a bad signature: no key is registered that it could verify with.
        self.assertFails(self.post_evidence(dev.evidence(nonce)), "bad_signature")
        self.assertEqual(len(self.list_all("/v1/attestations")), before, "an unknown device was recorded")
        self.assertError(self.api("GET", "/v1/devices/%s/attestations" % dev.id), 404, "not_found")

    def test_not_claimed(self):
        dev = self.new_device(claim=False)
        self.assertFails(self.attest(dev), "not_claimed")
        recs = self.records(dev)
        self.assertEqual([(r["result"], r["reason"]) for r in recs], [("fail", "not_claimed")])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + dev.id))["attestation"]["reason"],
                         "not_claimed")

    def test_blocked(self):
        dev = self.new_device()
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % dev.id))
        self.assertFails(self.attest(dev), "blocked")
        self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % dev.id))
        self.assertOk(self.attest(dev))
        self.assertEqual([r["reason"] for r in self.records(dev)], [None, "blocked"])

    def test_bad_nonce_reused(self):
        dev = self.new_device()
        nonce = self.challenge(dev.id)
        ev = dev.evidence(nonce)
        self.assertOk(self.post_evidence(ev))
        self.assertFails(self.post_evidence(dev.evidence(nonce)), "bad_nonce")
        # A replay proves nothing (anyone who saw the evidence can send it): not recorded.
        self.assertFails(self.post_evidence(ev), "bad_nonce")
        self.assertEqual([r["result"] for r in self.records(dev)], ["pass"])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + dev.id))["attestation"]["result"], "pass")

    def test_bad_nonce_never_issued(self):
        dev = self.new_device()
        self.assertFails(self.post_evidence(dev.evidence(os.urandom(32).hex())), "bad_nonce")

    def test_bad_nonce_of_another_device(self):
        a, b = self.new_device(), self.new_device()
        nonce = self.challenge(a.id)
        # B presents A's nonce, correctly signed with B's own key: refused, and A's nonce survives.
        self.assertFails(self.post_evidence(b.evidence(nonce)), "bad_nonce")
        self.assertOk(self.post_evidence(a.evidence(nonce)))

    def test_failure_after_the_nonce_consumes_it(self):
        dev = self.new_device()
        nonce = self.challenge(dev.id)
        other = Device(self.tmp, "other-signer-%d" % self.n)
        self.assertFails(self.post_evidence(dev.evidence(nonce, sign_key=other.key)), "bad_signature")
        self.assertFails(self.post_evidence(dev.evidence(nonce)), "bad_nonce")

    def test_challenges_do_not_evict_nonces(self):
        # Anyone may ask for a device's nonces: however many they get, the device's own stays good.
        dev = self.new_device()
        mine = self.challenge(dev.id)
        strangers = [self.challenge(dev.id) for _ in range(8)]
        self.assertOk(self.post_evidence(dev.evidence(mine)))
        self.assertOk(self.post_evidence(dev.evidence(strangers[0])))
        self.assertOk(self.post_evidence(dev.evidence(strangers[-1])))

    # --- strangers (issue 10): before the identity signature verifies, nothing depends on the registry ---

    def stranger_answers(self, device_id, stranger, nonce):
        """The status and body of evidence for device_id signed by stranger."""
        st, _, body = self.post_evidence(stranger.evidence(nonce, device_id=device_id))
        return st, body

    def test_strangers_learn_and_change_nothing(self):
        claimed = self.new_device()
        self.assertOk(self.attest(claimed))
        unclaimed = self.new_device(claim=False)
        blocked = self.new_device()
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % blocked.id))
        ghost = Device(self.tmp, "ghost-%d" % self.n)
        stranger = Device(self.tmp, "stranger-%d" % self.n)
        before = {d.id: self.records(d) for d in (claimed, unclaimed, blocked)}
        last = {d.id: self.assertOk(self.api("GET", "/v1/devices/" + d.id))["attestation"]
                for d in (claimed, unclaimed, blocked)}
        ids = [claimed.id, unclaimed.id, blocked.id, ghost.id]
        # A made-up nonce: one answer for every device ID.
        answers = [self.stranger_answers(i, stranger, os.urandom(32).hex()) for i in ids]
        self.assertEqual(len({json.dumps(a, sort_keys=True) for a in answers}), 1, answers)
        self.assertEqual(answers[0][0], 403)
        self.assertEqual(answers[0][1]["reason"], "bad_nonce")
        # A real nonce, signed with the stranger's key: one answer again.
        answers = [self.stranger_answers(i, stranger, self.challenge(i)) for i in ids]
        self.assertEqual(len({json.dumps(a, sort_keys=True) for a in answers}), 1, answers)
        self.assertEqual(answers[0][1]["reason"], "bad_signature")
        # Nothing written: no record, the last attestation as it was.
        for d in (claimed, unclaimed, blocked):
            self.assertEqual(self.records(d), before[d.id])
            self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + d.id))["attestation"], last[d.id])
        self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % blocked.id))
        self.assertOk(self.attest(blocked))

    def test_bad_signature_not_recorded(self):
        dev = self.new_device()
        self.assertOk(self.attest(dev))
        other = Device(self.tmp, "forger-%d" % self.n)
        self.assertFails(self.attest(dev, sign_key=other.key), "bad_signature")
        self.assertEqual([r["result"] for r in self.records(dev)], ["pass"])
        self.assertEqual(self.assertOk(self.api("GET", "/v1/devices/" + dev.id))["attestation"]["result"], "pass")

    def test_unknown_device_answered_as_bad_signature(self):
        dev, ghost = self.new_device(), Device(self.tmp, "ghost2-%d" % self.n)
        other = Device(self.tmp, "forger2-%d" % self.n)
        a = self.attest(dev, sign_key=other.key)
        b = self.post_evidence(ghost.evidence(self.challenge(ghost.id)))
        self.assertEqual((a[0], a[2]), (b[0], b[2]))
        self.assertFails(a, "bad_signature")

    def test_bad_signature(self):
        dev = self.new_device()
        other = Device(self.tmp, "other-key-%d" % self.n)
        self.assertFails(self.attest(dev, sign_key=other.key), "bad_signature")
        # A signature over another device's message (the message binds the device ID).
        nonce = self.challenge(dev.id)
        ev = dev.evidence(nonce)
        ev2 = dev.evidence(nonce, device_id=other.id)
        ev["signature"] = ev2["signature"]
        self.assertFails(self.post_evidence(ev), "bad_signature")
        # A signature that is valid base64 but not DER.
        ev = dev.evidence(self.challenge(dev.id))
        ev["signature"] = base64.b64encode(b"\x30\x02\x01\x01").decode()
        self.assertFails(self.post_evidence(ev), "bad_signature")

    def test_bad_csr(self):
        dev = self.new_device()
        self.assertFails(self.attest(dev, csr=dev.csr("rsa", "rsa")), "bad_csr")
        self.assertFails(self.attest(dev, csr=dev.csr("P-384", "p384")), "bad_csr")
        # A P-256 CSR whose self-signature was tampered with (the device signs the tampered DER).
        pem, der, key = dev.csr()
        bad = der[:-1] + bytes([der[-1] ^ 1])
        self.assertFails(self.attest(dev, csr=(pem_of_der(bad), bad, key)), "bad_csr")
        self.assertEqual([r["reason"] for r in self.records(dev)], ["bad_csr"] * 3)

    def test_log_mismatch(self):
        dev = self.new_device()
        other = [BOOT, OS, event("app", "thermo", "1.4.1", 3)]
        # The composite of another log, signed: the log does not replay to it.
        self.assertFails(self.attest(dev, comp=composite(other)), "log_mismatch")
        self.assertFails(self.attest(dev, comp=bytes(32)), "log_mismatch")

    def test_unknown_measurement(self):
        dev = self.new_device()
        cases = [
            [BOOT, OS, event("app", "thermo", "1.4.0", 3, "00" * 32)],  # wrong digest
            [BOOT, event("os", "aegis-os", "2.3.2", 7), APP],  # unknown os version
            [BOOT, dict(OS, svn=8), APP],  # svn differs from the reference
            [BOOT, OS, APP, event("app", "extra", "1", 1)],  # an unknown extra app
        ]
        for events in cases:
            with self.subTest(events=events):
                body = self.assertFails(self.attest(dev, events=events), "unknown_measurement")
                self.assertIn("event_log[", body["message"])
        # Another tenant's app value does not count for acme.
        rival_app = event("app", "rival-app", "1", 1)
        self.assertOk(self.api("POST", "/v1/reference-values",
                               {k: rival_app[k] for k in ("component", "version", "svn", "digest")},
                               token=self.token_of("rival")), 201)
        self.assertFails(self.attest(dev, events=[BOOT, OS, rival_app]), "unknown_measurement")

    def test_rollback(self):
        dev = self.new_device()
        self.assertOk(self.api("PUT", "/v1/security-minimums/thermo", {"min_svn": 4}))
        try:
            body = self.assertFails(self.attest(dev), "rollback")
            self.assertIn("thermo", body["message"])
            # Equal to the minimum passes.
            self.assertOk(self.api("PUT", "/v1/security-minimums/thermo", {"min_svn": 3}))
            self.assertOk(self.attest(dev))
            # A platform component's minimum counts too.
            self.assertOk(self.api("PUT", "/v1/security-minimums/aegis-os", {"min_svn": 8}))
            self.assertFails(self.attest(dev), "rollback")
        finally:
            self.api("DELETE", "/v1/security-minimums/thermo")
            self.api("DELETE", "/v1/security-minimums/aegis-os")
        self.assertOk(self.attest(dev))
        # Another tenant's minimum does not apply to acme.
        self.assertOk(self.api("PUT", "/v1/security-minimums/thermo", {"min_svn": 100},
                               token=self.token_of("rival")))
        self.assertOk(self.attest(dev))

    # --- records and isolation ---

    def test_records_newest_first_and_isolated(self):
        dev = self.new_device()
        self.assertFails(self.attest(dev, comp=bytes(32)), "log_mismatch")
        self.assertFails(self.attest(dev, events=[BOOT, OS, dict(APP, svn=4)]), "unknown_measurement")
        self.assertFails(self.post_evidence(dev.evidence("00" * 32)), "bad_nonce")  # not recorded
        self.assertOk(self.attest(dev))
        recs = self.records(dev)
        self.assertEqual([(r["result"], r["reason"]) for r in recs],
                         [("pass", None), ("fail", "unknown_measurement"), ("fail", "log_mismatch")])
        ids = [r["id"] for r in recs]
        self.assertEqual(ids, sorted(ids, reverse=True))
        for r in recs:
            self.assertEqual(set(r), {"id", "device_id", "created_at", "result", "reason", "measurements",
                                      "certificate", "peer"})
            self.assertEqual(r["device_id"], dev.id)
        # Pagination.
        page = self.assertOk(self.api("GET", "/v1/devices/%s/attestations?limit=2" % dev.id))
        self.assertEqual(len(page["items"]), 2)
        self.assertIsNotNone(page["next_cursor"])
        # The tenant-wide list and its filter.
        fails = self.list_all("/v1/attestations?result=fail")
        self.assertTrue(all(r["result"] == "fail" for r in fails))
        self.assertTrue({recs[1]["id"], recs[2]["id"]} <= {r["id"] for r in fails})
        passes = self.list_all("/v1/attestations?result=pass")
        self.assertIn(recs[0]["id"], {r["id"] for r in passes})
        self.assertError(self.api("GET", "/v1/attestations?result=maybe"), 400, "bad_request")
        # Another tenant sees nothing of it.
        rival = self.token_of("rival")
        self.assertError(self.api("GET", "/v1/devices/%s/attestations" % dev.id, token=rival), 404, "not_found")
        self.assertNotIn(dev.id, {r["device_id"] for r in self.list_all("/v1/attestations", token=rival)})
        self.assertError(self.api("GET", "/v1/devices/%s" % dev.id, token=rival), 404, "not_found")
        self.assertError(self.api("GET", "/v1/devices/%s/attestations" % dev.id.upper()), 400, "bad_request")

    # --- malformed evidence ---

    def test_malformed_evidence(self):
        dev = self.new_device()
        nonce = self.challenge(dev.id)
        good = dev.evidence(nonce)
        text = json.dumps(good)
        st, _, body = self.dev_client.api("POST", "/v1/device/attest", text[:len(text) // 2], token=None)
        self.assertEqual((st, body["error"]), (400, "invalid_json"), body)
        cases = {
            "wrong type": dict(good, version="1"),
            "extra field": dict(good, extra=True),
            "nine events": dict(good, event_log=[BOOT, OS] + [APP] * 7),
            "two events": dict(good, event_log=[BOOT, OS]),
            "wrong order": dict(good, event_log=[OS, BOOT, APP]),
            "event field": dict(good, event_log=[BOOT, OS, dict(APP, svn="3")]),
            "event extra": dict(good, event_log=[BOOT, OS, dict(APP, x=1)]),
            "upper-case hex": dict(good, nonce=nonce.upper()),
            "csr not pem": dict(good, csr="hello"),
            "signature not base64": dict(good, signature="!!"),
            "missing field": {k: v for k, v in good.items() if k != "composite"},
            "array": [good],
        }
        for name, ev in cases.items():
            with self.subTest(case=name):
                st, _, body = self.post_evidence(ev)
                self.assertEqual(st, 400, body)
                self.assertIn(body["error"], ("invalid_evidence", "invalid_json"))
                if name != "array":
                    self.assertEqual(body["error"], "invalid_evidence")
        # Over 64 KiB: 413, before any parsing.
        big = json.dumps(dict(good, csr="x" * (65 * 1024))).encode()
        c = self.d.client(token=None)
        conn = c.connect()
        conn.putrequest("POST", "/v1/device/attest")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(big)))
        conn.endheaders()
        try:
            conn.send(big)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server answers 413 and closes without reading the body
        resp = conn.getresponse()
        data = resp.read()
        self.assertEqual((resp.status, json.loads(data)["error"]), (413, "payload_too_large"), data)
        c.close()
        # No malformed body consumed the nonce, and the daemon is fine.
        self.assertEqual(self.d.client().api("GET", "/healthz")[0], 200)
        self.assertOk(self.post_evidence(good))
        self.assertEqual([r["result"] for r in self.records(dev)], ["pass"], "a 400 was recorded")

    def test_challenge_validation(self):
        for body in ({}, {"device_id": "ab"}, {"device_id": "A" * 64}, {"device_id": 5},
                     {"device_id": "a" * 64, "x": 1}):
            with self.subTest(body=body):
                self.assertError(self.dev_client.api("POST", "/v1/device/attest/challenge", body, token=None),
                                 400, "validation_failed")
        st, _, body = self.dev_client.api("POST", "/v1/device/attest/challenge", {"device_id": "a" * 64},
                                          token=None)
        self.assertEqual(st, 200)
        self.assertEqual(body["ttl_s"], 60)
        # No body, another method.
        st, _, _ = self.dev_client.api("POST", "/v1/device/attest/challenge", None, token=None)
        self.assertEqual(st, 400)
        st, _, _ = self.dev_client.api("GET", "/v1/device/attest/challenge", None, token=None)
        self.assertEqual(st, 405)

    def test_nonce_never_logged(self):
        dev = self.new_device()
        nonce = self.challenge(dev.id)
        self.assertOk(self.post_evidence(dev.evidence(nonce)))
        self.assertNotIn(nonce, self.d.log())
        self.assertIn("result=pass", self.d.log())

    # --- the manufacturer API and the CLI ---

    def test_reference_values_api(self):
        vals = self.list_all("/v1/reference-values")
        scopes = {(v["scope"], v["stage"], v["component"]) for v in vals}
        self.assertTrue({("platform", "bootloader", "aegis-bl"), ("platform", "os", "aegis-os"),
                         ("tenant", "app", "thermo")} <= scopes, scopes)
        for v in vals:
            self.assertEqual(set(v), {"id", "scope", "stage", "component", "version", "svn", "digest",
                                      "created_at"})
        platform_id = next(v["id"] for v in vals if v["scope"] == "platform")
        new = {"component": "api-app", "version": "1.0", "svn": 1, "digest": "ab" * 32}
        made = self.create("/v1/reference-values", dict(new, stage="app"))
        self.assertEqual((made["scope"], made["stage"]), ("tenant", "app"))
        self.assertError(self.api("POST", "/v1/reference-values", new), 409, "conflict")
        for bad in (dict(new, stage="os"), dict(new, digest="AB" * 32), dict(new, svn=-1),
                    dict(new, svn=4294967296), dict(new, component="Bad"), dict(new, version="1 0"),
                    dict(new, extra=1), {k: v for k, v in new.items() if k != "svn"}):
            with self.subTest(body=bad):
                self.assertError(self.api("POST", "/v1/reference-values", bad), 400, "validation_failed")
        rival = self.token_of("rival")
        self.assertNotIn(made["id"], {v["id"] for v in self.list_all("/v1/reference-values", token=rival)})
        self.assertError(self.api("DELETE", "/v1/reference-values/%d" % made["id"], token=rival), 404, "not_found")
        self.assertError(self.api("DELETE", "/v1/reference-values/%d" % platform_id), 404, "not_found")
        self.assertOk(self.api("DELETE", "/v1/reference-values/%d" % made["id"]), 204)
        self.assertError(self.api("DELETE", "/v1/reference-values/%d" % made["id"]), 404, "not_found")
        # Readers read, operators write.
        p = self.d.ctl("tokens", "create", "attest-reader", "--role", "reader", json_out=True)
        reader = json.loads(p.stdout)["token"]
        self.assertOk(self.api("GET", "/v1/reference-values", token=reader))
        self.assertError(self.api("POST", "/v1/reference-values", new, token=reader), 403, "forbidden")
        self.assertError(self.api("PUT", "/v1/security-minimums/x", {"min_svn": 1}, token=reader), 403,
                         "forbidden")
        actions = [e["action"] for e in self.list_all("/v1/audit")]
        self.assertIn("refval.create", actions)
        self.assertIn("refval.delete", actions)

    def test_security_minimums_api(self):
        made = self.assertOk(self.api("PUT", "/v1/security-minimums/some-component", {"min_svn": 9}))
        self.assertEqual((made["component"], made["min_svn"]), ("some-component", 9))
        self.assertOk(self.api("PUT", "/v1/security-minimums/some-component", {"min_svn": 10}))
        listed = {m["component"]: m["min_svn"] for m in self.list_all("/v1/security-minimums")}
        self.assertEqual(listed.get("some-component"), 10)
        self.assertNotIn("some-component",
                         {m["component"] for m in self.list_all("/v1/security-minimums", token=self.token_of("rival"))})
        self.assertError(self.api("PUT", "/v1/security-minimums/Bad", {"min_svn": 1}), 400, "bad_request")
        for body in ({"min_svn": -1}, {"min_svn": 4294967296}, {"min_svn": "1"}, {}, {"min_svn": 1, "x": 2}):
            with self.subTest(body=body):
                self.assertError(self.api("PUT", "/v1/security-minimums/c", body), 400, "validation_failed")
        self.assertOk(self.api("DELETE", "/v1/security-minimums/some-component"), 204)
        self.assertError(self.api("DELETE", "/v1/security-minimums/some-component"), 404, "not_found")
        actions = [e["action"] for e in self.list_all("/v1/audit")]
        self.assertIn("minimum.set", actions)
        self.assertIn("minimum.delete", actions)

    def test_cli(self):
        def ctl(*args, **kw):
            p = self.d.ctl(*args, **kw)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p

        # Local: platform values, on the data dir.
        p = self.d.ctl_local("refvals", "list", "--json")
        local = json.loads(p.stdout)
        self.assertEqual({v["scope"] for v in local}, {"platform"})
        self.assertTrue({"aegis-bl", "aegis-os"} <= {v["component"] for v in local})
        p = self.d.ctl_local("refvals", "add", "--stage", "os", "--component", "cli-os", "--version", "9",
                             "--svn", "1", "--digest", "CD" * 32, "--json")
        pid = json.loads(p.stdout)["id"]
        self.assertEqual(json.loads(p.stdout)["digest"], "cd" * 32)
        p = self.d.ctl_local("refvals", "add", "--stage", "os", "--component", "cli-os", "--version", "9",
                             "--svn", "1", "--digest", "cd" * 32, check=False)
        self.assertEqual(p.returncode, 4, p.stderr)
        p = self.d.ctl_local("refvals", "add", "--stage", "kernel", "--component", "x", "--version", "9",
                             "--svn", "1", "--digest", "cd" * 32, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        # API: platform + the tenant's.
        listed = json.loads(ctl("refvals", "list", json_out=True).stdout)["items"]
        self.assertIn(pid, {v["id"] for v in listed})
        self.assertIn("thermo", {v["component"] for v in listed})
        p = ctl("refvals", "add", "--stage", "app", "--component", "cli-app", "--version", "2", "--svn", "5",
                "--digest", "ef" * 32, json_out=True)
        aid = json.loads(p.stdout)["id"]
        self.assertEqual(self.d.ctl("refvals", "remove", str(pid)).returncode, 6)  # a platform value: 404
        ctl("refvals", "remove", str(aid))
        self.d.ctl_local("refvals", "remove", str(pid))
        self.assertEqual(self.d.ctl_local("refvals", "remove", str(pid), check=False).returncode, 4)
        # Minimums.
        ctl("minimums", "set", "cli-comp", "7")
        self.assertIn("cli-comp", ctl("minimums", "list").stdout)
        ctl("minimums", "remove", "cli-comp")
        self.assertEqual(self.d.ctl("minimums", "remove", "cli-comp").returncode, 6)  # 404
        self.assertEqual(self.d.ctl("minimums", "set", "cli-comp", "-1").returncode, 2)
        # Attempts.
        dev = self.new_device()
        self.assertFails(self.attest(dev, comp=bytes(32)), "log_mismatch")
        p = ctl("attestations", "list", "--device", dev.id)
        self.assertIn("log_mismatch", p.stdout)
        items = json.loads(ctl("attestations", "list", "--result", "fail", "--all", json_out=True).stdout)["items"]
        self.assertIn(dev.id, {r["device_id"] for r in items})
        self.assertEqual(self.d.ctl("attestations", "list", "--result", "maybe").returncode, 2)


class AttestExpiryTest(AttestBase):
    """A daemon with nonce_ttl = 5."""

    tenants = ("acme",)
    config = {"nonce_ttl": 5}

    def test_expired_nonce(self):
        dev = self.new_device()
        st, _, body = self.dev_client.api("POST", "/v1/device/attest/challenge", {"device_id": dev.id}, token=None)
        self.assertEqual(body["ttl_s"], 5)
        nonce = body["nonce"]
        fresh = self.challenge(dev.id)
        ev = dev.evidence(nonce)  # built now, sent after the nonce expired
        time.sleep(5.5)
        self.assertFails(self.post_evidence(ev), "bad_nonce")
        self.assertEqual(self.records(dev), [])  # before the signature: not recorded
        # An expired nonce is gone for good; a newer one is only 5.5 s old too now.
        self.assertFails(self.post_evidence(dev.evidence(fresh)), "bad_nonce")
        self.assertOk(self.attest(dev))


class AttestRateLimitTest(AttestBase):
    """A daemon with challenge_rate = 1, challenge_burst = 2."""

    tenants = ("acme",)
    config = {"challenge_rate": 1, "challenge_burst": 2}

    def test_challenge_rate_limited(self):
        dev = self.new_device()
        c = self.d.client(token=None)
        statuses = []
        for _ in range(4):
            st, hdrs, body = c.api("POST", "/v1/device/attest/challenge", {"device_id": dev.id}, token=None)
            statuses.append(st)
            if st == 429:
                self.assertEqual(body["error"], "rate_limited")
                self.assertIsInstance(body["message"], str)
                self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
                self.assertLessEqual(int(hdrs["Retry-After"]), 2)
        self.assertEqual(statuses[:2], [200, 200])
        self.assertIn(429, statuses[2:])
        # The limit lifts.
        time.sleep(1.1)
        self.assertEqual(c.api("POST", "/v1/device/attest/challenge", {"device_id": dev.id}, token=None)[0], 200)

    def test_evidence_rate_limited_separately(self):
        dev = self.new_device()
        time.sleep(2.1)  # full buckets
        nonce = self.challenge(dev.id)
        ev = dev.evidence(nonce)
        c = self.d.client(token=None)
        # Attempts have their own bucket: two bad ones, then even a good one waits.
        self.assertEqual(c.api("POST", "/v1/device/attest", {"bad": 1}, token=None)[0], 400)
        self.assertEqual(c.api("POST", "/v1/device/attest", {"bad": 1}, token=None)[0], 400)
        st, hdrs, body = c.api("POST", "/v1/device/attest", ev, token=None)
        self.assertEqual((st, body["error"]), (429, "rate_limited"), body)
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        # ... and a challenge is still allowed meanwhile.
        self.challenge(dev.id)
        time.sleep(1.1)
        self.assertOk(c.api("POST", "/v1/device/attest", ev, token=None))


class AttestRestartTest(AttestBase):
    """Nonces are checked with the database's key: one issued before a restart is good after it."""

    tenants = ("acme",)

    def test_nonce_survives_restart(self):
        dev = self.new_device()
        nonce = self.challenge(dev.id)
        self.d.stop()
        self.d.start()
        self.assertOk(self.post_evidence(dev.evidence(nonce)))
        self.assertFails(self.post_evidence(dev.evidence(nonce)), "bad_nonce")


class ProtocolVectorDocTest(harness.DaemonTestCase):
    """The test vector of proto/proto_vectors.c (the one copy the unit tests use) is the one written in
    docs/protocol.md section 6."""

    start_daemon = False

    def test_vector_values_are_in_the_protocol(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with open(os.path.join(root, "proto", "proto_vectors.c")) as f:
            src = f.read()
        with open(os.path.join(root, "docs", "protocol.md")) as f:
            doc = f.read()
        section = doc[doc.index("## 6."):]
        flat = re.sub(r"\s+", "", section)
        # The doc annotates the message's parts; joined, its hex runs are the message.
        msg_block = section[section.index("msg (144 bytes)"):]
        msg_block = msg_block[:msg_block.index("```")]
        msg = "".join(re.findall(r"\b[0-9a-f]{32,}\b", msg_block))
        # Adjacent C string literals form one constant; join them, then take every hex constant of >= 64 digits.
        joined = re.sub(r'"\s*\n\s*"', "", src)
        values = set(re.findall(r'"([0-9a-f]{64,})"', joined)) - {"0" * 64}
        self.assertGreaterEqual(len(values), 15, "proto_vectors.c has fewer vector values than expected")
        for v in sorted(values):
            with self.subTest(value=v[:16]):
                self.assertTrue(v in flat or v == msg, "%s... is not in docs/protocol.md section 6" % v[:32])
        # enc() values are written with spaces between their fields in the doc.
        self.assertIn(re.sub(r"\s+", "", "01 08 61656769732d626c 05 312e302e30 00000001"), flat)
