/* store: all SQL of Aegis behind one narrow interface (SQLite now; a PostgreSQL backend later
 * implements the same functions). Thread-safe: the store keeps a small pool of connections, and
 * every function takes one for the duration of the call. Multi-statement changes run in one
 * transaction inside one function, and every change writes its audit-log row in that same
 * transaction.
 *
 * Conventions:
 *  - Functions return STORE_OK (0) or a negative STORE_* code.
 *  - json_t **out results are new references the caller owns (json_decref). On error *out is left
 * NULL.
 *  - Objects are returned in their API shape (field names and RFC 3339 UTC times as in
 * docs/api.md), so handlers pass them through.
 *  - Every tenant-scoped function takes the caller's tenant_id; rows of other tenants answer
 * STORE_NOTFOUND.
 */
#ifndef AEGIS_STORE_H
#define AEGIS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum {
    STORE_OK = 0,
    STORE_ERR = -1,      /* database error (logged by the store; counted in store_error_count) */
    STORE_NOTFOUND = -2, /* no such row, or not visible to this tenant */
    STORE_CONFLICT =
        -3, /* uniqueness or state conflict (duplicate name, claimed elsewhere, not empty) */
    STORE_INVALID =
        -4, /* bad argument (malformed cursor, ...) or a database newer than this binary */
};

typedef struct store store;

/* Who makes a change; written to the audit log with it. who is "token:<id>" or "aegisctl". */
struct store_actor {
    int64_t tenant_id; /* 0 for operator-wide actions (tenant creation) */
    const char *who;
};

/* A page request. cursor is the opaque next_cursor of the previous page, or NULL for the first
 * page. limit is 1..1000 (handlers validate). */
struct store_page {
    const char *cursor;
    int limit;
};

/* Opens (creating with mode 0600 if missing) the SQLite database at path: WAL mode, foreign keys
 * on, busy timeout, pool_size connections (>= 1). Does not migrate. Returns STORE_OK and *out (free
 * with store_close), or an error with a message in err. */
int store_open(const char *path, int pool_size, store **out, char *err, size_t errlen);
void store_close(store *s);

/* Applies the pending migrations compiled into the binary (schema.h), each in one transaction,
 * recording each in schema_migrations. A database whose version is newer than the binary's is
 * refused with STORE_INVALID. *applied (may be NULL) gets the number applied. */
int store_migrate(store *s, int *applied, char *err, size_t errlen);
/* Current schema version of the database (0 when empty). */
int store_schema_version(store *s, int *version);
/* A cheap query on the database, for /readyz. */
int store_ping(store *s);
/* Number of database errors since open, for /metrics. */
uint64_t store_error_count(const store *s);

/* --- tenants (operator-level, used by aegisctl) --- */
/* STORE_CONFLICT if the name exists. */
int store_tenant_create(store *s, const char *name, const struct store_actor *a, int64_t *id);
/* {"id", "name", "created_at"} */
int store_tenant_get(store *s, int64_t id, json_t **out);
int store_tenant_find(store *s, const char *name, int64_t *id);
/* Array of tenant objects, by id. */
int store_tenant_list(store *s, json_t **out);

/* --- issuing CAs of a tenant --- */
/* Records an issuing CA. key_name is the signer's name for the key (e.g. "tenants/1/ca-1"). When
 * active is set, the tenant's other CAs become inactive (rollover): they stay listed until they
 * expire. */
int store_ca_add(store *s, int64_t tenant_id, const char *cert_pem, const char *key_name,
                 int64_t not_before, int64_t not_after, int active, const struct store_actor *a,
                 int64_t *id);
/* Array of {"id", "cert_pem", "key_name", "not_before", "not_after", "active" (bool)} for the
 * tenant's CAs that have not expired at time now, active first, then newest first. */
int store_ca_list(store *s, int64_t tenant_id, int64_t now, json_t **out);

/* --- API tokens --- */
struct store_token {
    int64_t id;
    int64_t tenant_id;
    char role[16];
    unsigned char hash[32]; /* SHA-256 of the token's secret part */
    int revoked;
};
/* role is "admin", "operator" or "reader". */
int store_token_create(store *s, int64_t tenant_id, const char *name, const char *role,
                       const unsigned char hash[32], const struct store_actor *a, int64_t *id);
/* Loads a token by id for authentication (any tenant). STORE_NOTFOUND if no such token. */
int store_token_get_auth(store *s, int64_t id, struct store_token *out);
/* Array of {"id", "name", "role", "created_at", "created_by", "revoked_at" (null or time)}; never
 * hashes. */
int store_token_list(store *s, int64_t tenant_id, json_t **out);
/* Revokes (idempotent). STORE_NOTFOUND if not the tenant's. */
int store_token_revoke(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a);

