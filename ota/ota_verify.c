/* ota_verify: verification of TUF metadata against a trusted root (see ota_verify.h). */
#include "ota_verify.h"

#include "errbuf.h"
#include "proto_fields.h"
#include "util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct role_keys {
    ota_key *keys; /* public keys of the role's key ids, in root order */
    size_t n;
    int64_t threshold;
};

struct ota_root {
    int64_t version, expires;
    struct role_keys roles[OTA_ROLE_COUNT];
};

/* The parsed common fields of a "signed" object. */
struct common {
    int64_t version, expires;
};

const char *
ota_verify_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case OTA_E_FORMAT:
        return "format";
    case OTA_E_TYPE:
        return "type";
    case OTA_E_SPEC:
        return "spec_version";
    case OTA_E_SIGNATURES:
        return "signatures";
    case OTA_E_VERSION:
        return "version";
    case OTA_E_EXPIRED:
        return "expired";
    case OTA_E_NOMEM:
        return "out of memory";
    }
    return "unknown";
}

void
ota_root_free(ota_root *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < OTA_ROLE_COUNT; i++)
        free(r->roles[i].keys);
    free(r);
}

int64_t
ota_root_version(const ota_root *r)
{
    return r->version;
}

int64_t
ota_root_expires(const ota_root *r)
{
    return r->expires;
}

int64_t
ota_root_threshold(const ota_root *r, ota_role role)
{
    assert(role >= 0 && role < OTA_ROLE_COUNT);
    return r->roles[role].threshold;
}

size_t
ota_root_nkeys(const ota_root *r, ota_role role)
{
    assert(role >= 0 && role < OTA_ROLE_COUNT);
    return r->roles[role].n;
}

const ota_key *
ota_root_key(const ota_root *r, ota_role role, size_t i)
{
    assert(role >= 0 && role < OTA_ROLE_COUNT && i < r->roles[role].n);
    return &r->roles[role].keys[i];
}

/* {"signed": object, "signatures": [{"keyid": string, "sig": string}, ...]}. */
static int
check_envelope(const json_t *env, char *err, size_t errlen)
{
    const json_t *sigs = json_object_get(env, "signatures");
    if (!json_is_object(json_object_get(env, "signed")) || !json_is_array(sigs)) {
        errbuf_set(err, errlen,
                   "metadata: a \"signed\" object and a \"signatures\" array are "
                   "required");
        return OTA_E_FORMAT;
    }
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);
        if (!json_is_string(json_object_get(s, "keyid")) ||
            !json_is_string(json_object_get(s, "sig"))) {
            errbuf_set(err, errlen, "metadata: signature %zu lacks a keyid or sig string", i);
            return OTA_E_FORMAT;
        }
    }
    return 0;
}

