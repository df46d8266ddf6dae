/* REST handlers for devices (docs/api.md): import, list, get, claim, transfer, update (group and
 * tags), block, unblock, unclaim, delete.
 *
 * Ownership (docs/api.md "Devices"): a tenant only ever sees and acts on its own registrations of
 * devices, and every answer about a device it has none of is the answer about an unknown device. A
 * registration changes hands only with a one-time transfer code made by its holder.
 *
 * Device ids in paths must be exactly 64 lower-case hex characters, the only form the API ever
 * returns. Upper-case hex is refused with 400 bad_request rather than lower-cased, so that a device
 * has one URL and ids are compared byte for byte everywhere (the store, the request log, audit
 * details). */
#include "api_handlers.h"
#include "app.h"
#include "api.h"
#include "api_util.h"
#include "auth.h"
#include "hmap.h"
#include "jsonx.h"
#include "pki.h"
#include "proto_fields.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_MAX 10000      /* entries per import */
#define PUBLIC_KEY_MAX 4096   /* bytes of one entry's PEM */
#define IMPORT_ERRORS_MAX 100 /* entries of an "errors" list; "error_count" has the total */
#define TRANSFER_TTL_S (24 * 3600)
#define TRANSFER_CODE_MAX 128 /* bytes of a presented code (ours are AUTH_SECRET_LEN) */
#define ID_PREFIX_MIN 4       /* hex characters of ?id_prefix= */
/* bytes of one ?tag= argument: key, '=', value, NUL */
#define TAG_QUERY_MAX (STORE_DEVICE_TAG_KEY_MAX + 1 + STORE_DEVICE_TAG_VALUE_MAX + 1)

/* Checks the {id} path parameter. Returns 0 and *id (borrowed from r), or -1 with 400 bad_request
 * set. */
static int
device_param(api_req *r, const char **id)
{
    const char *s = r->params[0];
    if (!proto_digest_hex_ok(s, strlen(s))) {
        api_error(r, 400, "bad_request", "device id must be 64 lower-case hex characters");
        return -1;
    }
    *id = s;
    return 0;
}

/* What a STORE_NOTFOUND is about when a group was named too: the store does not say which was
 * missing. */
static const char *
device_what(int64_t group_id)
{
    return group_id > 0 ? "device or device group" : "device";
}

/* --- import --- */

_Static_assert(PROTO_HASH_HEX <= HMAP_KEY_MAX, "a device id is an hmap key");

struct slot {
    char id[PROTO_HASH_HEX + 1];
    char *pem; /* normalised PEM (malloc'd) */
};

struct import {
    json_t *devices; /* the body's array (borrowed) */
    size_t n;
    int claim;
    int64_t group_id; /* 0: none */
    struct slot *slots;
    struct store_import_entry *entries; /* point into slots */
    struct hmap *seen;                  /* the valid entries' device ids, indexing first */
    size_t *first;                      /* by index in seen: the slot of the id's first entry */
    pki_key_parser *parser;             /* one per request: parsing reuses its decoder */
    json_t *errors;                     /* the first IMPORT_ERRORS_MAX entry errors */
    size_t nerrors;                     /* all entry errors */
};

/* Validates the body around the entries. Returns 0, or -1 with a 400 reply set. */
static int
import_parse_body(api_req *r, struct import *im)
{
    static const char *const keys[] = {"devices", "claim", "group_id", NULL};
    char err[API_ERR_LEN];

    if (api_body_object(r, keys) != 0)
        return -1;
    im->devices = json_object_get(r->json, "devices");
    im->n = json_array_size(im->devices);
    if (!json_is_array(im->devices) || im->n < 1 || im->n > IMPORT_MAX) {
        snprintf(err, sizeof(err), "field 'devices' must be an array of 1 to %d entries",
                 IMPORT_MAX);
        api_invalid(r, err);
        return -1;
    }
    im->claim = 1;
    if (jsonx_bool(r->json, "claim", 0, &im->claim, err, sizeof(err)) != 0 ||
        jsonx_int(r->json, "group_id", 0, 1, 1, INT64_MAX, &im->group_id, NULL, err, sizeof(err)) !=
            0) {
        api_invalid(r, err);
        return -1;
    }
    if (im->group_id > 0 && !im->claim) {
        api_invalid(r, "field 'group_id' needs 'claim': true");
        return -1;
    }
    return 0;
}

