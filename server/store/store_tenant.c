/* store_tenant: tenants, their issuing CAs and API tokens, and the audit log every change writes
 * (store.h). */
#include "store.h"
#include "store_int.h"

#include "log.h"
#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- SQL --- */

static const char SQL_AUDIT_ADD[] =
    "INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id, detail, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_AUDIT_LIST[] =
    "SELECT id, actor, action, object_type, object_id, detail, created_at FROM audit_log "
    "WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";

static const char SQL_TENANT_ADD[] = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)";
static const char SQL_TENANT_GET[] = "SELECT id, name, created_at FROM tenants WHERE id = ?1";
static const char SQL_TENANT_FIND[] = "SELECT id FROM tenants WHERE name = ?1";
static const char SQL_TENANT_ROOT_SET[] = "UPDATE tenants SET device_root_pem = ?2 WHERE id = ?1";
static const char SQL_TENANT_ROOT_GET[] = "SELECT device_root_pem FROM tenants WHERE id = ?1";
static const char SQL_TENANT_LIST[] = "SELECT id, name, created_at FROM tenants ORDER BY id";

static const char SQL_CA_DEACTIVATE[] =
    "UPDATE tenant_cas SET active = 0 WHERE tenant_id = ?1 AND active = 1";
static const char SQL_CA_ADD[] =
    "INSERT INTO tenant_cas (tenant_id, cert_pem, key_name, not_before, not_after, active, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_CA_LIST[] =
    "SELECT id, cert_pem, key_name, not_before, not_after, active FROM tenant_cas "
    "WHERE tenant_id = ?1 AND not_after > ?2 ORDER BY active DESC, id DESC";

static const char SQL_TOKEN_ADD[] =
    "INSERT INTO api_tokens (tenant_id, name, role, hash, created_at, created_by, expires_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_TOKEN_AUTH[] =
    "SELECT tenant_id, role, hash, revoked_at IS NOT NULL, coalesce(expires_at, 0), "
    "coalesce(last_used_at, 0) FROM api_tokens WHERE id = ?1";
/* The minute's first use writes; the others of that minute find nothing to update. */
static const char SQL_TOKEN_TOUCH[] =
    "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND "
    "(last_used_at IS NULL OR last_used_at <= ?2 - " STORE_TOKEN_TOUCH_S_STR ")";
#define TOKEN_COLS "id, name, role, created_at, created_by, revoked_at, expires_at, last_used_at "
static const char SQL_TOKEN_LIST[] = "SELECT " TOKEN_COLS "FROM api_tokens "
                                     "WHERE tenant_id = ?1 ORDER BY id";
static const char SQL_TOKEN_GET[] = "SELECT " TOKEN_COLS "FROM api_tokens "
                                    "WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_TOKEN_STATE[] =
    "SELECT name, revoked_at IS NOT NULL FROM api_tokens WHERE id = ?1 AND tenant_id = ?2";
static const char SQL_TOKEN_REVOKE[] =
    "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND tenant_id = ?2";

/* --- JSON of rows --- */

/* Tenants and CAs are read into typed rows first (internal callers use those); their JSON is made
 * from the typed row, so both forms come from one reading of the columns. */

/* id, name, created_at (a store__row_fn) */
static int
tenant_row(sqlite3_stmt *st, void *elem)
{
    struct store_tenant *t = elem;
    const unsigned char *name = sqlite3_column_text(st, 1);
    int len = sqlite3_column_bytes(st, 1);

    if (name == NULL || len < 0 || len > STORE_NAME_MAX) /* the schema's CHECK allows 1..128 */
        return -1;
    t->id = sqlite3_column_int64(st, 0);
    memcpy(t->name, name, (size_t)len);
    t->name[len] = '\0';
    t->created_at = sqlite3_column_int64(st, 2);
    return 0;
}

static json_t *
tenant_json(const void *row)
{
    const struct store_tenant *t = row;
    return json_pack("{s:I, s:s, s:o}", "id", (json_int_t)t->id, "name", t->name, "created_at",
                     store__json_time(t->created_at));
}

/* id, cert_pem, key_name, not_before, not_after, active (a store__row_fn) */
static int
ca_row(sqlite3_stmt *st, void *elem)
{
    struct store_ca *ca = elem;
    const unsigned char *pem = sqlite3_column_text(st, 1), *key = sqlite3_column_text(st, 2);

    if (pem == NULL || key == NULL)
        return -1;
    ca->cert_pem = strdup((const char *)pem);
    ca->key_name = strdup((const char *)key);
    if (ca->cert_pem == NULL || ca->key_name == NULL) {
        free(ca->cert_pem);
        free(ca->key_name);
        return -1;
    }
    ca->id = sqlite3_column_int64(st, 0);
    ca->not_before = sqlite3_column_int64(st, 3);
    ca->not_after = sqlite3_column_int64(st, 4);
    ca->active = sqlite3_column_int(st, 5) != 0;
    return 0;
}