/* "1.x" or "1.x.y", all parts decimal digits: the major version TUF 1.0 clients accept. */
static int
spec_version_ok(const char *v)
{
    int parts = 0;
    const char *p = v;
    if (strncmp(v, "1.", 2) != 0)
        return 0;
    while (*p != '\0') {
        size_t n = strspn(p, "0123456789");
        if (n == 0)
            return 0;
        parts++;
        p += n;
        if (*p == '.' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            return 0;
    }
    return parts == 2 || parts == 3;
}

static int
check_common(const json_t *s, ota_role role, struct common *c, char *err, size_t errlen)
{
    const char *name = ota_role_name(role);
    const char *type = json_string_value(json_object_get(s, "_type"));
    const char *spec = json_string_value(json_object_get(s, "spec_version"));
    const char *expires = json_string_value(json_object_get(s, "expires"));
    const json_t *version = json_object_get(s, "version");
    if (type == NULL || spec == NULL || expires == NULL || !json_is_integer(version)) {
        errbuf_set(err, errlen,
                   "%s: _type, spec_version, expires strings and an integer version "
                   "are required",
                   name);
        return OTA_E_FORMAT;
    }
    if (strcmp(type, name) != 0) {
        errbuf_set(err, errlen, "%s: _type is \"%.32s\", not \"%s\"", name, type, name);
        return OTA_E_TYPE;
    }
    if (!spec_version_ok(spec)) {
        errbuf_set(err, errlen, "%s: spec_version \"%.32s\" is not a TUF 1.x version", name, spec);
        return OTA_E_SPEC;
    }
    c->version = json_integer_value(version);
    if (c->version < 1) {
        errbuf_set(err, errlen, "%s: version %" PRId64 " is below 1", name, c->version);
        return OTA_E_FORMAT;
    }
    if (util_parse_rfc3339(expires, &c->expires) < 0) {
        errbuf_set(err, errlen, "%s: expires \"%.40s\" is not YYYY-MM-DDTHH:MM:SSZ", name, expires);
        return OTA_E_FORMAT;
    }
    return 0;
}

/* A snapshot/timestamp "meta" entry: version >= 1, optional length >= 0 and hashes. */
static int
check_metafile(const json_t *m, const char *name, char *err, size_t errlen)
{
    const json_t *v = json_object_get(m, "version");
    const json_t *len = json_object_get(m, "length");
    const json_t *h = json_object_get(m, "hashes");
    if (!json_is_object(m) || !json_is_integer(v) || json_integer_value(v) < 1 ||
        (len != NULL && (!json_is_integer(len) || json_integer_value(len) < 0)) ||
        (h != NULL && (!json_is_object(h) || json_object_size(h) == 0))) {
        errbuf_set(err, errlen, "meta %s: a version >= 1 (and optional length, hashes) required",
                   name);
        return OTA_E_FORMAT;
    }
    return 0;
}

static int
check_target(const char *path, const json_t *t, char *err, size_t errlen)
{
    const json_t *len = json_object_get(t, "length");
    const json_t *custom = json_object_get(t, "custom");
    const char *sha = json_string_value(json_object_get(json_object_get(t, "hashes"), "sha256"));
    if (!json_is_object(t) || !json_is_integer(len) || json_integer_value(len) < 0 ||
        !ota_is_sha256_hex(sha) || (custom != NULL && !json_is_object(custom))) {
        errbuf_set(err, errlen,
                   "targets: target %.64s needs a length >= 0, a hex hashes.sha256 "
                   "and custom, if any, an object",
                   path);
        return OTA_E_FORMAT;
    }
    return 0;
}

/* The role-specific members of a targets, snapshot or timestamp "signed" (roots are parsed). */
static int
check_shape(const json_t *s, ota_role role, char *err, size_t errlen)
{
    const json_t *meta = json_object_get(s, "meta");
    const json_t *targets = json_object_get(s, "targets");
    const char *path;
    json_t *t;
    switch (role) {
    case OTA_ROLE_TARGETS:
        if (!json_is_object(targets)) {
            errbuf_set(err, errlen, "targets: a \"targets\" object is required");
            return OTA_E_FORMAT;
        }
        json_object_foreach((json_t *)targets, path, t)
        {
            if (check_target(path, t, err, errlen) < 0)
                return OTA_E_FORMAT;
        }
        return 0;
    case OTA_ROLE_SNAPSHOT:
        return check_metafile(json_object_get(meta, "targets.json"), "targets.json", err, errlen);
    case OTA_ROLE_TIMESTAMP:
        if (json_object_size(meta) != 1) {
            errbuf_set(err, errlen, "timestamp: meta must name snapshot.json only");
            return OTA_E_FORMAT;
        }
        return check_metafile(json_object_get(meta, "snapshot.json"), "snapshot.json", err, errlen);
    case OTA_ROLE_ROOT:
    case OTA_ROLE_COUNT:
        break;
    }
    assert(!"check_shape: roots are parsed by parse_root");
    return OTA_E_FORMAT;
}

/* The keys of one role of a root: distinct key ids, each in "keys" with an id that is the hash of
 * its object, and a threshold >= 1. */
static int
parse_role(const json_t *keys, const json_t *role_obj, ota_role role, struct role_keys *rk,
           char *err, size_t errlen)
{
    const char *name = ota_role_name(role);
    const json_t *ids = json_object_get(role_obj, "keyids");
    const json_t *th = json_object_get(role_obj, "threshold");
    char msg[160];
    if (!json_is_array(ids) || !json_is_integer(th) || json_integer_value(th) < 1) {
        errbuf_set(err, errlen, "root: role %s needs a keyids array and a threshold >= 1", name);
        return OTA_E_FORMAT;
    }
    rk->threshold = json_integer_value(th);
    rk->n = json_array_size(ids);
    rk->keys = calloc(rk->n ? rk->n : 1, sizeof(*rk->keys));
    if (rk->keys == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return OTA_E_NOMEM;
    }
    for (size_t i = 0; i < rk->n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        const json_t *k = id != NULL ? json_object_get(keys, id) : NULL;
        if (k == NULL) {
            errbuf_set(err, errlen, "root: role %s names key id %.16s... that is not in keys", name,
                       id ? id : "(not a string)");
            return OTA_E_FORMAT;
        }
        if (ota_key_from_public_json(k, &rk->keys[i], msg, sizeof(msg)) < 0) {
            errbuf_set(err, errlen, "root: key %.16s...: %s", id, msg);
            return OTA_E_FORMAT;
        }
        if (strcmp(rk->keys[i].keyid, id) != 0) {
            errbuf_set(err, errlen, "root: key id %.16s... is not the SHA-256 of its key", id);
            return OTA_E_FORMAT;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rk->keys[j].keyid, id) == 0) {
                errbuf_set(err, errlen, "root: role %s lists key id %.16s... twice", name, id);
                return OTA_E_FORMAT;
            }
        }
    }
    return 0;
}

