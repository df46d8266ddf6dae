/* faultnet: the fault-injecting transport of `aegis-sim update` (faultnet.h).
 *
 * Requests pass to the real transport; the answer of a faulty device is rewritten before the
 * device sees it. Image faults act on the streamed body (on_body) so that the agent's own checks
 * (length limit, hash) are what refuses, or the body cap exactly as the real transport applies it
 * (endless-image); metadata faults re-sign JSON with the service's online keys. Answers are
 * classified by URL (docs/update.md 2.1, 4, 5). */
#include "faultnet.h"

#include "ota_meta.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOLD 64                /* truncate-image: bytes held back from the end */
#define ENDLESS_CHUNK 16384    /* endless-image: garbage per on_body call */
#define DEFAULT_CAP (1u << 20) /* transport_uv's default body_max (the simulator keeps it) */
#define PAST "2001-01-01T00:00:00Z"
#define VERSION_JUMP 1000 /* replay: the newer timestamp served first */

const char *const faultnet_names[UF_COUNT] = {
    NULL,           "corrupt-image", "truncate-image", "endless-image", "freeze",
    "replay",       "bad-signature", "unlisted-image", "server-signed", "lower-svn",
    "crash-update",
};

const char *const faultnet_expected[UF_COUNT] = {
    NULL,
    "hash_mismatch",
    "length_mismatch",
    "too_large",
    "timestamp_expired",
    "timestamp_version",
    "director_signatures",
    "not_in_repository",
    "targets_signatures",
    "rollback",
    "rolled_back",
};

enum kind { K_OTHER, K_DIRECTOR, K_TIMESTAMP, K_SNAPSHOT, K_TARGETS, K_IMAGE };

struct adev_http_call {
    struct fnet *tr;
    void *inner;
    enum kind kind;
    int ranged; /* the request asked for a Range */
    size_t max_body;
    int (*on_body)(void *arg, const void *data, size_t len);
    void *on_body_arg;
    uint64_t passed; /* bytes given to the device's on_body */
    int aborted;     /* the device's on_body refused a piece */
    uint8_t held[HOLD];
    size_t n_held;
    adev_http_cb cb;
    void *arg;
    struct adev_http_call *prev, *next;
};

struct fnet {
    adev_transport t; /* first */
    adev_transport *inner;
    struct faultnet_dev *fd;
    const struct faultnet_keys *keys;
    adev_slots *slots;
    struct adev_http_call *calls;
};

/* --- keys ------------------------------------------------------------------------------------ */

int
faultnet_keys_load(const char *dir, struct faultnet_keys *k, char *err, size_t errlen)
{
    static const char *const names[3] = {"tuf-timestamp", "tuf-snapshot", "tuf-director"};
    ota_key *dst[3] = {&k->timestamp, &k->snapshot, &k->director};
    char path[4096];
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s.ed25519", dir, names[i]);
        if (ota_key_load(path, dst[i], err, errlen) != 0) {
            faultnet_keys_wipe(k);
            return -1;
        }
    }
    k->loaded = 1;
    return 0;
}

void
faultnet_keys_wipe(struct faultnet_keys *k)
{
    ota_key_wipe(&k->timestamp);
    ota_key_wipe(&k->snapshot);
    ota_key_wipe(&k->director);
    k->loaded = 0;
}

int
faultnet_needs_keys(enum upd_fault f)
{
    return f == UF_FREEZE || f == UF_REPLAY || f == UF_UNLISTED || f == UF_SERVER_SIGNED;
}

/* --- JSON forging ---------------------------------------------------------------------------- */

/* Replaces env's signatures by one of k and dumps it into *out (malloc'd). 0 or -1. */
static int
resign(json_t *env, const ota_key *k, char **out, size_t *len)
{
    char err[256];
    json_object_set_new(env, "signatures", json_array());
    if (ota_meta_sign(env, k, err, sizeof(err)) != 0 ||
        ota_meta_dump(env, out, len, err, sizeof(err)) != 0) {
        fprintf(stderr, "aegis-sim: forging failed: %s\n", err);
        return -1;
    }
    return 0;
}

