/* ota_client: the TUF 1.0 client workflow over bytes the caller fetched (ota_client.h). */
#include "ota_client.h"

#include "errbuf.h"
#include "ota_verify.h"
#include "util.h"

#include <assert.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The files a client trusts; their names are the reason codes' prefixes and the members of the
 * saved state. */
enum file { F_ROOT, F_TIMESTAMP, F_SNAPSHOT, F_TARGETS, F_DIRECTOR, F_COUNT };

static const char *const FILE_NAME[F_COUNT] = {"root", "timestamp", "snapshot", "targets",
                                               "director"};
static const size_t FILE_MAX[F_COUNT] = {OTA_CLIENT_ROOT_MAX, OTA_CLIENT_TIMESTAMP_MAX,
                                         OTA_CLIENT_SNAPSHOT_MAX, OTA_CLIENT_TARGETS_MAX,
                                         OTA_CLIENT_DIRECTOR_MAX};
/* Whose keys sign the file: a director answer is targets metadata of the director's root. */
static const ota_role FILE_ROLE[F_COUNT] = {OTA_ROLE_ROOT, OTA_ROLE_TIMESTAMP, OTA_ROLE_SNAPSHOT,
                                            OTA_ROLE_TARGETS, OTA_ROLE_TARGETS};

/* One trusted file: its envelope as verified (NULL: none trusted) and its version. */
struct trusted {
    json_t *env;
    int64_t version;
};

struct ota_client {
    struct trusted t[F_COUNT]; /* t[F_ROOT].env is always set */
    ota_root *root;            /* t[F_ROOT] parsed */
    int root_steps;            /* root updates since new/load or the last roots_done */
    char reason[OTA_REASON_MAX];
};

/* The check part of a reason code. */
static const char *
check_name(int code)
{
    switch (code) {
    case OTA_E_SPEC:
        return "spec"; /* ota_verify_strerror's "spec_version" */
    case OTA_E_NOMEM:
        return "format"; /* the file could not be taken as it is */
    case OTA_CLIENT_E_MISMATCH:
        return "mismatch";
    case OTA_CLIENT_E_DEVICE:
        return "device";
    }
    return ota_verify_strerror(code);
}

/* Records the reason of a failed check of file f; returns code. */
static int
fail(ota_client *c, enum file f, int code)
{
    assert(code < 0);
    snprintf(c->reason, sizeof(c->reason), "%s_%s", FILE_NAME[f], check_name(code));
    return code;
}

static int
too_big(const char *what, size_t len, size_t max, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "%s: %zu bytes, at most %zu", what, len, max);
    return OTA_E_FORMAT;
}

/* bytes as a JSON object into *out (new). */
static int
parse_object(const char *what, const char *bytes, size_t len, json_t **out, char *err,
             size_t errlen)
{
    json_error_t je;
    *out = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        errbuf_set(err, errlen, "%s: not JSON: %s", what, je.text);
        return OTA_E_FORMAT;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        errbuf_set(err, errlen, "%s: not a JSON object", what);
        return OTA_E_FORMAT;
    }
    return 0;
}

static void
trust(struct trusted *t, json_t *env, int64_t version)
{
    json_decref(t->env);
    t->env = env;
    t->version = version;
}

static void
forget(struct trusted *t)
{
    trust(t, NULL, 0);
}

/* The "meta" entry a timestamp (snapshot.json) or a snapshot (targets.json) names, borrowed. */
static const json_t *
named_entry(const json_t *env, enum file f)
{
    assert(f == F_TIMESTAMP || f == F_SNAPSHOT);
    const json_t *meta = json_object_get(json_object_get(env, "signed"), "meta");
    return json_object_get(meta, f == F_TIMESTAMP ? "snapshot.json" : "targets.json");
}

/* The version that entry names (0 when env is NULL: nothing trusted). */
static int64_t
named_version(const json_t *env, enum file f)
{
    return json_integer_value(json_object_get(named_entry(env, f), "version"));
}

/* The length and SHA-256 of bytes against those the referring file's entry m names, when it
 * names them (TUF 5.5.2 and 5.6.2: before the bytes are parsed). */