/* Parses a root's "signed" (no signatures checked). */
static int
parse_root(const json_t *s, ota_root **out, char *err, size_t errlen)
{
    struct common c;
    const json_t *keys = json_object_get(s, "keys");
    const json_t *roles = json_object_get(s, "roles");
    const json_t *cs = json_object_get(s, "consistent_snapshot");
    ota_root *r = NULL;
    int rc = check_common(s, OTA_ROLE_ROOT, &c, err, errlen);
    *out = NULL;
    if (rc < 0)
        return rc;
    if (!json_is_object(keys) || !json_is_object(roles) || (cs != NULL && !json_is_boolean(cs))) {
        errbuf_set(err, errlen, "root: keys and roles objects are required");
        return OTA_E_FORMAT;
    }
    if (json_object_size(keys) > OTA_MAX_ROOT_KEYS) {
        errbuf_set(err, errlen, "root: %zu keys, at most %d", json_object_size(keys),
                   OTA_MAX_ROOT_KEYS);
        return OTA_E_FORMAT;
    }
    if (json_object_size(roles) != OTA_ROLE_COUNT) {
        errbuf_set(err, errlen, "root: roles must be exactly root, targets, snapshot, timestamp");
        return OTA_E_FORMAT;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        errbuf_set(err, errlen, "out of memory");
        return OTA_E_NOMEM;
    }
    r->version = c.version;
    r->expires = c.expires;
    for (int i = 0; i < OTA_ROLE_COUNT; i++) {
        const json_t *ro = json_object_get(roles, ota_role_name((ota_role)i));
        if (ro == NULL) {
            errbuf_set(err, errlen, "root: role %s is missing", ota_role_name((ota_role)i));
            rc = OTA_E_FORMAT;
            goto out;
        }
        rc = parse_role(keys, ro, (ota_role)i, &r->roles[i], err, errlen);
        if (rc < 0)
            goto out;
    }
    *out = r;
    r = NULL;
out:
    ota_root_free(r);
    return rc;
}

/* Counts the valid signatures of distinct keys of rk over bytes; the other counters say why the
 * rest did not count. */
struct sig_count {
    int valid, unknown, duplicate, invalid;
};

static int
count_signatures(const struct role_keys *rk, const json_t *sigs, const unsigned char *bytes,
                 size_t len, struct sig_count *c)
{
    unsigned char *used = calloc(rk->n ? rk->n : 1, 1);
    if (used == NULL)
        return OTA_E_NOMEM;
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);
        const char *id = json_string_value(json_object_get(s, "keyid"));
        const char *sig = json_string_value(json_object_get(s, "sig"));
        size_t k;
        for (k = 0; k < rk->n && strcmp(rk->keys[k].keyid, id) != 0; k++)
            ;
        if (k == rk->n) {
            c->unknown++;
            continue;
        }
        /* the same key under two ids (objects differing in extra members) still counts once */
        int dup = used[k];
        for (size_t j = 0; j < rk->n && !dup; j++)
            dup = used[j] && memcmp(rk->keys[j].pk, rk->keys[k].pk, OTA_PK_BYTES) == 0;
        if (dup) {
            c->duplicate++;
            continue;
        }
        if (ota_key_verify(&rk->keys[k], bytes, len, sig, NULL, 0) < 0) {
            c->invalid++;
            continue;
        }
        used[k] = 1;
        c->valid++;
    }
    free(used);
    return 0;
}

/* The threshold check of rk over env (already checked by check_envelope), which may carry at most
 * max_sigs signatures. who names the keys in the message ("root", "the trusted root's root",
 * ...). */