static json_t *
ca_json(const void *row)
{
    const struct store_ca *ca = row;
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:b}", "id", (json_int_t)ca->id, "cert_pem",
                     ca->cert_pem, "key_name", ca->key_name, "not_before",
                     store__json_time(ca->not_before), "not_after", store__json_time(ca->not_after),
                     "active", ca->active);
}

/* TOKEN_COLS */
static json_t *
token_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "name",
                     store__col_text(st, 1), "role", store__col_text(st, 2), "created_at",
                     store__col_time(st, 3), "created_by", store__col_text(st, 4), "revoked_at",
                     store__col_time(st, 5), "expires_at", store__col_time(st, 6), "last_used_at",
                     store__col_time(st, 7));
}

/* id, actor, action, object_type, object_id, detail, created_at */
static json_t *
audit_json(sqlite3_stmt *st)
{
    json_t *object_id = NULL;
    switch (sqlite3_column_type(st, 4)) {
    case SQLITE_INTEGER:
        object_id = store__col_int(st, 4);
        break;
    case SQLITE_NULL:
        object_id = json_null();
        break;
    default:
        object_id = store__col_text(st, 4);
        break;
    }
    const char *detail = (const char *)sqlite3_column_text(st, 5);
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "id", store__col_id(st, 0), "actor",
                     store__col_text(st, 1), "action", store__col_text(st, 2), "object_type",
                     store__col_text(st, 3), "object_id", object_id, "detail",
                     detail != NULL ? json_loads(detail, JSON_REJECT_DUPLICATES, NULL) : NULL,
                     "created_at", store__col_time(st, 6));
}

/* --- Audit --- */

/* Writes an audit row in the open transaction. object_id is object_text when set, else object_int
 * when > 0, else NULL. detail is stolen (NULL means out of memory). */
int
store__audit(store *s, struct conn *c, int64_t tenant_id, const struct store_actor *a,
             const char *action, const char *object_type, int64_t object_int,
             const char *object_text, json_t *detail)
{
    char *text = NULL;
    int rc = STORE_ERR;
    sqlite3_stmt *st = NULL;

    if (detail == NULL || (text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        log_error("msg=\"store: cannot build audit detail\" action=%s", action);
        goto out;
    }
    if ((st = store__prep(s, c, SQL_AUDIT_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, a->who) |
                          store__bind_text(st, 3, action) | store__bind_text(st, 4, object_type) |
                          (object_text != NULL ? store__bind_text(st, 5, object_text)
                                               : store__bind_id(st, 5, object_int)) |
                          store__bind_text(st, 6, text) | sqlite3_bind_int64(st, 7, util_now()));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "audit insert");
out:
    if (st != NULL)
        sqlite3_reset(st);
    free(text);
    json_decref(detail);
    return rc;
}

int
store_audit_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                 char *next_cursor)
{
    return store__list_newest(s, tenant_id, SQL_AUDIT_LIST, pg, audit_json, items, next_cursor);
}

/* --- Tenants --- */

int
store_tenant_create(store *s, const char *name, const struct store_actor *a, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (!store__text_ok(name, 1, NAME_MAX_BYTES) || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TENANT_ADD)) == NULL)
        goto out;
    if ((rc = store__bound(
             s, c, store__bind_text(st, 1, name) | sqlite3_bind_int64(st, 2, util_now()))) != 0)
        goto out;
    if ((rc = store__step_done(s, c, st, "tenant insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, new_id, a, "tenant.create", "tenant", new_id, NULL,
                      json_pack("{s:s}", "name", name));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_tenant_load(store *s, int64_t id, struct store_tenant *out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    int rc = store__row_by_id(s, c, SQL_TENANT_GET, id, "tenant get", &st);
    if (rc == STORE_OK && tenant_row(st, out) != 0)
        rc = store__db_error(s, c, "tenant get (bad row)");
    store__give(s, c);
    return rc;
}

int
store_tenant_get(store *s, int64_t id, json_t **out)
{
    struct store_tenant t;
    int rc = store_tenant_load(s, id, &t);

    *out = NULL;
    if (rc == STORE_OK && (*out = tenant_json(&t)) == NULL)
        rc = STORE_ERR;
    return rc;
}

int
store_tenant_set_device_root(store *s, int64_t tenant_id, const char *cert_pem,
                             const struct store_actor *a)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    /* PEM has newlines, which store__text_ok refuses; the schema's CHECK bounds the length. */
    if (cert_pem == NULL || cert_pem[0] == '\0' || strlen(cert_pem) > 16384 || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TENANT_ROOT_SET)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, cert_pem));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "tenant root set")) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, "tenant.device_root", "tenant", tenant_id, NULL,
                      json_object());
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_tenant_device_root(store *s, int64_t tenant_id, char **cert_pem)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;

    *cert_pem = NULL;
    int rc = store__row_by_id(s, c, SQL_TENANT_ROOT_GET, tenant_id, "tenant root get", &st);
    if (rc == STORE_OK) {
        const char *pem = (const char *)sqlite3_column_text(st, 0);
        if (pem != NULL && (*cert_pem = strdup(pem)) == NULL)
            rc = STORE_ERR;
    }
    store__give(s, c);
    return rc;
}