static int64_t
int_at(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    if (c != NULL)
        v = json_object_get(v, c);
    return json_integer_value(v);
}

/* The director answer (all devices): what the summary needs. */
static void
observe_director(struct faultnet_dev *fd, const json_t *env)
{
    const json_t *sg = json_object_get(env, "signed");
    const json_t *targets = json_object_get(sg, "targets");
    if (json_object_size(targets) == 0)
        return;
    fd->offered = 1;
    fd->wave = (uint16_t)int_at(sg, "custom", "wave", NULL);
    fd->deployment_id = int_at(sg, "custom", "deployment_id", NULL);
}

/* The director answer of a faulty device. 1 when env was changed (to be re-signed unless the
 * fault is the broken signature itself), 0 when not, -1 on error. */
static int
forge_director(struct fnet *f, json_t *env)
{
    struct faultnet_dev *fd = f->fd;
    json_t *sg = json_object_get(env, "signed");
    json_t *targets = json_object_get(sg, "targets");
    const char *path;
    json_t *t;

    if (fd->fault == UF_REPLAY && fd->replayed == 0) {
        /* the check (director first, then the image repository, docs/update.md 9.2) that makes
         * the device trust a newer timestamp must not install */
        fd->replayed = 1;
        json_object_set_new(sg, "targets", json_object());
        return 1;
    }
    if (json_object_size(targets) == 0)
        return 0;
    switch (fd->fault) {
    case UF_BAD_SIGNATURE: {
        json_t *sig = json_object_get(json_array_get(json_object_get(env, "signatures"), 0), "sig");
        const char *hex = json_string_value(sig);
        if (hex == NULL || hex[0] == '\0')
            return -1;
        char *copy = strdup(hex);
        if (copy == NULL)
            return -1;
        copy[0] = copy[0] == '0' ? '1' : '0';
        json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "sig",
                            json_string(copy));
        free(copy);
        return 1;
    }
    case UF_UNLISTED: { /* the first target, with another length */
        json_t *first = json_object_iter_value(json_object_iter(targets));
        if (first != NULL)
            json_object_set_new(
                first, "length",
                json_integer(json_integer_value(json_object_get(first, "length")) + 1));
        return 1;
    }
    case UF_LOWER_SVN:
        json_object_foreach(targets, path, t)
        {
            const json_t *cu = json_object_get(t, "custom");
            const char *comp = json_string_value(json_object_get(cu, "component"));
            json_int_t svn = json_integer_value(json_object_get(cu, "svn"));
            if (comp != NULL && f->slots != NULL &&
                adev_svn_raise(f->slots, comp, (uint32_t)svn + 1) != 0)
                return -1;
        }
        return 0; /* the answer itself is genuine */
    default:
        return 0;
    }
}

/* Image-repository metadata of a faulty device. 1 when env was changed (re-sign with *key), 0, -1.
 */