static int
check_threshold(const struct role_keys *rk, const json_t *env, size_t max_sigs, const char *who,
                int *valid, char *err, size_t errlen)
{
    char *bytes = NULL;
    size_t len = 0;
    struct sig_count c = {0};
    const json_t *sigs = json_object_get(env, "signatures");
    int rc;
    if (json_array_size(sigs) > max_sigs) {
        errbuf_set(err, errlen, "%s: %zu signatures, at most %zu for its keys", who,
                   json_array_size(sigs), max_sigs);
        return OTA_E_FORMAT;
    }
    if (ota_meta_signed_bytes(env, &bytes, &len, err, errlen) < 0)
        return OTA_E_FORMAT;
    rc = count_signatures(rk, sigs, (const unsigned char *)bytes, len, &c);
    free(bytes);
    if (rc < 0) {
        errbuf_set(err, errlen, "out of memory");
        return rc;
    }
    if (valid != NULL)
        *valid = c.valid;
    if (c.valid < rk->threshold) {
        errbuf_set(err, errlen,
                   "%s: %d valid signature(s) of distinct keys, threshold %" PRId64
                   " (%zu signature(s): %d by unknown key ids, %d duplicate, %d invalid)",
                   who, c.valid, rk->threshold, json_array_size(sigs), c.unknown, c.duplicate,
                   c.invalid);
        return OTA_E_SIGNATURES;
    }
    return 0;
}

int
ota_verify_signatures(const ota_root *r, ota_role role, const json_t *env, int *valid, char *err,
                      size_t errlen)
{
    assert(role >= 0 && role < OTA_ROLE_COUNT);
    int rc = check_envelope(env, err, errlen);
    if (rc < 0)
        return rc;
    return check_threshold(&r->roles[role], env, OTA_MAX_SIGS(r->roles[role].n),
                           ota_role_name(role), valid, err, errlen);
}