int
store_tenant_find(store *s, const char *name, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    if (name == NULL)
        goto out;
    c = store__take(s);
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TENANT_FIND)) == NULL)
        goto out;
    if ((rc = store__bound(s, c, store__bind_text(st, 1, name))) != STORE_OK)
        goto out;
    if ((rc = store__step_row(s, c, st, "tenant find")) != STORE_OK)
        goto out;
    if (id != NULL)
        *id = sqlite3_column_int64(st, 0);
out:
    store__give(s, c);
    return rc;
}

int
store_tenant_load_all(store *s, struct store_tenant **out, size_t *n)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TENANT_LIST);
    void *rows = NULL;
    int rc = STORE_ERR;

    *out = NULL;
    *n = 0;
    if (st != NULL)
        rc = store__collect_rows(s, c, st, sizeof(**out), tenant_row, &rows, n);
    store__give(s, c);
    if (rc != STORE_OK) {
        free(rows);
        *n = 0;
        return rc;
    }
    *out = rows;
    return rc;
}

int
store_tenant_list(store *s, json_t **out)
{
    struct store_tenant *t = NULL;
    size_t n = 0;
    int rc = store_tenant_load_all(s, &t, &n);

    *out = NULL;
    if (rc == STORE_OK && (*out = store__rows_json(t, n, sizeof(*t), tenant_json)) == NULL)
        rc = STORE_ERR;
    free(t);
    return rc;
}

/* Checks inside a transaction that the tenant exists. */
int
store__tenant_exists(store *s, struct conn *c, int64_t tenant_id)
{
    sqlite3_stmt *st = NULL;
    int rc = store__row_by_id(s, c, SQL_TENANT_GET, tenant_id, "tenant check", &st);
    if (st != NULL)
        sqlite3_reset(st); /* the caller goes on in this transaction */
    return rc;
}

/* --- Issuing CAs --- */

int
store_ca_add(store *s, int64_t tenant_id, const char *cert_pem, const char *key_name,
             int64_t not_before, int64_t not_after, int active, const struct store_actor *a,
             int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (cert_pem == NULL || !store__text_ok(key_name, 1, 256) || not_after <= not_before ||
        !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (active) {
        if ((st = store__prep(s, c, SQL_CA_DEACTIVATE)) == NULL)
            goto out;
        if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK ||
            (rc = store__step_done(s, c, st, "ca deactivate")) != STORE_OK)
            goto out;
        rc = STORE_ERR;
    }
    if ((st = store__prep(s, c, SQL_CA_ADD)) == NULL)
        goto out;
    rc = store__bound(
        s, c,
        sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, cert_pem) |
            store__bind_text(st, 3, key_name) | sqlite3_bind_int64(st, 4, not_before) |
            sqlite3_bind_int64(st, 5, not_after) | sqlite3_bind_int(st, 6, active != 0) |
            sqlite3_bind_int64(st, 7, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "ca insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, tenant_id, a, "ca.create", "ca", new_id, NULL,
                      json_pack("{s:s, s:b, s:o, s:o}", "key_name", key_name, "active", active != 0,
                                "not_before", store__json_time(not_before), "not_after",
                                store__json_time(not_after)));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

void
store_ca_free(struct store_ca *cas, size_t n)
{
    for (size_t i = 0; cas != NULL && i < n; i++) {
        free(cas[i].cert_pem);
        free(cas[i].key_name);
    }
    free(cas);
}

int
store_ca_load_all(store *s, int64_t tenant_id, int64_t now, struct store_ca **out, size_t *n)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_CA_LIST);
    void *rows = NULL;
    int rc = STORE_ERR;

    *out = NULL;
    *n = 0;
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, tenant_id) | sqlite3_bind_int64(st, 2, now))))
        goto out;
    rc = store__collect_rows(s, c, st, sizeof(**out), ca_row, &rows, n);
out:
    store__give(s, c);
    if (rc != STORE_OK) {
        store_ca_free(rows, *n);
        *n = 0;
        return rc;
    }
    *out = rows;
    return rc;
}