/* --- products: {"id", "name", "description", "created_at", "updated_at"} --- */
/* STORE_CONFLICT if the tenant has a product of that name. */
int store_product_create(store *s, int64_t tenant_id, const char *name, const char *description,
                         const struct store_actor *a, json_t **out);
int store_product_get(store *s, int64_t tenant_id, int64_t id, json_t **out);
/* items: array; next_cursor (>= 65 bytes: a device cursor is a 64-char id) gets "" on the last
 * page. Ordered by id. */
int store_product_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                       char *next_cursor);
/* name/description NULL = unchanged. */
int store_product_update(store *s, int64_t tenant_id, int64_t id, const char *name,
                         const char *description, const struct store_actor *a, json_t **out);
/* STORE_CONFLICT if the product still has device groups. */
int store_product_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a);

/* --- device groups: {"id", "product_id", "name", "description", "created_at", "updated_at"} --- */
/* STORE_NOTFOUND if the product is not the tenant's; STORE_CONFLICT on a duplicate name in the
 * product. */
int store_group_create(store *s, int64_t tenant_id, int64_t product_id, const char *name,
                       const char *description, const struct store_actor *a, json_t **out);
int store_group_get(store *s, int64_t tenant_id, int64_t id, json_t **out);
/* product_id 0 = all products. */
int store_group_list(store *s, int64_t tenant_id, int64_t product_id, const struct store_page *pg,
                     json_t **items, char *next_cursor);
int store_group_update(store *s, int64_t tenant_id, int64_t id, const char *name,
                       const char *description, const struct store_actor *a, json_t **out);
/* STORE_CONFLICT if devices are still in the group. */
int store_group_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a);

/* --- devices ---
 * {"id", "state" ("unclaimed" | "active" | "blocked"), "group_id" (null | n), "product_id" (null |
 * n), "public_key" (PEM), "created_at", "claimed_at" (null | time), "updated_at"} A device is
 * visible to the tenant that claimed it, and while unclaimed to the tenant that imported it. */
struct store_import_entry {
    const char *device_id;      /* hex SHA-256 of the DER SubjectPublicKeyInfo, 64 chars */
    const char *public_key_pem; /* normalised PEM */
};
/* Imports n devices atomically (all or none). Entries already known and visible to the tenant are
 * kept as they are (idempotent); when claim is set, every entry is claimed into the tenant (and put
 * in group_id if > 0). An entry claimed by another tenant makes the whole call fail with
 * STORE_CONFLICT, and *errors gets an array of {"index", "device_id", "error": "already_claimed",
 * "message"} for every such entry. STORE_NOTFOUND if group_id > 0 is not the tenant's. *created
 * gets the number of new registry rows. */
int store_device_import(store *s, int64_t tenant_id, const struct store_import_entry *e, size_t n,
                        int claim, int64_t group_id, const struct store_actor *a, json_t **errors,
                        size_t *created);
int store_device_get(store *s, int64_t tenant_id, const char *device_id, json_t **out);
/* group_id 0 = any; state NULL = any, else "unclaimed", "active" or "blocked". Ordered by device
 * id. */
int store_device_list(store *s, int64_t tenant_id, int64_t group_id, const char *state,
                      const struct store_page *pg, json_t **items, char *next_cursor);
/* Claims an unclaimed registered device (group_id 0 = no group). Idempotent for the owner.
 * STORE_NOTFOUND: unknown device or group; STORE_CONFLICT: claimed by another tenant. */
int store_device_claim(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                       const struct store_actor *a, json_t **out);
/* Moves a claimed device to group_id (0 = out of any group). STORE_NOTFOUND: device not claimed by
 * the tenant, or group not the tenant's. */
int store_device_move(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                      const struct store_actor *a, json_t **out);
/* Blocks or unblocks a claimed device (idempotent). */
int store_device_set_blocked(store *s, int64_t tenant_id, const char *device_id, int blocked,
                             const struct store_actor *a, json_t **out);

/* What device authentication needs to know of a device, in any tenant (devices authenticate before
 * a tenant is known). tenant_id is 0 while unclaimed; group_id and product_id are 0 when none. */
struct store_device_auth {
    int64_t tenant_id;
    int64_t group_id;
    int64_t product_id;
    int blocked;
    char public_key_pem[512];
};
/* STORE_NOTFOUND for an unknown device, STORE_INVALID for a malformed id. */
int store_device_auth(store *s, const char *device_id, struct store_device_auth *out);

/* --- audit log: {"id", "actor", "action", "object_type", "object_id", "detail" (object),
 * "created_at"} --- */
/* Newest first. */
int store_audit_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                     char *next_cursor);

#endif
