/* store: the device's side of attestation (store.h "device attestation"): the nonce MAC key and
 * the used nonces, and for POST /v1/device/attest its two calls: store_attest_load (use the nonce
 * up and read what the verifier decides on) and store_attestation_record (write the outcome). Same
 * rules as every store file (store_int.h): one connection per call, changes in one BEGIN IMMEDIATE
 * transaction, values only bound. */
#include "store.h"
#include "store_attest_int.h"
#include "store_int.h"
#include "store_refval_int.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX 64
#define PEER_MAX 64

_Static_assert(sizeof(((struct store_attest_ctx *)0)->tenant_name) == NAME_MAX_BYTES + 1,
               "a tenant name fits the context");
_Static_assert(sizeof(((struct store_attest_ctx *)0)->public_key_pem) ==
                   sizeof(((struct store_device_auth *)0)->public_key_pem),
               "the identity key is read as for device authentication");

/* --- SQL --- */

static const char SQL_ATTEST_DEVICE[] =
    "SELECT coalesce(d.tenant_id, 0), d.blocked, d.public_key_pem, coalesce(t.name, ''), "
    "t.device_root_pem FROM devices d LEFT JOIN tenants t ON t.id = d.tenant_id WHERE d.id = ?1";
/* As store_ca_list: the active CA first, then the newest. */
static const char SQL_ATTEST_CAS[] =
    "SELECT cert_pem, key_name, active FROM tenant_cas WHERE tenant_id = ?1 AND not_after > ?2 "
    "ORDER BY active DESC, id DESC";
static const char SQL_DEVICE_RECORD_TENANT[] =
    "SELECT coalesce(tenant_id, registered_by) FROM devices WHERE id = ?1";
static const char SQL_DEVICE_SET_LAST[] =
    "UPDATE devices SET attest_at = ?2, attest_result = ?3, attest_reason = ?4 WHERE id = ?1";

/* A conflict (the nonce is in the set already) changes nothing: sqlite3_changes() tells. */
static const char SQL_NONCE_USE[] =
    "INSERT INTO nonces_used (nonce, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
static const char SQL_NONCE_PURGE[] =
    "DELETE FROM nonces_used WHERE nonce IN "
    "(SELECT nonce FROM nonces_used WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
static const char SQL_NONCE_KEY_ADD[] =
    "INSERT INTO nonce_key (id, key, created_at) VALUES (1, ?1, ?2) ON CONFLICT DO NOTHING";
static const char SQL_NONCE_KEY[] = "SELECT key FROM nonce_key WHERE id = 1";

static const char SQL_ATTESTATION_ADD[] =
    "INSERT INTO attestations (tenant_id, device_id, created_at, result, reason, measurements, "
    "cert_serial, cert_not_after, peer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/* --- Nonces --- */

/* Adds the 32 bytes of nonce to the used set with expires_at. *fresh = 1 when it was not in it. */
static int
nonce_use(store *s, struct conn *c, const unsigned char nonce[STORE_NONCE_LEN], int64_t expires_at,
          int *fresh)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_NONCE_USE);
    int rc = STORE_ERR;

    *fresh = 0;
    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_blob(st, 1, nonce, STORE_NONCE_LEN, SQLITE_TRANSIENT) |
                          sqlite3_bind_int64(st, 2, expires_at));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "nonce use");
    if (rc == STORE_OK)
        *fresh = sqlite3_changes(c->db) == 1;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Adds fresh as the key unless the database has one. */
static int
nonce_key_add(store *s, struct conn *c, const unsigned char fresh[STORE_NONCE_KEY_LEN], int64_t now)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_NONCE_KEY_ADD);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_blob(st, 1, fresh, STORE_NONCE_KEY_LEN, SQLITE_TRANSIENT) |
                          sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "nonce key insert");
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* no copy of the key lingers in the statement */
    }
    return rc;
}

static int
nonce_key_read(store *s, struct conn *c, unsigned char key[STORE_NONCE_KEY_LEN])
{
    sqlite3_stmt *st = store__prep(s, c, SQL_NONCE_KEY);
    int rc = STORE_ERR;

    if (st == NULL || (rc = store__step_row(s, c, st, "nonce key")) != STORE_OK)
        goto out;
    if (sqlite3_column_bytes(st, 0) != STORE_NONCE_KEY_LEN) {
        rc = STORE_ERR; /* the table's CHECK makes this unreachable */
        goto out;
    }
    memcpy(key, sqlite3_column_blob(st, 0), STORE_NONCE_KEY_LEN);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store_nonce_key(store *s, const unsigned char fresh[STORE_NONCE_KEY_LEN], int64_t now,
                unsigned char key[STORE_NONCE_KEY_LEN])
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;

    if (fresh == NULL || key == NULL)
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK || (rc = nonce_key_add(s, c, fresh, now)) != STORE_OK)
        goto out;
    rc = nonce_key_read(s, c, key);
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

