"""Device mutual TLS (/v1/device/whoami, /v1/device/trust-bundle) against the real daemon.

Device certificates are made here with the openssl CLI and the tenant's issuing CA key from the data dir (the
attestation flow that normally issues them is tested in test_attest.py and test_sim.py), so this file tests the
mTLS gate on its own: chain to the tenant's CAs, validity, identity, claim and block state on every request."""

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
import unittest

import test_attest
from harness import DaemonTestCase


def openssl(*args, stdin=None):
    p = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


class Device:
    """A device identity key (also used as the certificate key here) and its ID."""

    def __init__(self, tmp, name):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "key.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key)
        self.pub = openssl("ec", "-in", self.key, "-pubout").decode()
        der = openssl("pkey", "-pubin", "-outform", "DER", stdin=self.pub.encode())
        self.id = hashlib.sha256(der).hexdigest()

    def issue(self, ca_crt, ca_key, tenant_id, days=1, name="cert.pem", uri=None):
        """A leaf for this device signed by ca (the issuing CA files of the data dir)."""
        csr = os.path.join(self.dir, "req.csr")
        ext = os.path.join(self.dir, "ext.cnf")
        out = os.path.join(self.dir, name)
        openssl("req", "-new", "-key", self.key, "-subj", "/CN=" + self.id, "-out", csr)
        with open(ext, "w") as f:
            f.write("subjectAltName=URI:%s\nextendedKeyUsage=clientAuth,serverAuth\n"
                    "keyUsage=critical,digitalSignature\n"
                    % (uri or "urn:aegis:tenant:%d:device:%s" % (tenant_id, self.id)))
        openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial",
                str(int.from_bytes(os.urandom(8), "big")), "-days", str(days), "-extfile", ext, "-out", out)
        return out