int
ota_root_load(const json_t *env, ota_root **out, char *err, size_t errlen)
{
    ota_root *r = NULL;
    int rc = check_envelope(env, err, errlen);
    *out = NULL;
    if (rc < 0)
        return rc;
    rc = parse_root(json_object_get(env, "signed"), &r, err, errlen);
    if (rc < 0)
        return rc;
    rc = check_threshold(&r->roles[OTA_ROLE_ROOT], env, OTA_MAX_SIGS(r->roles[OTA_ROLE_ROOT].n),
                         "root (self-signed)", NULL, err, errlen);
    if (rc < 0) {
        ota_root_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int
ota_verify_root_update(const ota_root *trusted, const json_t *env, ota_root **next, char *err,
                       size_t errlen)
{
    ota_root *r = NULL;
    int rc = check_envelope(env, err, errlen);
    *next = NULL;
    if (rc < 0)
        return rc;
    rc = parse_root(json_object_get(env, "signed"), &r, err, errlen);
    if (rc < 0)
        return rc;
    /* a rotation carries the signatures of both key sets */
    size_t max = OTA_MAX_SIGS(trusted->roles[OTA_ROLE_ROOT].n + r->roles[OTA_ROLE_ROOT].n);
    rc = check_threshold(&trusted->roles[OTA_ROLE_ROOT], env, max,
                         "new root by the trusted root's keys", NULL, err, errlen);
    if (rc < 0)
        goto out;
    rc = check_threshold(&r->roles[OTA_ROLE_ROOT], env, max, "new root by its own keys", NULL, err,
                         errlen);
    if (rc < 0)
        goto out;
    if (r->version != trusted->version + 1) {
        errbuf_set(err, errlen,
                   "root: version %" PRId64 " after trusted version %" PRId64 " (must be %" PRId64
                   ")",
                   r->version, trusted->version, trusted->version + 1);
        rc = OTA_E_VERSION;
        goto out;
    }
    *next = r;
    r = NULL;
out:
    ota_root_free(r);
    return rc;
}

int
ota_verify_meta(const ota_root *r, const json_t *env, const struct ota_want *w, int64_t *version,
                char *err, size_t errlen)
{
    const char *name = ota_role_name(w->role);
    const json_t *s = json_object_get(env, "signed");
    struct common c;
    ota_root *parsed = NULL;
    int rc = check_envelope(env, err, errlen);
    if (rc < 0)
        return rc;
    rc = check_common(s, w->role, &c, err, errlen);
    if (rc < 0)
        return rc;
    if (version != NULL)
        *version = c.version;
    /* a root's shape is its parse; the parsed copy is not needed after */
    rc = w->role == OTA_ROLE_ROOT ? parse_root(s, &parsed, err, errlen)
                                  : check_shape(s, w->role, err, errlen);
    ota_root_free(parsed);
    if (rc < 0)
        return rc;
    rc = check_threshold(&r->roles[w->role], env, OTA_MAX_SIGS(r->roles[w->role].n), name, NULL,
                         err, errlen);
    if (rc < 0)
        return rc;
    if ((w->version > 0 && c.version != w->version) ||
        (w->min_version > 0 && c.version < w->min_version)) {
        errbuf_set(err, errlen, "%s: version %" PRId64 " where %s %" PRId64 " is required", name,
                   c.version, w->version > 0 ? "exactly" : "at least",
                   w->version > 0 ? w->version : w->min_version);
        return OTA_E_VERSION;
    }
    if (w->now >= 0 && c.expires <= w->now) {
        char when[32];
        errbuf_set(err, errlen, "%s: expired at %s", name,
                   util_rfc3339(c.expires, when, sizeof(when)));
        return OTA_E_EXPIRED;
    }
    return 0;
}

/* 1 when obj has no member other than the n names. */
static int
only_members(const json_t *obj, const char *const *names, size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i = 0;
        while (i < n && strcmp(k, names[i]) != 0)
            i++;
        if (i == n)
            return 0;
    }
    return 1;
}

/* 1 when v is a JSON string of the component rule (component, hardware). */
static int
component_ok(const json_t *v)
{
    return json_is_string(v) && proto_component_ok(json_string_value(v), json_string_length(v));
}

/* The rule of the image fields that custom c breaks (docs/update.md 2.1, the service's rules for
 * an upload), or NULL when it keeps them all. */
static const char *
custom_rule_broken(const json_t *c)
{
    const json_t *kind = json_object_get(c, "kind");
    const json_t *version = json_object_get(c, "version");
    const json_t *svn = json_object_get(c, "svn");
    const json_t *product = json_object_get(c, "product_id");
    if (!component_ok(json_object_get(c, "component")))
        return "component: 1-64 of [a-z0-9._-]";
    if (!component_ok(json_object_get(c, "hardware")))
        return "hardware: 1-64 of [a-z0-9._-]";
    if (!json_is_string(kind) ||
        (strcmp(json_string_value(kind), "os") != 0 && strcmp(json_string_value(kind), "app") != 0))
        return "kind: \"os\" or \"app\"";
    if (!json_is_string(version) ||
        !proto_version_ok(json_string_value(version), json_string_length(version)))
        return "version: 1-32 printable ASCII characters (0x21-0x7e)";
    if (!json_is_integer(svn) || json_integer_value(svn) < 0 ||
        json_integer_value(svn) > PROTO_SVN_MAX)
        return "svn: an integer 0..4294967295";
    if (!json_is_integer(product) || json_integer_value(product) < 1)
        return "product_id: an integer >= 1";
    return NULL;
}

/* One target of the image repository (ota_check_image_targets). */
static int
check_image_target(const char *path, const json_t *t, char *err, size_t errlen)
{
    static const char *const TARGET[] = {"length", "hashes", "custom"};
    static const char *const CUSTOM[] = {"component", "kind",     "version",
                                         "svn",       "hardware", "product_id"};
    const json_t *hashes = json_object_get(t, "hashes");
    const json_t *c = json_object_get(t, "custom");
    const char *sha = json_string_value(json_object_get(hashes, "sha256"));
    const char *comp = json_string_value(json_object_get(c, "component"));
    const char *slash = strrchr(path, '/');
    int ok = check_target(path, t, err, errlen) == 0 && only_members(t, TARGET, 3) &&
             json_object_size(hashes) == 1 && json_is_object(c) && only_members(c, CUSTOM, 6) &&
             json_object_size(c) == 6 && comp != NULL && slash != NULL &&
             strlen(comp) == (size_t)(slash - path) && strncmp(path, comp, strlen(comp)) == 0 &&
             strcmp(slash + 1, sha) == 0;
    if (!ok) {
        errbuf_set(err, errlen,
                   "targets: target %.160s is not \"<component>/<sha256>\" with length, "
                   "hashes.sha256 (only) and custom component, kind, version, svn, hardware, "
                   "product_id (only)",
                   path);
        return OTA_E_FORMAT;
    }
    const char *broken = custom_rule_broken(c);
    if (broken != NULL) {
        errbuf_set(err, errlen, "targets: target %.160s: custom %s", path, broken);
        return OTA_E_FORMAT;
    }
    return 0;
}

int
ota_check_image_targets(const json_t *s, char *err, size_t errlen)
{
    static const char *const SIGNED[] = {"_type", "spec_version", "version", "expires", "targets"};
    const json_t *targets = json_object_get(s, "targets");
    const char *path;
    json_t *t;
    if (!json_is_object(s) || !only_members(s, SIGNED, 5) || !json_is_object(targets)) {
        errbuf_set(err, errlen,
                   "targets: \"signed\" may only have _type, spec_version, version, expires and "
                   "targets (no delegations)");
        return OTA_E_FORMAT;
    }
    json_object_foreach((json_t *)targets, path, t)
    {
        if (check_image_target(path, t, err, errlen) != 0)
            return OTA_E_FORMAT;
    }
    return 0;
}
