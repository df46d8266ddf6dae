"""Every route of server/routes.c answers as docs/openapi.yaml documents it (issue 14 item 8): one daemon, each
route called at least once (successes where a small fixture allows, documented refusals otherwise, and the
general 401/404/405 errors), each response checked by openapi_check (status documented, media type, JSON
schema), and each carrying X-Request-Id. aegisd serves the file itself as GET /openapi.yaml."""

import http.client
import json
import os
import ssl

import openapi_check
import test_mtls
import test_openapi
from harness import DaemonTestCase

HEX64 = "ab" * 32


class LiveResponsesTest(DaemonTestCase):
    tenants = ("acme",)

    @classmethod
    def prepare(cls):
        cls.spec = openapi_check.Spec()
        cls.problems = []
        cls.called = set()

    def call(self, method, path, body=None, token=..., headers=None, content_type=None, cert=None):
        """One request (on a mutual TLS connection with cert = (cert, key) when given), checked against the
        file; returns (status, parsed JSON body or None)."""
        if cert is None:
            status, hdrs, raw = self.client.request(method, path, body, token, headers, content_type)
        else:
            ctx = ssl.create_default_context(cafile=self.d.cacert)
            ctx.load_cert_chain(*cert)
            c = http.client.HTTPSConnection("127.0.0.1", self.d.port, context=ctx, timeout=10)
            try:
                h = {"Content-Type": "application/json"} if body is not None else {}
                c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
                r = c.getresponse()
                status, hdrs, raw = r.status, r.headers, r.read()
            finally:
                c.close()
        route = self.spec.route_of(path)
        self.called.add((route, method.lower()))
        self.problems.extend(self.spec.check(method, path, status, hdrs, raw))
        if not hdrs.get("X-Request-Id"):
            self.problems.append("%s %s -> %d: no X-Request-Id" % (method, path, status))
        ctype = (hdrs.get("Content-Type") or "")
        parsed = json.loads(raw) if raw and ctype.startswith("application/json") else None
        return status, parsed

    def device_cert(self, name, claim=True):
        tmp = os.path.join(self.d.tmp, "devices")
        os.makedirs(tmp, exist_ok=True)
        dev = test_mtls.Device(tmp, name)
        st, body = self.call("POST", "/v1/devices/import", {"devices": [{"public_key": dev.pub}], "claim": claim})
        self.assertEqual(st, 200, body)
        tid = self.d.tenant_ids["acme"]
        base = os.path.join(self.d.pki_dir, "tenants", str(tid), "ca-1")
        return dev, (dev.issue(base + ".crt", base + ".key", tid), dev.key)

    def manufacturer_routes(self):
        c = self.call
        for p in ("/healthz", "/readyz", "/metrics", "/openapi.yaml", "/v1/tenant", "/v1/audit"):
            c("GET", p)
        c("GET", "/nope", token=None)
        c("DELETE", "/healthz", token=None)
        c("GET", "/v1/tenant", token=None)
        st, tok = c("POST", "/v1/tokens", {"name": "live", "role": "reader"})
        c("GET", "/v1/tokens")
        c("DELETE", "/v1/tokens/%d" % tok["id"])
        st, prod = c("POST", "/v1/products", {"name": "Live product"})
        pid = prod["id"]
        c("GET", "/v1/products")
        c("GET", "/v1/products/%d" % pid)
        c("PATCH", "/v1/products/%d" % pid, {"description": "d"})
        st, grp = c("POST", "/v1/device-groups", {"name": "Live group", "product_id": pid})
        gid = grp["id"]
        c("GET", "/v1/device-groups")
        c("GET", "/v1/device-groups/%d" % gid)
        c("PATCH", "/v1/device-groups/%d" % gid, {"description": "g"})
        return pid, gid

    def device_admin_routes(self, gid):
        c = self.call
        dev, cert = self.device_cert("live-a")
        other, _ = self.device_cert("live-b", claim=False)
        c("GET", "/v1/devices")
        c("GET", "/v1/devices/" + dev.id)
        c("PATCH", "/v1/devices/" + dev.id, {"group_id": gid})
        c("POST", "/v1/devices/%s/claim" % other.id, {"group_id": gid})
        c("POST", "/v1/devices/%s/transfer" % other.id)
        for action in ("block", "unblock"):
            c("POST", "/v1/devices/%s/%s" % (other.id, action))
        for sub in ("attestations", "reports"):
            c("GET", "/v1/devices/%s/%s" % (dev.id, sub))
        c("GET", "/v1/devices/%s/update-attempts" % dev.id)
        c("GET", "/v1/devices/%s/certificate" % dev.id)
        c("GET", "/v1/devices/%s/certificate" % ("0" * 64))  # 404
        c("GET", "/v1/devices/%s/update-attempts?cursor=x" % dev.id)  # 400
        c("GET", "/v1/devices?id_prefix=" + other.id[:8])
        c("GET", "/v1/devices?id_prefix=xyz")  # 400
        c("POST", "/v1/devices/%s/unclaim" % other.id)
        c("DELETE", "/v1/devices/" + other.id)
        c("DELETE", "/v1/devices/" + other.id)  # 404 now
        return dev, cert

    def policy_routes(self):
        c = self.call
        c("GET", "/v1/reference-values")
        st, rv = c("POST", "/v1/reference-values", {"component": "fw", "version": "1.0", "svn": 1, "digest": HEX64})
        c("DELETE", "/v1/reference-values/%d" % rv["id"])
        c("GET", "/v1/security-minimums")
        c("PUT", "/v1/security-minimums/fw", {"min_svn": 1})
        c("DELETE", "/v1/security-minimums/fw")
        c("GET", "/v1/attestations")
        for p in ("buckets", "buckets/1", "crash-rates", "export", "flags"):
            c("GET", "/v1/failures/" + p)

    def update_routes(self, pid, gid, cert):
        c = self.call
        st, img = c("POST", "/v1/images?product_id=%d&component=os&kind=os&version=1.0&svn=1&hardware=hw" % pid,
                    b"live image bytes", content_type="application/octet-stream")
        sha = img["sha256"] if st == 201 else HEX64
        c("GET", "/v1/images")
        c("GET", "/v1/images/" + sha)
        c("GET", "/v1/ota/keys")
        c("PUT", "/v1/ota/root", {})
        c("GET", "/v1/ota/targets/proposal")
        c("PUT", "/v1/ota/targets", {})
        c("GET", "/v1/ota/status")
        c("GET", "/v1/ota/repo/timestamp.json")
        c("GET", "/v1/ota/director/1.root.json")
        c("POST", "/v1/deployments", {"group_id": gid})
        c("GET", "/v1/deployments")
        c("GET", "/v1/deployments/999")
        for action in ("pause", "resume", "abort", "advance"):
            c("POST", "/v1/deployments/999/" + action)
        for method, p, body in (("GET", "/v1/device/whoami", None), ("GET", "/v1/device/trust-bundle", None),
                                ("POST", "/v1/device/telemetry", {}), ("GET", "/v1/device/tuf/timestamp.json", None),
                                ("GET", "/v1/device/director/1.root.json", None),
                                ("GET", "/v1/device/images/" + sha, None), ("HEAD", "/v1/device/images/" + sha, None),
                                ("GET", "/v1/device/tuf/targets/os/x.bin", None), ("GET", "/v1/device/update", None),
                                ("POST", "/v1/device/update/status", {})):
            c(method, p, body, cert=cert)
        c("GET", "/v1/device/whoami", token=None)  # no certificate: 401
        for p in ("tuf/timestamp.json", "director/1.root.json", "images/" + sha):
            c("GET", "/v1/device/recovery/" + p, token=None)
        c("HEAD", "/v1/device/recovery/images/" + sha, token=None)
        c("DELETE", "/v1/images/" + sha)

    def dashboard_routes(self):
        """The dashboard's files, its sign-in and the figures its overviews draw, through a session."""
        c = self.call
        for p in ("/ui/", "/ui/index.html", "/ui/nope.js", "/ui/vendor/nope.js"):
            c("GET", p, token=None)
        c("POST", "/v1/session", {"token": "nope"}, token=None)
        st, hdrs, raw = self.client.request("POST", "/v1/session", {"token": self.d.token}, token=None)
        self.problems.extend(self.spec.check("POST", "/v1/session", st, hdrs, raw))
        cookie = hdrs["Set-Cookie"].split(";")[0]
        csrf = json.loads(raw)["csrf_token"]
        session = {"Cookie": cookie, "X-CSRF-Token": csrf}
        c("GET", "/v1/session", token=None, headers={"Cookie": cookie})
        c("GET", "/v1/tenant", token=None, headers={"Cookie": cookie})  # no CSRF header: 403
        for p in ("/v1/attestations/stats?granularity=hour", "/v1/devices/stats", "/v1/failures/fleet",
                  "/v1/failures/bucket-series?id=1&id=2", "/v1/failures/bucket-series"):
            c("GET", p, token=None, headers=session)
        c("DELETE", "/v1/session", token=None, headers=session)
        c("GET", "/v1/session", token=None, headers={"Cookie": cookie})  # signed out: 401

    def test_every_route_answers_as_documented(self):
        self.dashboard_routes()
        pid, gid = self.manufacturer_routes()
        dev, cert = self.device_admin_routes(gid)
        self.policy_routes()
        self.update_routes(pid, gid, cert)
        self.call("POST", "/v1/device/attest/challenge", {"device_id": dev.id}, token=None)
        self.call("POST", "/v1/device/attest", {}, token=None)
        other = self.device_cert("live-c", claim=True)[0]
        self.call("POST", "/v1/devices/%s/unclaim" % other.id)
        self.call("DELETE", "/v1/devices/" + other.id)
        self.call("DELETE", "/v1/device-groups/%d" % gid)
        self.call("DELETE", "/v1/products/%d" % pid)
        self.assertEqual(self.problems, [], "responses that differ from docs/openapi.yaml")
        routes, _ = test_openapi.read_routes()
        missed = sorted(set(routes) - self.called)
        self.assertEqual(missed, [], "routes of server/routes.c this test never called")

    def test_served_description_is_the_file(self):
        st, hdrs, raw = self.client.request("GET", "/openapi.yaml", token=None)
        self.assertEqual(st, 200)
        self.assertEqual(hdrs.get("Content-Type"), "application/yaml")
        with open(openapi_check.OPENAPI, "rb") as f:
            self.assertEqual(raw, f.read())