static int
import_alloc(struct import *im)
{
    im->slots = calloc(im->n, sizeof(*im->slots));
    im->entries = calloc(im->n, sizeof(*im->entries));
    im->seen = hmap_new();
    im->first = calloc(im->n, sizeof(*im->first));
    im->errors = json_array();
    im->parser = pki_key_parser_new();
    return im->slots && im->entries && im->seen && im->first && im->errors && im->parser ? 0 : -1;
}

static void
import_free(struct import *im)
{
    for (size_t i = 0; im->slots != NULL && i < im->n; i++)
        free(im->slots[i].pem);
    free(im->slots);
    free(im->entries);
    hmap_free(im->seen);
    free(im->first);
    pki_key_parser_free(im->parser);
    json_decref(im->errors);
}

/* Parses entry v ({"public_key": PEM}) into s. Returns NULL, or the entry error code with the
 * reason in err. */
static const char *
import_check_entry(pki_key_parser *parser, const json_t *v, struct slot *s, char *err,
                   size_t errlen)
{
    static const char *const keys[] = {"public_key", NULL};
    char *pem = NULL;

    if (!json_is_object(v)) {
        snprintf(err, errlen, "entry must be an object");
        return "invalid_entry";
    }
    if (jsonx_only_keys(v, keys, err, errlen) != 0)
        return "invalid_entry";
    const json_t *pk = json_object_get(v, "public_key");
    if (!json_is_string(pk)) {
        snprintf(err, errlen, "field 'public_key' is required and must be a string");
        return "invalid_entry";
    }
    size_t len = json_string_length(pk);
    if (len < 1 || len > PUBLIC_KEY_MAX) {
        snprintf(err, errlen, "field 'public_key' must be 1 to %d bytes long", PUBLIC_KEY_MAX);
        return "invalid_entry";
    }
    if (pki_key_parser_device_id(parser, json_string_value(pk), len, s->id, &pem, err, errlen) !=
        0) {
        free(pem); /* NULL unless pki left something behind */
        return "bad_public_key";
    }
    s->pem = pem;
    return NULL;
}

/* Adds slot i's device id to the set: *first the index of an earlier slot with the same id, or
 * SIZE_MAX. Returns 0, or -1 when out of memory. */
static int
import_seen_add(struct import *im, size_t i, size_t *first)
{
    size_t k;
    int added;
    if (hmap_insert(im->seen, im->slots[i].id, strlen(im->slots[i].id), &k, &added) != 0)
        return -1;
    if (added)
        im->first[k] = i;
    *first = added ? SIZE_MAX : im->first[k];
    return 0;
}

static void
import_add_error(struct import *im, size_t index, const char *code, const char *msg)
{
    char safe[API_ERR_LEN];
    snprintf(safe, sizeof(safe), "%s", msg);
    util_utf8_repair(safe); /* messages quote the entry's text */
    if (im->nerrors++ < IMPORT_ERRORS_MAX)
        json_array_append_new(im->errors, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)index,
                                                    "error", code, "message", safe));
}

/* Checks every entry (all of them, to report every error) and fills im->entries for the valid ones.
 * Returns 0, or -1 when out of memory. */
static int
import_validate(struct import *im)
{
    char err[API_ERR_LEN];
    for (size_t i = 0; i < im->n; i++) {
        const char *code = import_check_entry(im->parser, json_array_get(im->devices, i),
                                              &im->slots[i], err, sizeof(err));
        if (code == NULL) {
            size_t first;
            if (import_seen_add(im, i, &first) != 0)
                return -1;
            if (first != SIZE_MAX) {
                snprintf(err, sizeof(err), "same public key as entry %zu", first);
                code = "duplicate";
            }
        }
        if (code != NULL) {
            import_add_error(im, i, code, err);
            continue;
        }
        im->entries[i].device_id = im->slots[i].id;
        im->entries[i].public_key_pem = im->slots[i].pem;
    }
    return 0;
}

/* Replies status/code with {"errors": the first IMPORT_ERRORS_MAX of errors (stolen, may be NULL),
 * "error_count": total}. */