static int
forge_repo(struct fnet *f, enum kind kind, json_t *env, const ota_key **key)
{
    struct faultnet_dev *fd = f->fd;
    json_t *sg = json_object_get(env, "signed");
    int64_t version = json_integer_value(json_object_get(sg, "version"));

    switch (fd->fault) {
    case UF_FREEZE:
        if (kind != K_TIMESTAMP)
            return 0;
        json_object_set_new(sg, "expires", json_string(PAST));
        *key = &f->keys->timestamp;
        return 1;
    case UF_REPLAY:
        if (kind != K_TIMESTAMP)
            return 0;
        if (fd->replayed == 1) { /* once: a newer timestamp, so that the real one is a rollback */
            fd->replayed = 2;
            json_object_set_new(sg, "version", json_integer(version + VERSION_JUMP));
            *key = &f->keys->timestamp;
            return 1;
        }
        return 0; /* the real one, now older than what the device trusts */
    case UF_SERVER_SIGNED:
        if (kind == K_TIMESTAMP) {
            json_t *m = json_object_get(json_object_get(sg, "meta"), "snapshot.json");
            fd->real_snapshot = json_integer_value(json_object_get(m, "version"));
            fd->fake_snapshot = fd->real_snapshot + 1;
            json_object_set_new(m, "version", json_integer(fd->fake_snapshot));
            json_object_del(m, "length"); /* the forged snapshot is made later */
            json_object_del(m, "hashes");
            json_object_set_new(sg, "version", json_integer(version + 1));
            *key = &f->keys->timestamp;
        } else if (kind == K_SNAPSHOT) {
            json_t *m = json_object_get(json_object_get(sg, "meta"), "targets.json");
            fd->real_targets = json_integer_value(json_object_get(m, "version"));
            fd->fake_targets = fd->real_targets + 1;
            json_object_set_new(m, "version", json_integer(fd->fake_targets));
            json_object_set_new(sg, "version", json_integer(fd->fake_snapshot));
            *key = &f->keys->snapshot;
        } else if (kind == K_TARGETS) {
            json_object_set_new(sg, "version", json_integer(fd->fake_targets));
            *key = &f->keys->snapshot; /* the server's key: never a targets key */
        } else {
            return 0;
        }
        return 1;
    default:
        return 0;
    }
}

/* A rewritten metadata body into *out (malloc'd; NULL: unchanged). 0 or -1. */
static int
rewrite_meta(struct fnet *f, enum kind kind, const struct adev_http_response *r, char **out,
             size_t *len)
{
    json_error_t je;
    json_t *env;
    const ota_key *key = NULL;
    int changed, rc = -1;

    *out = NULL;
    if (r->err != ADEV_NET_OK || r->status != 200 || r->body == NULL)
        return 0;
    env = json_loadb(r->body, r->body_len, 0, &je);
    if (env == NULL)
        return 0; /* not ours to judge */
    if (kind == K_DIRECTOR) {
        observe_director(f->fd, env);
        changed = f->fd->fault != UF_NONE ? forge_director(f, env) : 0;
        if (changed > 0 && f->fd->fault != UF_BAD_SIGNATURE)
            key = &f->keys->director;
    } else {
        changed = f->fd->fault != UF_NONE ? forge_repo(f, kind, env, &key) : 0;
    }
    if (changed < 0)
        goto out;
    if (changed > 0) {
        char err[64];
        if (key == NULL ? ota_meta_dump(env, out, len, err, sizeof(err)) != 0
                        : (!f->keys->loaded || resign(env, key, out, len) != 0))
            goto out;
        f->fd->forged++;
    }
    rc = 0;
out:
    json_decref(env);
    return rc;
}

/* --- image bodies ---------------------------------------------------------------------------- */

static int
pass(struct adev_http_call *c, const void *data, size_t len)
{
    if (len == 0 || c->aborted)
        return c->aborted;
    c->passed += len;
    if (c->on_body(c->on_body_arg, data, len) != 0)
        c->aborted = 1;
    return c->aborted;
}

/* The image body as the faulty device receives it. */
static int
on_image_body(void *arg, const void *data, size_t len)
{
    struct adev_http_call *c = arg;
    const uint8_t *p = data;
    switch (c->tr->fd->fault) {
    case UF_CORRUPT:
        if (c->passed == 0 && len > 0) {
            uint8_t first = p[0] ^ 0x01;
            if (pass(c, &first, 1) != 0)
                return 1;
            p++;
            len--;
        }
        return pass(c, p, len);
    case UF_TRUNCATE: {
        if (c->ranged)
            return 0; /* answered 416 at the end */
        /* hold back the last HOLD bytes seen: they are dropped at the end */
        size_t total = c->n_held + len;
        if (total <= HOLD) {
            memcpy(c->held + c->n_held, p, len);
            c->n_held = total;
            return 0;
        }
        size_t out = total - HOLD, from_held = out < c->n_held ? out : c->n_held;
        if (pass(c, c->held, from_held) != 0 || pass(c, p, out - from_held) != 0)
            return 1;
        memmove(c->held, c->held + from_held, c->n_held - from_held);
        c->n_held -= from_held;
        size_t rest = len - (out - from_held);
        memcpy(c->held + c->n_held, p + (out - from_held), rest);
        c->n_held += rest;
        return 0;
    }
    default:
        return pass(c, p, len);
    }
}