/* The device's row and its owner's name; registered stays 0 for an unknown device. */
static int
attest_device(store *s, struct conn *c, const char *device_id, struct store_attest_ctx *out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEST_DEVICE);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, device_id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "attest device")) != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            rc = STORE_OK;
        goto out;
    }
    out->registered = 1;
    out->tenant_id = sqlite3_column_int64(st, 0);
    out->blocked = sqlite3_column_int(st, 1) != 0;
    const char *pem = (const char *)sqlite3_column_text(st, 2);
    const char *name = (const char *)sqlite3_column_text(st, 3);
    snprintf(out->public_key_pem, sizeof(out->public_key_pem), "%s", pem != NULL ? pem : "");
    snprintf(out->tenant_name, sizeof(out->tenant_name), "%s", name != NULL ? name : "");
    const char *root = (const char *)sqlite3_column_text(st, 4);
    if (root != NULL && (out->device_root_pem = strdup(root)) == NULL)
        rc = STORE_ERR;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* Appends the CA of the current row of st (SQL_ATTEST_CAS) to out->cas. */
static int
ca_append(sqlite3_stmt *st, struct store_attest_ctx *out)
{
    struct store_attest_ca *cas = realloc(out->cas, (out->ncas + 1) * sizeof(*cas));
    if (cas == NULL)
        return STORE_ERR;
    out->cas = cas;
    struct store_attest_ca *ca = &cas[out->ncas];
    const char *pem = (const char *)sqlite3_column_text(st, 0);
    const char *key = (const char *)sqlite3_column_text(st, 1);
    ca->cert_pem = strdup(pem != NULL ? pem : "");
    ca->key_name = key != NULL ? strdup(key) : NULL;
    ca->active = sqlite3_column_int(st, 2) != 0;
    out->ncas++; /* counted even when a copy failed, so that ctx_free frees the other */
    return ca->cert_pem == NULL || (key != NULL && ca->key_name == NULL) ? STORE_ERR : STORE_OK;
}

static int
attest_cas(store *s, struct conn *c, int64_t tenant_id, int64_t now, struct store_attest_ctx *out)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTEST_CAS);
    int rc = STORE_ERR, step = SQLITE_DONE;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, now));
    while (rc == STORE_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = ca_append(st, out);
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = store__db_error(s, c, "attest CAs");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* The policy of each measurement and the CAs of the owner. An unknown or unclaimed device has
 * none, but its reads are made with a tenant no one has: the time of an attempt before its
 * signature is checked does not tell whether the device is registered. */
static int
attest_policy(store *s, struct conn *c, int64_t now, const struct store_measurement *m, size_t n,
              struct store_attest_ctx *out)
{
    int64_t tenant_id = out->tenant_id > 0 ? out->tenant_id : INT64_MAX;
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        rc = store__refval_known(s, c, tenant_id, &m[i], &out->known[i]);
        if (rc == STORE_OK)
            rc = store__minimum_of(s, c, tenant_id, m[i].component, &out->min_svn[i]);
    }
    if (rc == STORE_OK)
        rc = attest_cas(s, c, tenant_id, now, out);
    return rc;
}

static int
measurements_ok(const struct store_measurement *m, size_t n)
{
    if (m == NULL || n == 0 || n > PROTO_EVENTS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!store__measurement_ok(&m[i]))
            return 0;
    return 1;
}

int
store_attest_load(store *s, const char *device_id, const unsigned char nonce[STORE_NONCE_LEN],
                  int64_t expires_at, int64_t now, const struct store_measurement *m, size_t n,
                  struct store_attest_ctx *out)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID, read_rc = STORE_OK;

    memset(out, 0, sizeof(*out));
    if (!store__device_id_ok(device_id) || nonce == NULL || expires_at <= now ||
        !measurements_ok(m, n))
        goto out;
    c = store__take(s);
    /* Without an fsync: a use lost in a power loss lets the nonce be used once more before it
     * expires, which only its device can (the signature binds it). */
    if ((rc = store__begin_light(s, c)) != STORE_OK ||
        (rc = nonce_use(s, c, nonce, expires_at, &out->nonce_ok)) != STORE_OK || !out->nonce_ok)
        goto out;
    /* The nonce is used up: that commits whatever the reads give. */
    read_rc = attest_device(s, c, device_id, out);
    if (read_rc == STORE_OK)
        read_rc = attest_policy(s, c, now, m, n, out);
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK)
        rc = read_rc;
    if (rc != STORE_OK)
        store_attest_ctx_free(out);
    return rc;
}