static void
import_reply_errors(api_req *r, int status, const char *code, json_t *errors, size_t total,
                    const char *msg)
{
    if (errors == NULL)
        errors = json_array();
    while (json_array_size(errors) > IMPORT_ERRORS_MAX)
        json_array_remove(errors, json_array_size(errors) - 1);
    json_t *extra = json_pack("{s:o, s:I}", "errors", errors, "error_count", (json_int_t)total);
    api_error_with(r, status, code, extra, "%s", msg);
}

/* {"imported", "created", "claimed", "devices": [{"index", "device_id"}]}, or NULL when out of
 * memory. */
static json_t *
import_reply_body(const struct import *im, size_t created)
{
    json_t *devs = json_array();
    for (size_t i = 0; devs != NULL && i < im->n; i++) {
        json_t *d = json_pack("{s:I, s:s}", "index", (json_int_t)i, "device_id", im->slots[i].id);
        if (json_array_append_new(devs, d) != 0) {
            json_decref(devs);
            devs = NULL;
        }
    }
    return json_pack("{s:I, s:I, s:b, s:o}", "imported", (json_int_t)im->n, "created",
                     (json_int_t)created, "claimed", im->claim, "devices", devs);
}

void
api_devices_import(api_req *r)
{
    struct import im;
    json_t *store_errors = NULL;
    size_t created = 0;
    char msg[128];
    struct store_actor a = api_actor(r);
    int rc;

    memset(&im, 0, sizeof(im));
    if (import_parse_body(r, &im) != 0)
        return;
    if (import_alloc(&im) != 0 || import_validate(&im) != 0) {
        api_error(r, 500, "internal", "out of memory");
        goto out;
    }
    if (im.nerrors > 0) {
        snprintf(msg, sizeof(msg), "%zu of %zu entries are invalid; nothing was imported",
                 im.nerrors, im.n);
        import_reply_errors(r, 400, "import_failed", im.errors, im.nerrors, msg);
        im.errors = NULL;
        goto out;
    }
    rc = store_device_import(r->app->st, r->tenant_id, im.entries, im.n, im.claim, im.group_id, &a,
                             &store_errors, &created);
    if (rc == STORE_NOTFOUND) {
        api_error(r, 404, "not_found", "device group not found");
    } else if (rc != STORE_OK) {
        api_store_error(r, rc, "device");
    } else {
        api_reply_built(r, 200, import_reply_body(&im, created));
    }
out:
    json_decref(store_errors);
    import_free(&im);
}

/* --- list, get, claim, move, block --- */

/* ?state=: NULL when absent. Returns 0, or -1 with 400 bad_request set. */
static int
state_query(api_req *r, const char **state)
{
    static const char *const states[] = {"unclaimed", "active", "blocked", NULL};
    const char *s = api_query(r, "state");

    *state = NULL;
    if (s == NULL)
        return 0;
    for (const char *const *p = states; *p != NULL; p++) {
        if (strcmp(*p, s) == 0) {
            *state = *p;
            return 0;
        }
    }
    api_error(r, 400, "bad_request", "state must be one of unclaimed, active, blocked");
    return -1;
}

/* ?id_prefix=: NULL when absent. Returns 0, or -1 with 400 bad_request set. */
static int
prefix_query(api_req *r, const char **prefix)
{
    const char *p = api_query(r, "id_prefix");
    size_t n = p != NULL ? strlen(p) : 0;

    *prefix = p;
    if (p == NULL ||
        (n >= ID_PREFIX_MIN && n <= PROTO_HASH_HEX && strspn(p, "0123456789abcdef") == n))
        return 0;
    api_error(r, 400, "bad_request", "id_prefix must be %d to %d lower-case hex characters",
              ID_PREFIX_MIN, PROTO_HASH_HEX);
    return -1;
}

/* Every ?tag=key=value into tags (pointing into buf, which holds copies); *n their number. Returns
 * 0, or -1 with 400 bad_request set. */