class MutualTLSTest(DaemonTestCase):
    tenants = ("acme", "other")

    @classmethod
    def prepare(cls):
        cls.tmp = os.path.join(cls.d.tmp, "devices")
        os.makedirs(cls.tmp)

    def ca(self, tenant, n=1):
        tid = self.d.tenant_ids[tenant]
        base = os.path.join(self.d.pki_dir, "tenants", str(tid), "ca-%d" % n)
        return base + ".crt", base + ".key"

    def new_device(self, name, tenant="acme", claim=True):
        dev = Device(self.tmp, name)
        body = self.assertOk(self.api("POST", "/v1/devices/import",
                                      {"devices": [{"public_key": dev.pub}], "claim": claim},
                                      token=self.token_of(tenant)))
        self.assertEqual(body["devices"][0]["device_id"], dev.id)
        return dev

    def conn(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        if cert is not None:
            ctx.load_cert_chain(cert, key)
        return http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)

    def get(self, conn, path):
        conn.request("GET", path)
        r = conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "")
        body = json.loads(data) if ctype.startswith("application/json") else data.decode()
        return r.status, body

    def test_resumed_session_keeps_the_device_identity(self):
        """A device that reconnects resumes its TLS session (a ticket: no new handshake signature) and is still
        authenticated as itself on /v1/device/*; another device cannot be confused with it."""
        dev = self.new_device("resume")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"])
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                ctx = ssl.create_default_context(cafile=self.d.cacert)
                ctx.minimum_version = ctx.maximum_version = version
                ctx.load_cert_chain(cert, dev.key)
                c = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)
                st, body = self.get(c, "/v1/device/whoami")
                self.assertEqual((st, body.get("device_id")), (200, dev.id), body)
                sess = c.sock.session
                c.close()
                self.assertIsNotNone(sess)
                raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=sess)
                try:
                    self.assertTrue(s.session_reused, "session not resumed")
                    s.sendall(b"GET /v1/device/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                finally:
                    s.close()
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
                self.assertEqual(json.loads(data.split(b"\r\n\r\n", 1)[1])["device_id"], dev.id)

    def test_whoami_with_issued_certificate(self):
        dev = self.new_device("ok")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"])
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["device_id"], dev.id)
        self.assertEqual(body["tenant_id"], self.d.tenant_ids["acme"])
        self.assertIsNone(body["group_id"])
        self.assertRegex(body["certificate"]["serial"], r"^[0-9a-f]+$")
        # keep-alive: a second request on the same TLS connection
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 200)
        c.close()

    def test_no_certificate_is_401(self):
        c = self.conn()
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401)
        self.assertEqual(body["error"], "unauthorized")
        c.close()

    def test_token_routes_do_not_need_a_certificate_and_ignore_one(self):
        st, _, body = self.api("GET", "/v1/tenant")
        self.assertEqual(st, 200)

    def test_self_signed_certificate_is_401(self):
        dev = self.new_device("self")
        cert = os.path.join(dev.dir, "self.pem")
        openssl("req", "-x509", "-key", dev.key, "-subj", "/CN=x", "-days", "1", "-addext",
                "subjectAltName=URI:urn:aegis:tenant:%d:device:%s" % (self.d.tenant_ids["acme"], dev.id),
                "-out", cert)
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401, body)
        c.close()

    def test_certificate_claiming_another_tenant_is_401(self):
        # Signed by acme's CA, but the SAN claims tenant "other": the chain must be checked against other's CAs.
        dev = self.new_device("liar", tenant="other")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["other"])
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401, body)
        c.close()

    def test_certificate_of_device_of_other_tenant_is_401(self):
        # A correct chain for acme, naming a device that "other" owns.
        dev = self.new_device("theirs", tenant="other")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"])
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401, body)
        c.close()

    def test_unclaimed_device_is_401(self):
        dev = self.new_device("unclaimed", claim=False)
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"])
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401, body)
        c.close()

    def test_expired_certificate_is_401(self):
        dev = self.new_device("expired")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"], days=0)
        time.sleep(1.2)
        c = self.conn(cert, dev.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 401, body)
        self.assertIn("expired", body["message"])
        c.close()

    def test_block_takes_effect_on_next_request(self):
        dev = self.new_device("blockme")
        crt, key = self.ca("acme")
        cert = dev.issue(crt, key, self.d.tenant_ids["acme"])
        c = self.conn(cert, dev.key)
        st, _ = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 200)
        self.assertOk(self.api("POST", "/v1/devices/%s/block" % dev.id))
        st, body = self.get(c, "/v1/device/whoami")  # same connection, still-valid certificate
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"], "device_blocked")
        self.assertOk(self.api("POST", "/v1/devices/%s/unblock" % dev.id))
        st, _ = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 200)
        c.close()

    def test_rollover_old_and_new_issuing_ca_both_accepted(self):
        dev_old = self.new_device("old-ca")
        crt1, key1 = self.ca("acme")
        cert_old = dev_old.issue(crt1, key1, self.d.tenant_ids["acme"])
        self.d.ctl_local("pki", "rotate", "acme")
        crt2, key2 = self.ca("acme", 2)
        self.assertTrue(os.path.exists(crt2), "pki rotate made no ca-2")
        dev_new = self.new_device("new-ca")
        cert_new = dev_new.issue(crt2, key2, self.d.tenant_ids["acme"])
        # The daemon caches a tenant's trust store, but a chain that fails against it is checked against the
        # database's CAs again: the new CA works at once.
        c = self.conn(cert_new, dev_new.key)
        st, body = self.get(c, "/v1/device/whoami")
        c.close()
        self.assertEqual(st, 200, body)
        c = self.conn(cert_old, dev_old.key)
        st, body = self.get(c, "/v1/device/whoami")
        self.assertEqual(st, 200, body)
        st, bundle = self.get(c, "/v1/device/trust-bundle")
        self.assertEqual(st, 200)
        # The tenant's device root first, then the new and the old issuing CA, both under that root.
        self.assertEqual(bundle.count("BEGIN CERTIFICATE"), 3, "bundle must hold the root, old and new CA")
        c.close()
        blocks = test_attest.pem_blocks(bundle)
        root = os.path.join(dev_new.dir, "tenant-root.pem")
        with open(root, "w") as f:
            f.write(blocks[0])
        with open(os.path.join(self.d.pki_dir, "tenants", str(self.d.tenant_ids["acme"]), "root.crt")) as f:
            self.assertEqual(blocks[0].strip(), f.read().strip())
        for crt in (crt1, crt2):
            p = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", root, crt], capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class RolloverAttestTest(test_attest.AttestBase):
    """A CA rotated while the daemon runs: the certificate attestation issues from the new CA right away must be
    accepted on mutual TLS at once, even though the daemon's trust cache of the tenant was filled just before."""

    def attest_cert(self, dev):
        csr = dev.csr()
        st, _, body = self.attest(dev, csr=csr)
        self.assertEqual(st, 200, body)
        leaf = os.path.join(dev.dir, "leaf.pem")
        with open(leaf, "w") as f:
            f.write(test_attest.pem_blocks(body["chain"])[0])
        return leaf, csr[2], body["chain"]

    def whoami(self, cert, key):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.load_cert_chain(cert, key)
        c = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)
        try:
            c.request("GET", "/v1/device/whoami")
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def test_certificate_from_just_rotated_ca_is_accepted_at_once(self):
        old = self.new_device()
        old_leaf, old_key, old_chain = self.attest_cert(old)
        st, body = self.whoami(old_leaf, old_key)  # fills the daemon's trust cache of acme
        self.assertEqual(st, 200, body)
        self.d.ctl_local("pki", "rotate", "acme")
        dev = self.new_device()
        leaf, key, chain = self.attest_cert(dev)
        self.assertNotEqual(test_attest.pem_blocks(chain)[1], test_attest.pem_blocks(old_chain)[1],
                            "attestation did not issue from the new CA")
        st, body = self.whoami(leaf, key)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["device_id"], dev.id)


if __name__ == "__main__":
    unittest.main()