void
store_attest_ctx_free(struct store_attest_ctx *ctx)
{
    if (ctx == NULL)
        return;
    for (size_t i = 0; i < ctx->ncas; i++) {
        free(ctx->cas[i].cert_pem);
        free(ctx->cas[i].key_name);
    }
    free(ctx->cas);
    ctx->cas = NULL;
    ctx->ncas = 0;
    free(ctx->device_root_pem);
    ctx->device_root_pem = NULL;
}

int
store_nonce_purge(store *s, int64_t now, int max_rows, int *purged)
{
    return store__purge(s, SQL_NONCE_PURGE, now, max_rows, purged, "nonce purge");
}

/* --- Attestation records --- */

static int
record_ok(const struct store_attestation *a)
{
    if (a == NULL || !store__device_id_ok(a->device_id) ||
        (a->measurements != NULL && !json_is_array(a->measurements)) ||
        (a->peer != NULL && !store__text_ok(a->peer, 1, PEER_MAX)))
        return 0;
    if (a->pass)
        return a->reason == NULL && store__text_ok(a->cert_serial, 1, 128);
    return store__text_ok(a->reason, 1, REASON_MAX);
}

static int
attestation_insert(store *s, struct conn *c, int64_t tenant_id, const struct store_attestation *a,
                   const char *measurements)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_ATTESTATION_ADD);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, a->device_id) |
            sqlite3_bind_int64(st, 3, a->at) | store__bind_text(st, 4, a->pass ? "pass" : "fail") |
            store__bind_text(st, 5, a->pass ? NULL : a->reason) |
            store__bind_text(st, 6, measurements) |
            store__bind_text(st, 7, a->pass ? a->cert_serial : NULL) |
            (a->pass ? sqlite3_bind_int64(st, 8, a->cert_not_after) : sqlite3_bind_null(st, 8)) |
            store__bind_text(st, 9, a->peer));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "attestation insert");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

static int
device_set_last(store *s, struct conn *c, const struct store_attestation *a)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_SET_LAST);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    rc = store__bound(s, c,
                      store__bind_text(st, 1, a->device_id) | sqlite3_bind_int64(st, 2, a->at) |
                          store__bind_text(st, 3, a->pass ? "pass" : "fail") |
                          store__bind_text(st, 4, a->pass ? NULL : a->reason));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "device last attestation");
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

/* The tenant a record of the device belongs to (owner, else importer). */
static int
record_tenant(store *s, struct conn *c, const char *device_id, int64_t *tenant_id)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_RECORD_TENANT);
    int rc = STORE_ERR;

    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, device_id))) != STORE_OK ||
        (rc = store__step_row(s, c, st, "device record tenant")) != STORE_OK)
        goto out;
    *tenant_id = sqlite3_column_int64(st, 0);
out:
    if (st != NULL)
        sqlite3_reset(st);
    return rc;
}

int
store__attestation_write(store *s, const struct store_attestation *a, int light, int64_t *id)
{
    struct conn *c = NULL;
    char *measurements = NULL;
    int64_t tenant_id = 0, new_id = 0;
    int rc = STORE_INVALID;

    if (!record_ok(a))
        goto out;
    rc = STORE_ERR;
    measurements =
        a->measurements != NULL ? json_dumps(a->measurements, JSON_COMPACT) : strdup("[]");
    if (measurements == NULL)
        goto out;
    c = store__take(s);
    if ((rc = light ? store__begin_light(s, c) : store__begin(s, c)) != STORE_OK ||
        (rc = record_tenant(s, c, a->device_id, &tenant_id)) != STORE_OK ||
        (rc = attestation_insert(s, c, tenant_id, a, measurements)) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = device_set_last(s, c, a);
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    free(measurements);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_attestation_record(store *s, const struct store_attestation *a, int64_t *id)
{
    return store__attestation_write(s, a, 0, id);
}
