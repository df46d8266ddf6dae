"""Checks live responses against docs/openapi.yaml (issue 14 item 8): for a request's method and path, the
operation's documented response for the status (or its `default`), the media type of the body, and for JSON
bodies the schema (JSON Schema 2020-12, as OpenAPI 3.1 has it, with python3-jsonschema). Requests to paths the
file does not have must answer the `Error` object (404), as must known paths with another method (405)."""

import json
import os
import re

import yaml
from jsonschema import Draft202012Validator

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPENAPI = os.path.join(ROOT, "docs", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Spec:
    def __init__(self, path=OPENAPI):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.ops = {}
        for p, item in self.doc["paths"].items():
            for m, op in item.items():
                if m in HTTP_METHODS:
                    self.ops[(m.upper(), p)] = op
        # Literal paths before templated ones: /v1/devices/import before /v1/devices/{id}.
        self.patterns = sorted(((re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "$"), p)
                                for p in self.doc["paths"]), key=lambda e: (e[1].count("{"), e[1]))
        self.validators = {}

    def route_of(self, path):
        """The path template of the file that path (without its query) belongs to, or None."""
        path = path.split("?", 1)[0]
        for rx, p in self.patterns:
            if rx.match(path):
                return p
        return None

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            node = self.doc
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            # The schema inside a root that holds the components, so "#/components/..." resolves.
            v = Draft202012Validator({"components": self.doc["components"], "allOf": [schema]})
            self.validators[key] = v
        return v

    def error_schema(self):
        return {"$ref": "#/components/schemas/Error"}

    def check(self, method, path, status, headers, body):
        """Problems (a list of strings) with one response; empty when it is as documented."""
        where = "%s %s -> %d" % (method, path, status)
        route = self.route_of(path)
        op = self.ops.get((method, route)) if route else None
        if op is None:
            # The file's general rules: unknown path 404, known path with another method 405, both Error.
            if status not in (404, 405) or (status == 405) != (route is not None):
                return ["%s: %s" % (where, "no such operation in openapi.yaml")]
            return self.check_body(where, "application/json", self.error_schema(), headers, body)
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        if resp is None:
            return ["%s: status %d is not documented for %s %s" % (where, status, method, route)]
        content = self.deref(resp).get("content")
        if method == "HEAD" or status in (204, 304):
            return ["%s: a body on a response without one" % where] if body else []
        if not content:
            return ["%s: a body where openapi.yaml documents none: %r" % (where, body[:200])] if body else []
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in content:
            return ["%s: Content-Type %r, documented: %s" % (where, ctype, ", ".join(sorted(content)))]
        return self.check_body(where, ctype, content[ctype].get("schema"), headers, body)

    def check_body(self, where, ctype, schema, headers, body):
        got = (headers.get("Content-Type") or "").split(";")[0].strip()
        if got != ctype:
            return ["%s: Content-Type %r, expected %r" % (where, got, ctype)]
        if ctype != "application/json" or schema is None:
            return []
        try:
            value = json.loads(body)
        except ValueError:
            return ["%s: body is not JSON: %r" % (where, body[:200])]
        errs = sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
        return ["%s: %s at /%s" % (where, e.message[:300], "/".join(map(str, e.absolute_path))) for e in errs[:5]]