/* endless-image: after the real bytes (which the real transport delivered under the request's
 * max_body), garbage without end, cut exactly as transport_uv's on_write cuts any body: a piece
 * that would take the body past the cap (max_body, else the engine's body_max) is not delivered,
 * and the request ends with ADEV_NET_TOO_LARGE. The agent's own length check on what it is given
 * stays the second barrier. */
static void
feed_endless(struct adev_http_call *c, struct adev_http_response *r)
{
    static const uint8_t garbage[ENDLESS_CHUNK] = {0x5a};
    uint64_t cap = c->max_body > 0 ? c->max_body : DEFAULT_CAP;
    assert(c->passed <= cap); /* the real transport enforced the cap on the real bytes */
    while (!c->aborted && sizeof(garbage) <= cap - c->passed)
        pass(c, garbage, sizeof(garbage));
    r->status = 0; /* as fill_response leaves a failed request */
    r->body = "";
    r->body_len = 0;
    r->received = c->passed;
    if (c->aborted) { /* transport_uv: CURLE_WRITE_ERROR without too_large */
        r->err = ADEV_NET_OTHER;
        r->detail = "aborted by on_body";
    } else {
        r->err = ADEV_NET_TOO_LARGE;
        r->detail = "response body over max_body (simulated endless body)";
    }
}

/* --- the transport --------------------------------------------------------------------------- */

static void
unlink_call(struct adev_http_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->tr->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
}

static enum kind
classify(const char *method, const char *url)
{
    const char *q = strstr(url, "/v1/device/");
    if (q == NULL || strcmp(method, "GET") != 0)
        return K_OTHER;
    if (strstr(q, "/images/") != NULL || strstr(q, "/tuf/targets/") != NULL)
        return K_IMAGE;
    if (strstr(q, "/director/") != NULL)
        return K_OTHER; /* the director's roots */
    if (strstr(q, "/tuf/timestamp.json") != NULL)
        return K_TIMESTAMP;
    if (strstr(q, ".snapshot.json") != NULL)
        return K_SNAPSHOT;
    if (strstr(q, ".targets.json") != NULL)
        return K_TARGETS;
    size_t n = strlen(q);
    if (strncmp(q, "/v1/device/update", 17) == 0 && (n == 17 || q[17] == '?'))
        return K_DIRECTOR;
    return K_OTHER;
}

static void
on_inner(const struct adev_http_response *resp, void *arg)
{
    struct adev_http_call *c = arg;
    struct fnet *f = c->tr;
    struct adev_http_response r = *resp;
    char *body = NULL, range[64];
    size_t len = 0;
    enum upd_fault fault = (enum upd_fault)f->fd->fault;

    if (c->kind == K_IMAGE && c->on_body != NULL && resp->err == ADEV_NET_OK &&
        resp->status / 100 == 2) {
        r.received = c->passed;
        if (fault == UF_ENDLESS && !c->aborted) {
            feed_endless(c, &r);
        } else if (fault == UF_TRUNCATE && c->ranged) {
            const char *slash = resp->content_range ? strrchr(resp->content_range, '/') : NULL;
            snprintf(range, sizeof(range), "bytes */%s", slash ? slash + 1 : "*");
            r.status = 416;
            r.body = "{\"error\":\"range_not_satisfiable\"}";
            r.body_len = strlen(r.body);
            r.content_range = range;
            r.received = 0;
        } else if (c->aborted) {
            r.err = ADEV_NET_OTHER;
            r.status = 0;
        }
    } else if (c->kind != K_IMAGE && c->kind != K_OTHER) {
        if (rewrite_meta(f, c->kind, resp, &body, &len) == 0 && body != NULL) {
            r.body = body;
            r.body_len = len;
        }
    }
    adev_http_cb cb = c->cb;
    void *cb_arg = c->arg;
    unlink_call(c);
    free(c);
    cb(&r, cb_arg); /* may free the transport */
    free(body);
}

