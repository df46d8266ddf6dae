"""The TLS server key outside aegisd (issue 13): every handshake signature comes from the signer through a
GnuTLS external key (server/http/http_tlskey.c). TLS 1.2 and 1.3 handshakes against the real daemon, the
certificate it serves, and the start-time checks of the certificate chain against the signer's key."""

import os
import socket
import ssl
import subprocess
import time

import harness
import memscan
import test_lifecycle

HOST = b"Host: 127.0.0.1\r\n"


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class TlsHandshakeTest(harness.DaemonTestCase):
    def handshake(self, version):
        ctx = ssl.create_default_context(cafile=self.d.cacert)
        ctx.minimum_version = ctx.maximum_version = version
        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.d.port), timeout=10),
                               server_hostname="127.0.0.1")

    def test_tls12_and_tls13_handshakes(self):
        served = pem_to_der(os.path.join(self.d.pki_dir, "server.crt"))
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                with self.handshake(version) as s:
                    self.assertEqual(s.version(), name)
                    self.assertEqual(s.getpeercert(binary_form=True), served)
                    if name == "TLSv1.2":  # the signed key exchange: ECDHE with the ECDSA server key
                        self.assertIn("ECDHE-ECDSA", s.cipher()[0])
                    s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
                    status, head, _, _ = test_lifecycle.read_response(s, time.monotonic() + 10)
                    self.assertEqual(status, 200, head)

    def test_many_handshakes_in_parallel(self):
        # The one external key serves every thread's handshakes at once.
        import concurrent.futures

        def one(i):
            v = ssl.TLSVersion.TLSv1_2 if i % 2 else ssl.TLSVersion.TLSv1_3
            with self.handshake(v) as s:
                return s.version()

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            got = list(ex.map(one, range(40)))
        self.assertEqual(sorted(set(got)), ["TLSv1.2", "TLSv1.3"])

    def test_memscan_finds_what_is_there(self):
        # memscan.py (used by the key-isolation tests) against what aegisd does hold: the served certificate,
        # which it parsed at start; and 32 random bytes it cannot hold.
        served = pem_to_der(os.path.join(self.d.pki_dir, "server.crt"))
        absent = os.urandom(32)
        r = memscan.scan_process_memory(self.d.proc.pid, [served, absent])
        self.assertGreater(r.scanned, 1 << 20, "the scan read almost nothing: %r" % (r,))
        self.assertIn(served, r.hits)
        self.assertNotIn(absent, r.hits)


class TlsKeyChecksTest(test_lifecycle.IsolatedDaemons):
    """At start, one signature through the external key is checked with the certificate's public key, and the
    chain must be in order: a certificate that does not go with the signer's key fails the start, not every
    handshake after it."""

    def test_certificate_of_another_key_refused(self):
        d = self.new_daemon()
        other_key, other_crt = os.path.join(d.tmp, "other.key"), os.path.join(d.tmp, "other.crt")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", other_key, "-out", other_crt, "-subj", "/CN=127.0.0.1", "-days", "1")
        d.write_config({"tls_cert": other_crt})
        log = self.expect_start_failure(d)
        self.assertIn("does not match", log)

    def test_chain_out_of_order_refused(self):
        d = self.new_daemon()
        chain = os.path.join(d.tmp, "chain.pem")
        with open(chain, "w") as f:  # the issuer before the leaf
            f.write(harness.read_text(d.cacert) + harness.read_text(os.path.join(d.pki_dir, "server.crt")))
        d.write_config({"tls_cert": chain})
        log = self.expect_start_failure(d)
        self.assertIn("TLS certificate chain", log)