static int
check_named(enum file f, const json_t *m, const char *bytes, size_t len, char *err, size_t errlen)
{
    const json_t *want_len = json_object_get(m, "length");
    const char *want = json_string_value(json_object_get(json_object_get(m, "hashes"), "sha256"));
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[OTA_SHA256_HEX_LEN];
    if (want_len != NULL && (uint64_t)json_integer_value(want_len) != (uint64_t)len) {
        errbuf_set(err, errlen, "%s: %zu bytes where %" JSON_INTEGER_FORMAT " are named",
                   FILE_NAME[f], len, json_integer_value(want_len));
        return OTA_CLIENT_E_MISMATCH;
    }
    if (want == NULL)
        return 0;
    crypto_hash_sha256(h, (const unsigned char *)bytes, len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    if (strcmp(hex, want) != 0) {
        errbuf_set(err, errlen, "%s: SHA-256 %.16s... where %.16s... is named", FILE_NAME[f], hex,
                   want);
        return OTA_CLIENT_E_MISMATCH;
    }
    return 0;
}

/* The checks of a director answer's signed.custom: device_id 64 lower-case hex and an integer
 * tenant_id, equal to the device's when device_id is not NULL. */
static int
check_director_custom(const json_t *env, const char *device_id, int64_t tenant_id, char *err,
                      size_t errlen)
{
    const json_t *custom = json_object_get(json_object_get(env, "signed"), "custom");
    const char *dev = json_string_value(json_object_get(custom, "device_id"));
    const json_t *tenant = json_object_get(custom, "tenant_id");
    if (!ota_is_sha256_hex(dev) || !json_is_integer(tenant)) {
        errbuf_set(err, errlen,
                   "director: signed.custom needs a device_id (64 lower-case hex) and an integer "
                   "tenant_id");
        return OTA_E_FORMAT;
    }
    if (device_id != NULL &&
        (strcmp(dev, device_id) != 0 || json_integer_value(tenant) != tenant_id)) {
        errbuf_set(err, errlen,
                   "director: the answer is for device %.16s... of tenant %" JSON_INTEGER_FORMAT
                   ", not this one",
                   dev, json_integer_value(tenant));
        return OTA_CLIENT_E_DEVICE;
    }
    return 0;
}

/* What a file must be beyond ota_verify_meta's shape: a timestamp's or snapshot's entry names its
 * hash as SHA-256 if it names any (the one algorithm supported), image targets have the strict
 * shape (docs/update.md 2.1), a director answer names a device. */
static int
check_shape(enum file f, const json_t *env, char *err, size_t errlen)
{
    const json_t *hashes;
    switch (f) {
    case F_TIMESTAMP:
    case F_SNAPSHOT:
        hashes = json_object_get(named_entry(env, f), "hashes");
        if (hashes != NULL &&
            !ota_is_sha256_hex(json_string_value(json_object_get(hashes, "sha256")))) {
            errbuf_set(err, errlen, "%s: the hashes it names lack a hex sha256", FILE_NAME[f]);
            return OTA_E_FORMAT;
        }
        return 0;
    case F_TARGETS:
        return ota_check_image_targets(json_object_get(env, "signed"), err, errlen);
    case F_DIRECTOR:
        return check_director_custom(env, NULL, 0, err, errlen);
    case F_ROOT:
    case F_COUNT:
        break;
    }
    assert(!"check_shape: roots are checked by ota_verify_root_update");
    return OTA_E_FORMAT;
}

/* File f checked against the trusted root in the workflow's order: size, the length and hash the
 * referring entry named (may be NULL), JSON, then ota_verify_meta as w says and check_shape. *out
 * gets the envelope (new), also on failure (NULL if it did not parse). */
static int
verify_file(const ota_client *c, enum file f, const char *bytes, size_t len, const json_t *named,
            const struct ota_want *w, json_t **out, int64_t *version, char *err, size_t errlen)
{
    int rc;
    *out = NULL;
    if (len > FILE_MAX[f])
        return too_big(FILE_NAME[f], len, FILE_MAX[f], err, errlen);
    rc = check_named(f, named, bytes, len, err, errlen);
    if (rc == 0)
        rc = parse_object(FILE_NAME[f], bytes, len, out, err, errlen);
    if (rc == 0)
        rc = ota_verify_meta(c->root, *out, w, version, err, errlen);
    if (rc == 0)
        rc = check_shape(f, *out, err, errlen);
    return rc;
}

/* The rollback check of the version a timestamp or snapshot names (TUF 5.4.3.2, 5.5.5). */
static int
check_named_floor(enum file f, const json_t *env, int64_t floor, char *err, size_t errlen)
{
    int64_t v = named_version(env, f);
    if (v < floor) {
        errbuf_set(err, errlen, "%s: names %s version %" PRId64 ", below the trusted %" PRId64,
                   FILE_NAME[f], f == F_TIMESTAMP ? "snapshot" : "targets", v, floor);
        return OTA_E_VERSION;
    }
    return 0;
}

/* The end of a step: env becomes the trusted f, or the failure is recorded and nothing changes. */
static int
finish(ota_client *c, enum file f, json_t *env, int64_t version, int rc)
{
    if (rc < 0) {
        json_decref(env);
        return fail(c, f, rc);
    }
    trust(&c->t[f], env, version);
    return 0;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* A client around a trusted root envelope (taken, also on failure) signed by its own keys. */
static ota_client *
client_of_root(json_t *env, char *err, size_t errlen)
{
    ota_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        errbuf_set(err, errlen, "out of memory");
        json_decref(env);
        return NULL;
    }
    c->t[F_ROOT].env = env;
    if (ota_root_load(env, &c->root, err, errlen) < 0) {
        ota_client_free(c);
        return NULL;
    }
    c->t[F_ROOT].version = ota_root_version(c->root);
    return c;
}

ota_client *
ota_client_new(const char *root, size_t len, char *err, size_t errlen)
{
    json_t *env = NULL;
    if (len > OTA_CLIENT_ROOT_MAX) {
        too_big("root", len, OTA_CLIENT_ROOT_MAX, err, errlen);
        return NULL;
    }
    if (parse_object("root", root, len, &env, err, errlen) < 0)
        return NULL;
    return client_of_root(env, err, errlen);
}

/* One saved file of state doc re-verified against c's root (signatures and shape; versions and
 * expiry were checked when it was accepted) and trusted. */
static int
load_file(ota_client *c, const json_t *doc, enum file f, char *err, size_t errlen)
{
    json_t *env = json_object_get(doc, FILE_NAME[f]);
    struct ota_want w = {FILE_ROLE[f], -1, 0, 0};
    int64_t v = 0;
    if (env == NULL)
        return 0;
    if (ota_verify_meta(c->root, env, &w, &v, err, errlen) < 0 ||
        check_shape(f, env, err, errlen) < 0)
        return -1;
    trust(&c->t[f], json_incref(env), v);
    return 0;
}

ota_client *
ota_client_load(const char *state, size_t len, char *err, size_t errlen)
{
    json_t *doc = NULL;
    ota_client *c = NULL;
    const char *k;
    json_t *v;
    char msg[384];
    if (len > OTA_CLIENT_STATE_MAX) {
        too_big("state", len, OTA_CLIENT_STATE_MAX, err, errlen);
        return NULL;
    }
    if (parse_object("state", state, len, &doc, err, errlen) < 0)
        return NULL;
    json_object_foreach(doc, k, v)
    {
        int f = 0;
        while (f < F_COUNT && strcmp(k, FILE_NAME[f]) != 0)
            f++;
        if (f == F_COUNT) {
            errbuf_set(err, errlen, "state: unknown member \"%.32s\"", k);
            goto out;
        }
    }
    if (!json_is_object(json_object_get(doc, "root"))) {
        errbuf_set(err, errlen, "state: no trusted root");
        goto out;
    }
    c = client_of_root(json_incref(json_object_get(doc, "root")), msg, sizeof(msg));
    if (c == NULL) {
        errbuf_set(err, errlen, "state: %s", msg);
        goto out;
    }
    for (int f = F_TIMESTAMP; f < F_COUNT; f++) {
        if (load_file(c, doc, (enum file)f, msg, sizeof(msg)) < 0) {
            errbuf_set(err, errlen, "state: the saved %s: %s", FILE_NAME[f], msg);
            ota_client_free(c);
            c = NULL;
            goto out;
        }
    }
out:
    json_decref(doc);
    return c;
}

int
ota_client_save(const ota_client *c, char **out, size_t *len)
{
    json_t *doc = json_object();
    int rc = -1;
    *out = NULL;
    *len = 0;
    if (doc == NULL)
        return -1;
    for (int f = 0; f < F_COUNT; f++) {
        if (c->t[f].env != NULL && json_object_set(doc, FILE_NAME[f], c->t[f].env) < 0)
            goto out;
    }
    /* sorted keys: the same state saves to the same bytes */
    rc = ota_meta_dump(doc, out, len, NULL, 0);
out:
    json_decref(doc);
    return rc;
}

void
ota_client_free(ota_client *c)
{
    if (c == NULL)
        return;
    for (int f = 0; f < F_COUNT; f++)
        forget(&c->t[f]);
    ota_root_free(c->root);
    free(c);
}

const char *
ota_client_reason(const ota_client *c)
{
    return c->reason;
}

/* --- root chain ---------------------------------------------------------------------------- */

int
ota_client_root_name(ota_client *c, char *name, size_t cap)
{
    if (c->root_steps >= OTA_CLIENT_MAX_ROOT_STEPS)
        return -1;
    int n = snprintf(name, cap, "%" PRId64 ".root.json", c->t[F_ROOT].version + 1);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* 1 when role has other keys (key ids, as a set) or another threshold in b than in a. */
static int
role_changed(const ota_root *a, const ota_root *b, ota_role role)
{
    size_t n = ota_root_nkeys(a, role);
    if (n != ota_root_nkeys(b, role) || ota_root_threshold(a, role) != ota_root_threshold(b, role))
        return 1;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < n &&
               strcmp(ota_root_key(a, role, i)->keyid, ota_root_key(b, role, j)->keyid) != 0)
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

int
ota_client_root(ota_client *c, const char *bytes, size_t len, char *err, size_t errlen)
{
    json_t *env = NULL;
    ota_root *next = NULL;
    int rc;
    c->reason[0] = '\0';
    if (c->root_steps >= OTA_CLIENT_MAX_ROOT_STEPS) {
        errbuf_set(err, errlen, "root: more than %d root updates in one check",
                   OTA_CLIENT_MAX_ROOT_STEPS);
        return fail(c, F_ROOT, OTA_E_VERSION);
    }
    rc = len > OTA_CLIENT_ROOT_MAX ? too_big("root", len, OTA_CLIENT_ROOT_MAX, err, errlen)
                                   : parse_object("root", bytes, len, &env, err, errlen);
    if (rc == 0)
        rc = ota_verify_root_update(c->root, env, &next, err, errlen);
    if (rc < 0) {
        json_decref(env);
        return fail(c, F_ROOT, rc);
    }
    /* TUF 5.3.11: new keys of a role end the trust in what the old ones signed (recovery from a
     * fast-forward attack with a compromised key) */
    if (role_changed(c->root, next, OTA_ROLE_TIMESTAMP) ||
        role_changed(c->root, next, OTA_ROLE_SNAPSHOT)) {
        forget(&c->t[F_TIMESTAMP]);
        forget(&c->t[F_SNAPSHOT]);
    }
    if (role_changed(c->root, next, OTA_ROLE_TARGETS)) {
        forget(&c->t[F_TARGETS]);
        forget(&c->t[F_DIRECTOR]);
    }
    c->root_steps++;
    trust(&c->t[F_ROOT], env, ota_root_version(next));
    ota_root_free(c->root);
    c->root = next;
    return 0;
}

int
ota_client_roots_done(ota_client *c, int64_t now, char *err, size_t errlen)
{
    c->reason[0] = '\0';
    c->root_steps = 0;
    if (ota_root_expires(c->root) <= now) {
        char when[32];
        errbuf_set(err, errlen, "root: version %" PRId64 " expired at %s",
                   ota_root_version(c->root),
                   util_rfc3339(ota_root_expires(c->root), when, sizeof(when)));
        return fail(c, F_ROOT, OTA_E_EXPIRED);
    }
    return 0;
}

/* --- image repository ---------------------------------------------------------------------- */

int
ota_client_timestamp(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                     size_t errlen)
{
    const struct trusted *ts = &c->t[F_TIMESTAMP];
    struct ota_want w = {OTA_ROLE_TIMESTAMP, now, 0, ts->version};
    json_t *env = NULL;
    int64_t v = 0;
    c->reason[0] = '\0';
    int rc = verify_file(c, F_TIMESTAMP, bytes, len, NULL, &w, &env, &v, err, errlen);
    if (rc == 0)
        rc = check_named_floor(F_TIMESTAMP, env,
                               max64(named_version(ts->env, F_TIMESTAMP), c->t[F_SNAPSHOT].version),
                               err, errlen);
    if (rc == 0 && ts->env != NULL && v == ts->version) {
        json_decref(env); /* the same version: nothing new, the trusted one stays (TUF 5.4.3.1) */
        return 0;
    }
    return finish(c, F_TIMESTAMP, env, v, rc);
}

/* "<version>.<role>.json" of the version file f names; -1 when no f is trusted. */
static int
named_file(const ota_client *c, enum file f, char *name, size_t cap)
{
    if (c->t[f].env == NULL)
        return -1;
    int n = snprintf(name, cap, "%" PRId64 ".%s.json", named_version(c->t[f].env, f),
                     f == F_TIMESTAMP ? "snapshot" : "targets");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int
ota_client_snapshot_name(const ota_client *c, char *name, size_t cap)
{
    return named_file(c, F_TIMESTAMP, name, cap);
}

int
ota_client_targets_name(const ota_client *c, char *name, size_t cap)
{
    return named_file(c, F_SNAPSHOT, name, cap);
}

int
ota_client_targets_unexpired(ota_client *c, int64_t now, char *err, size_t errlen)
{
    const json_t *env = c->t[F_TARGETS].env;
    const char *exp = json_string_value(json_object_get(json_object_get(env, "signed"), "expires"));
    int64_t at = 0;
    c->reason[0] = '\0';
    if (env == NULL || exp == NULL || util_parse_rfc3339(exp, &at) != 0) {
        errbuf_set(err, errlen, "targets: none trusted");
        return fail(c, F_TARGETS, OTA_E_FORMAT);
    }
    if (at <= now) {
        errbuf_set(err, errlen, "targets: the trusted version %" PRId64 " expired at %s",
                   c->t[F_TARGETS].version, exp);
        return fail(c, F_TARGETS, OTA_E_EXPIRED);
    }
    return 0;
}

int
ota_client_targets_current(const ota_client *c)
{
    return c->t[F_SNAPSHOT].env != NULL && c->t[F_TARGETS].env != NULL &&
           c->t[F_TARGETS].version == named_version(c->t[F_SNAPSHOT].env, F_SNAPSHOT);
}

/* The step of file f (snapshot or targets) named by the trusted file referrer. */
static int
named_step(ota_client *c, enum file f, enum file referrer, const char *bytes, size_t len,
           int64_t now, char *err, size_t errlen)
{
    const json_t *ref = c->t[referrer].env;
    struct ota_want w = {FILE_ROLE[f], now, named_version(ref, referrer), 0};
    json_t *env = NULL;
    int64_t v = 0;
    int rc;
    c->reason[0] = '\0';
    if (ref == NULL) {
        errbuf_set(err, errlen, "%s: no trusted %s names a version", FILE_NAME[f],
                   FILE_NAME[referrer]);
        return fail(c, f, OTA_E_VERSION);
    }
    rc = verify_file(c, f, bytes, len, named_entry(ref, referrer), &w, &env, &v, err, errlen);
    if (rc == 0 && f == F_SNAPSHOT)
        rc = check_named_floor(
            F_SNAPSHOT, env,
            max64(named_version(c->t[F_SNAPSHOT].env, F_SNAPSHOT), c->t[F_TARGETS].version), err,
            errlen);
    return finish(c, f, env, v, rc);
}

int
ota_client_snapshot(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                    size_t errlen)
{
    return named_step(c, F_SNAPSHOT, F_TIMESTAMP, bytes, len, now, err, errlen);
}

int
ota_client_targets(ota_client *c, const char *bytes, size_t len, int64_t now, char *err,
                   size_t errlen)
{
    return named_step(c, F_TARGETS, F_SNAPSHOT, bytes, len, now, err, errlen);
}

const json_t *
ota_client_find_target(const ota_client *c, const char *path)
{
    const json_t *s = json_object_get(c->t[F_TARGETS].env, "signed");
    return json_object_get(json_object_get(s, "targets"), path);
}

/* --- director repository ------------------------------------------------------------------- */

int
ota_client_director(ota_client *c, const char *bytes, size_t len, int64_t now,
                    const char *device_id, int64_t tenant_id, const json_t **signed_out, char *err,
                    size_t errlen)
{
    /* equal versions are accepted: the same generation may carry another answer (docs 4) */
    struct ota_want w = {OTA_ROLE_TARGETS, now, 0, c->t[F_DIRECTOR].version};
    json_t *env = NULL;
    int64_t v = 0;
    c->reason[0] = '\0';
    if (signed_out != NULL)
        *signed_out = NULL;
    int rc = verify_file(c, F_DIRECTOR, bytes, len, NULL, &w, &env, &v, err, errlen);
    if (rc == 0)
        rc = check_director_custom(env, device_id, tenant_id, err, errlen);
    rc = finish(c, F_DIRECTOR, env, v, rc);
    if (rc == 0 && signed_out != NULL)
        *signed_out = json_object_get(c->t[F_DIRECTOR].env, "signed");
    return rc;
}