/* server-signed: the forged versions are fetched as the real ones. */
static const char *
real_url(struct fnet *f, enum kind kind, const char *url, char *buf, size_t cap)
{
    struct faultnet_dev *fd = f->fd;
    char fake[48];
    int64_t from = kind == K_SNAPSHOT ? fd->fake_snapshot : fd->fake_targets;
    int64_t to = kind == K_SNAPSHOT ? fd->real_snapshot : fd->real_targets;
    const char *name = kind == K_SNAPSHOT ? "snapshot" : "targets";
    if (fd->fault != UF_SERVER_SIGNED || from == 0)
        return url;
    snprintf(fake, sizeof(fake), "/%lld.%s.json", (long long)from, name);
    const char *at = strstr(url, fake);
    if (at == NULL)
        return url;
    snprintf(buf, cap, "%.*s/%lld.%s.json%s", (int)(at - url), url, (long long)to, name,
             at + strlen(fake));
    return buf;
}

static adev_http_call *
fnet_request(adev_transport *t, const struct adev_http_request *req, adev_http_cb cb, void *arg)
{
    struct fnet *f = (struct fnet *)t;
    struct adev_http_call *c = calloc(1, sizeof(*c));
    struct adev_http_request r = *req;
    char url[2048]; // cppcheck-suppress variableScope ; r.url points into it until the request

    if (c == NULL)
        return NULL;
    c->tr = f;
    c->cb = cb;
    c->arg = arg;
    c->kind = classify(req->method, req->url);
    c->max_body = req->max_body;
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
        c->ranged |= strncmp(req->headers[i], "Range:", 6) == 0;
    if (c->kind == K_IMAGE && req->on_body != NULL && f->fd->fault != UF_NONE) {
        c->on_body = req->on_body;
        c->on_body_arg = req->on_body_arg;
        r.on_body = on_image_body;
        r.on_body_arg = c;
    }
    if (c->kind == K_SNAPSHOT || c->kind == K_TARGETS)
        r.url = real_url(f, c->kind, req->url, url, sizeof(url));
    const char *hdrs[9];
    if (c->kind == K_DIRECTOR && f->fd->fault != UF_NONE && req->headers != NULL) {
        /* a faulty device always gets a whole answer (a 304 would skip the checks to fail) */
        size_t n = 0;
        for (size_t i = 0; req->headers[i] != NULL && n < 8; i++)
            if (strncasecmp(req->headers[i], "If-None-Match:", 14) != 0)
                hdrs[n++] = req->headers[i];
        hdrs[n] = NULL;
        r.headers = hdrs;
    }
    c->inner = adev_transport_request(f->inner, &r, on_inner, c);
    if (c->inner == NULL) {
        free(c);
        return NULL;
    }
    c->next = f->calls;
    if (f->calls != NULL)
        f->calls->prev = c;
    f->calls = c;
    return c;
}

static void
fnet_cancel(adev_transport *t, adev_http_call *c)
{
    struct fnet *f = (struct fnet *)t;
    adev_transport_cancel(f->inner, c->inner);
    unlink_call(c);
    free(c);
}

static void
fnet_free(adev_transport *t)
{
    struct fnet *f = (struct fnet *)t;
    while (f->calls != NULL)
        fnet_cancel(t, f->calls);
    adev_transport_free(f->inner);
    free(f);
}

static const struct adev_transport_ops fnet_ops = {fnet_request, fnet_cancel, fnet_free};

adev_transport *
faultnet_new(adev_transport *inner, adev_timers *timers, struct faultnet_dev *fd,
             const struct faultnet_keys *keys, adev_slots *slots)
{
    struct fnet *f = inner != NULL ? calloc(1, sizeof(*f)) : NULL;
    (void)timers;
    if (f == NULL) {
        adev_transport_free(inner);
        return NULL;
    }
    f->t.ops = &fnet_ops;
    f->inner = inner;
    f->fd = fd;
    f->keys = keys;
    f->slots = slots;
    return &f->t;
}