int
store_ca_list(store *s, int64_t tenant_id, int64_t now, json_t **out)
{
    struct store_ca *cas = NULL;
    size_t n = 0;
    int rc = store_ca_load_all(s, tenant_id, now, &cas, &n);

    *out = NULL;
    if (rc == STORE_OK && (*out = store__rows_json(cas, n, sizeof(*cas), ca_json)) == NULL)
        rc = STORE_ERR;
    store_ca_free(cas, n);
    return rc;
}

/* --- API tokens --- */

static int
role_ok(const char *role)
{
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
                            strcmp(role, "reader") == 0);
}

int
store_token_create(store *s, int64_t tenant_id, const char *name, const char *role,
                   const unsigned char hash[32], const struct store_actor *a, int64_t *id)
{
    return store_token_create_expiring(s, tenant_id, name, role, hash, 0, a, id);
}

int
store_token_create_expiring(store *s, int64_t tenant_id, const char *name, const char *role,
                            const unsigned char hash[32], int64_t expires_at,
                            const struct store_actor *a, int64_t *id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = STORE_INVALID;

    if (!store__text_ok(name, 1, NAME_MAX_BYTES) || !role_ok(role) || hash == NULL ||
        expires_at < 0 || !store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, name) |
                          store__bind_text(st, 3, role) |
                          sqlite3_bind_blob(st, 4, hash, 32, SQLITE_TRANSIENT) |
                          sqlite3_bind_int64(st, 5, util_now()) | store__bind_text(st, 6, a->who) |
                          store__bind_id(st, 7, expires_at));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "token insert")) != STORE_OK)
        goto out;
    new_id = sqlite3_last_insert_rowid(c->db);
    rc = store__audit(s, c, tenant_id, a, "token.create", "token", new_id, NULL,
                      json_pack("{s:s, s:s, s:o}", "name", name, "role", role, "expires_at",
                                expires_at > 0 ? store__json_time(expires_at) : json_null()));
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    if (rc == STORE_OK && id != NULL)
        *id = new_id;
    return rc;
}

int
store_token_get_auth(store *s, int64_t id, struct store_token *out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    int rc = store__row_by_id(s, c, SQL_TOKEN_AUTH, id, "token load", &st);
    if (rc != STORE_OK)
        goto out;
    const void *hash = sqlite3_column_blob(st, 2);
    const unsigned char *role = sqlite3_column_text(st, 1);
    if (hash == NULL || role == NULL || sqlite3_column_bytes(st, 2) != 32) {
        rc = store__db_error(s, c, "token load (bad row)");
        goto out;
    }
    out->id = id;
    out->tenant_id = sqlite3_column_int64(st, 0);
    snprintf(out->role, sizeof(out->role), "%s", (const char *)role);
    memcpy(out->hash, hash, 32);
    out->revoked = sqlite3_column_int(st, 3) != 0;
    out->expires_at = sqlite3_column_int64(st, 4);
    out->last_used_at = sqlite3_column_int64(st, 5);
out:
    store__give(s, c);
    return rc;
}

int
store_token_touch(store *s, int64_t id, int64_t now)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;
    int rc;

    /* Light: a last-used time lost to a power cut is only a minute's worth of information. */
    if ((rc = store__begin_light(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_TOUCH)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, now));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "token touch");
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_token_list(store *s, int64_t tenant_id, json_t **out)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TOKEN_LIST);
    int rc = STORE_ERR;

    *out = NULL;
    if (st == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, tenant_id))) != STORE_OK)
        goto out;
    rc = store__collect(s, c, st, 0, token_json, out, NULL);
out:
    store__give(s, c);
    return rc;
}

int
store_token_get(store *s, int64_t tenant_id, int64_t id, json_t **out)
{
    struct conn *c = store__take(s);
    *out = NULL;
    int rc = store__load_by_id(s, c, SQL_TOKEN_GET, id, tenant_id, token_json, out);
    store__give(s, c);
    return rc;
}

int
store_token_revoke(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    json_t *detail = NULL;
    int rc = STORE_INVALID;

    if (!store__actor_ok(a))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_STATE)) == NULL)
        goto out;
    if ((rc = store__bound(s, c,
                           sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id))) ||
        (rc = store__step_row(s, c, st, "token state")) != STORE_OK)
        goto out;
    if (sqlite3_column_int(st, 1) != 0)
        goto out; /* already revoked: nothing to do, nothing to audit */
    detail = json_pack("{s:o}", "name", store__col_text(st, 0));
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_TOKEN_REVOKE)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_int64(st, 1, id) | sqlite3_bind_int64(st, 2, tenant_id) |
                          sqlite3_bind_int64(st, 3, util_now()));
    if (rc != STORE_OK || (rc = store__step_done(s, c, st, "token revoke")) != STORE_OK)
        goto out;
    rc = store__audit(s, c, tenant_id, a, "token.revoke", "token", id, NULL, detail);
    detail = NULL;
out:
    json_decref(detail);
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}