static int
tag_query(api_req *r, struct store_device_tag tags[STORE_DEVICE_TAG_FILTERS_MAX],
          char buf[STORE_DEVICE_TAG_FILTERS_MAX][TAG_QUERY_MAX], size_t *n)
{
    const char *vals[STORE_DEVICE_TAG_FILTERS_MAX];
    size_t nv = api_query_all(r, "tag", vals, STORE_DEVICE_TAG_FILTERS_MAX);

    *n = 0;
    if (nv > STORE_DEVICE_TAG_FILTERS_MAX) {
        api_error(r, 400, "bad_request", "at most %d tag filters", STORE_DEVICE_TAG_FILTERS_MAX);
        return -1;
    }
    for (size_t i = 0; i < nv; i++) {
        char *eq = NULL;
        if (strlen(vals[i]) < TAG_QUERY_MAX) {
            memcpy(buf[i], vals[i], strlen(vals[i]) + 1);
            eq = strchr(buf[i], '=');
        }
        if (eq != NULL)
            *eq = '\0';
        if (eq == NULL || !store_device_tag_ok(buf[i], eq + 1)) {
            api_error(r, 400, "bad_request",
                      "tag must be KEY=VALUE (KEY 1-64 of [A-Za-z0-9._/-], VALUE 0-128 bytes)");
            return -1;
        }
        tags[i].key = buf[i];
        tags[i].value = eq + 1;
    }
    *n = nv;
    return 0;
}

void
api_devices_list(api_req *r)
{
    struct store_page pg;
    struct store_device_filter f = {0, NULL, NULL, NULL, 0}; /* group 0: any */
    struct store_device_tag tags[STORE_DEVICE_TAG_FILTERS_MAX];
    char tagbuf[STORE_DEVICE_TAG_FILTERS_MAX][TAG_QUERY_MAX];
    char next[API_CURSOR_BUF] = "";
    json_t *items = NULL;

    if (api_query_i64(r, "group_id", 1, INT64_MAX, &f.group_id) < 0 ||
        state_query(r, &f.state) != 0 || prefix_query(r, &f.id_prefix) != 0 ||
        tag_query(r, tags, tagbuf, &f.ntags) != 0 || api_page(r, &pg) != 0)
        return;
    f.tags = tags;
    int rc = store_device_list_filtered(r->app->st, r->tenant_id, &f, &pg, &items, next);
    api_reply_list(r, rc, items, next, "device");
}

void
api_devices_get(api_req *r)
{
    const char *id;
    json_t *obj = NULL;
    if (device_param(r, &id) != 0)
        return;
    int rc = store_device_get(r->app->st, r->tenant_id, id, &obj);
    api_reply_store(r, rc, 200, obj, "device");
}

/* The hex SHA-256 of a transfer code: only the hash is stored or compared. */
static void
transfer_hash(const char *code, size_t len, char hex[PROTO_HASH_HEX + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)code, len);
    proto_hex(h, sizeof(h), hex);
}

/* Body of claim (optional): {"group_id"?, "transfer_code"?}. *code is NULL when absent. Returns 0,
 * or -1 with a 400 reply set. */
static int
claim_body(api_req *r, int64_t *group_id, const char **code)
{
    static const char *const keys[] = {"group_id", "transfer_code", NULL};
    char err[API_ERR_LEN];

    *group_id = 0;
    *code = NULL;
    if (r->json == NULL) /* no body */
        return 0;
    if (api_body_object(r, keys) != 0)
        return -1;
    if (jsonx_int(r->json, "group_id", 0, 1, 1, INT64_MAX, group_id, NULL, err, sizeof(err)) != 0 ||
        jsonx_str(r->json, "transfer_code", 0, 1, TRANSFER_CODE_MAX, code, err, sizeof(err)) != 0) {
        api_invalid(r, err);
        return -1;
    }
    return 0;
}

void
api_devices_claim(api_req *r)
{
    const char *id, *code;
    int64_t group_id = 0;
    json_t *obj = NULL;
    int rc;

    if (device_param(r, &id) != 0 || claim_body(r, &group_id, &code) != 0)
        return;
    struct store_actor a = api_actor(r);
    if (code != NULL) {
        char hash[PROTO_HASH_HEX + 1];
        transfer_hash(code, strlen(code), hash);
        rc = store_device_claim_transfer(r->app->st, r->tenant_id, id, group_id, hash, &a, &obj);
    } else {
        rc = store_device_claim(r->app->st, r->tenant_id, id, group_id, &a, &obj);
    }
    api_reply_store(r, rc, 200, obj, device_what(group_id));
}

void
api_devices_transfer(api_req *r)
{
    const char *id;
    char code[AUTH_SECRET_LEN + 1], hash[PROTO_HASH_HEX + 1], exp[32];
    unsigned char raw[crypto_hash_sha256_BYTES];
    int64_t expires_at = util_now() + TRANSFER_TTL_S;

    if (device_param(r, &id) != 0)
        return;
    /* auth_secret_new: 32 random bytes as unpadded base64url, as a token's secret. */
    if (auth_secret_new(code, raw) != 0) {
        api_error(r, 500, "internal", "internal error");
        goto out;
    }
    transfer_hash(code, strlen(code), hash);
    struct store_actor a = api_actor(r);
    int rc = store_device_transfer_create(r->app->st, r->tenant_id, id, hash, expires_at, &a);
    if (rc != STORE_OK) {
        api_store_error(r, rc, "device");
        goto out;
    }
    api_reply_built(r, 201,
                    json_pack("{s:s, s:s}", "code", code, "expires_at",
                              util_rfc3339(expires_at, exp, sizeof(exp))));
out:
    sodium_memzero(code, sizeof(code));
    sodium_memzero(raw, sizeof(raw));
}

/* The "tags" member of a PATCH body: an object of at most STORE_DEVICE_TAGS_MAX members, each a
 * valid key with a valid string value (set) or null (removed). Returns 0, or -1 with a 400 reply
 * set. */
static int
tags_body(api_req *r, const json_t **tags)
{
    const char *k;
    const json_t *v;
    const json_t *t = json_object_get(r->json, "tags");

    *tags = t;
    if (t == NULL)
        return 0;
    if (!json_is_object(t) || json_object_size(t) > STORE_DEVICE_TAGS_MAX)
        goto bad;
    json_object_foreach((json_t *)t, k, v)
    {
        if (json_is_null(v)
                ? !store_device_tag_ok(k, "")
                : !json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                      !store_device_tag_ok(k, json_string_value(v)))
            goto bad;
    }
    return 0;
bad:
    api_invalid(r, "field 'tags' must be an object of at most 16 tags: keys 1-64 characters of "
                   "[A-Za-z0-9._/-], values strings of 0-128 bytes without control characters, "
                   "or null to remove one");
    return -1;
}

void
api_devices_update(api_req *r)
{
    static const char *const keys[] = {"group_id", "tags", NULL};
    struct store_device_patch p = {0, 0, NULL};
    char err[API_ERR_LEN];
    const char *id;
    json_t *obj = NULL;

    if (device_param(r, &id) != 0 || api_body_object(r, keys) != 0)
        return;
    if (jsonx_int(r->json, "group_id", 0, 1, 1, INT64_MAX, &p.group_id, &p.has_group, err,
                  sizeof(err)) != 0) {
        api_invalid(r, err);
        return;
    }
    if (tags_body(r, &p.tags) != 0)
        return;
    if (!p.has_group && p.tags == NULL) {
        api_invalid(r, "give 'group_id', 'tags' or both");
        return;
    }
    struct store_actor a = api_actor(r);
    int rc = store_device_patch(r->app->st, r->tenant_id, id, &p, &a, &obj);
    if (rc == STORE_INVALID) /* the arguments were checked: only the count is left */
        api_invalid(r, "a device has at most 16 tags");
    else
        api_reply_store(r, rc, 200, obj, device_what(p.group_id));
}

void
api_devices_unclaim(api_req *r)
{
    const char *id;
    json_t *obj = NULL;
    if (device_param(r, &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_device_unclaim(r->app->st, r->tenant_id, id, &a, &obj);
    api_reply_store(r, rc, 200, obj, "device");
}

void
api_devices_delete(api_req *r)
{
    const char *id;
    if (device_param(r, &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_device_delete(r->app->st, r->tenant_id, id, &a, NULL);
    api_reply_store(r, rc, 204, NULL, "device");
}

static void
set_blocked(api_req *r, int blocked)
{
    const char *id;
    json_t *obj = NULL;
    if (device_param(r, &id) != 0)
        return;
    struct store_actor a = api_actor(r);
    int rc = store_device_set_blocked(r->app->st, r->tenant_id, id, blocked, &a, &obj);
    api_reply_store(r, rc, 200, obj, "device");
}

void
api_devices_block(api_req *r)
{
    set_blocked(r, 1);
}

void
api_devices_unblock(api_req *r)
{
    set_blocked(r, 0);
}
