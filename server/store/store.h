/* store: all SQL of Aegis behind one narrow interface (SQLite now; a PostgreSQL backend later
 * implements the same functions). The files behind it: docs/architecture.md, "The store".
 * Thread-safe: the store keeps a small pool of connections, and every function takes one for the
 * duration of the call. Multi-statement changes run in one transaction inside one function, and
 * every change writes its audit-log row in that same transaction.
 *
 * Conventions:
 *  - Functions return STORE_OK (0) or a negative STORE_* code.
 *  - json_t **out results are new references the caller owns (json_decref). On error *out is
 *    left NULL.
 *  - Objects are returned in their API shape (field names and RFC 3339 UTC times as in
 *    docs/api.md), so handlers pass them through.
 *  - What the service itself reads (a tenant's name, its CAs, a token, a device's owner, what an
 *    attestation is checked against) comes as a typed struct instead (store_tenant_load,
 *    store_ca_load_all, store_token_get_auth, store_device_auth, store_attest_load): the JSON
 *    shape is only for replies.
 *  - Every tenant-scoped function takes the caller's tenant_id; rows of other tenants answer
 *    STORE_NOTFOUND. */
#ifndef AEGIS_STORE_H
#define AEGIS_STORE_H

#include "proto_event.h"
#include "proto_telemetry.h"

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
/* SQLite's directory for temporary files (spilled sorts and temp b-trees) from now on; dir NULL
 * keeps SQLite's default. SQLite reads SQLITE_TMPDIR only once, when the first store opens: key
 * isolation sets it later. Call it before any thread uses the store. STORE_OK, or STORE_ERR when
 * out of memory. */
int store_temp_dir(const char *dir);
/* How many migrations compiled into the binary the database lacks (store_migrate would apply them):
 * *pending, 0 on error. Returns STORE_OK or an error. */
int store_migrations_pending(store *s, int *pending);
/* A cheap query on the database, for /readyz: STORE_ERR also while telemetry cannot be made
 * durable (a flush of the log failed, or the log could not be opened for the last flush). */
int store_ping(store *s);
/* Copies what the write-ahead log holds into the database file (a passive checkpoint), under the
 * write lock so that the next write starts the log over. The pool's connections never checkpoint on
 * their own, so no API request waits for one: the daemon runs this from a timer, and the telemetry
 * writer's connection checkpoints by itself every 10,000 pages. *log_frames and *copied_frames
 * (each may be NULL) get the log's size in pages and how many of them are in the database now
 * (both 0 when another process was checkpointing, which is not an error). Skipped (both 0) while
 * the telemetry writer commits (within 2 s of its last commit: it checkpoints by itself, and a
 * checkpoint here would hold it up) and after a failed flush of the log (store_telemetry_sync).
 * STORE_ERR (logged) on an error. */
int store_checkpoint(store *s, int *log_frames, int *copied_frames);
/* Number of database errors since open, for /metrics. */
uint64_t store_error_count(const store *s);
/* How long the store's COMMITs took since open (flushes 0), or its flushes of the write-ahead log
 * that acknowledgements wait for (flushes 1: the attestation syncer's and the telemetry writer's);
 * for /metrics. Owned by the store: valid until store_close. */
struct lathist;
const struct lathist *store_commit_latency(const store *s, int flushes);
/* Devices by registry state over all tenants, in one grouped count (for /metrics): out[0]
 * unclaimed, out[1] active, out[2] blocked. */
#define STORE_DEVICE_STATES 3
int store_device_state_counts(store *s, int64_t out[STORE_DEVICE_STATES]);

/* --- backup and restore (aegisctl backup, restore; docs/operations.md) --- */
/* These take database files, not an open store. */
/* Copies the database at src_path, which other processes may be serving from, into the new file
 * dst_path (mode 0600; an existing file is refused) with SQLite's online backup API in one step:
 * one read transaction, so the copy holds every transaction committed before the call and none
 * that was not whole (writers are not held up in WAL mode). The copy is one file in
 * rollback-journal mode, fsynced, and has passed store_check_file; *version (may be NULL) gets its
 * schema version. STORE_OK; else the copy is removed and err says why (STORE_INVALID: it failed the
 * checks). */
int store_backup(const char *src_path, const char *dst_path, int *version, char *err,
                 size_t errlen);
/* Checks a database file before a service runs on it: PRAGMA integrity_check and
 * foreign_key_check pass, its migrations are this binary's (same versions and names, in order) and
 * none is newer. *version (may be NULL) gets its schema version. STORE_OK, STORE_INVALID (the
 * reason in err) or STORE_ERR (it cannot be read). */
int store_check_file(const char *path, int *version, char *err, size_t errlen);
/* 1 when another connection (a running aegisd, an aegisctl) has the database at path open, 0 when
 * none has or there is no file, -1 on an error (err). Takes and drops an exclusive lock when free.
 */
int store_in_use(const char *path, char *err, size_t errlen);

/* --- tenants (operator-level, used by aegisctl) --- */
#define STORE_NAME_MAX 128 /* bytes of a tenant's name */
struct store_tenant {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    int64_t created_at;
};
/* STORE_CONFLICT if the name exists. */
int store_tenant_create(store *s, const char *name, const struct store_actor *a, int64_t *id);
/* {"id", "name", "created_at"} */
int store_tenant_get(store *s, int64_t id, json_t **out);
int store_tenant_find(store *s, const char *name, int64_t *id);
/* Array of tenant objects, by id. */
int store_tenant_list(store *s, json_t **out);
/* Typed forms of the two above: one tenant into *out; all tenants by id into *out (malloc'd, the
 * caller frees it with free(); NULL when there are none) and *n. */
int store_tenant_load(store *s, int64_t id, struct store_tenant *out);
int store_tenant_load_all(store *s, struct store_tenant **out, size_t *n);

/* The tenant's device root (docs/protocol.md §4): records its certificate (PEM, replacing any);
 * STORE_NOTFOUND without the tenant. */
int store_tenant_set_device_root(store *s, int64_t tenant_id, const char *cert_pem,
                                 const struct store_actor *a);
/* Its certificate into *cert_pem (malloc'd; NULL when the tenant has none yet); STORE_NOTFOUND
 * without the tenant. */
int store_tenant_device_root(store *s, int64_t tenant_id, char **cert_pem);

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
/* The same CAs typed, in the same order: *out (free with store_ca_free; NULL when there are none)
 * and *n. */
struct store_ca {
    int64_t id;
    char *cert_pem; /* owned by the array */
    char *key_name; /* owned by the array */
    int64_t not_before;
    int64_t not_after;
    int active;
};
int store_ca_load_all(store *s, int64_t tenant_id, int64_t now, struct store_ca **out, size_t *n);
/* Frees n CAs of store_ca_load_all and the array. Accepts NULL. */
void store_ca_free(struct store_ca *cas, size_t n);

/* --- API tokens --- */
struct store_token {
    int64_t id;
    int64_t tenant_id;
    char role[16];
    unsigned char hash[32]; /* SHA-256 of the token's secret part */
    int revoked;
    int64_t expires_at;   /* 0: never */
    int64_t last_used_at; /* 0: never used */
};
/* role is "admin", "operator" or "reader". */
int store_token_create(store *s, int64_t tenant_id, const char *name, const char *role,
                       const unsigned char hash[32], const struct store_actor *a, int64_t *id);
/* As store_token_create, for a token that stops working at expires_at (0: never). */
int store_token_create_expiring(store *s, int64_t tenant_id, const char *name, const char *role,
                                const unsigned char hash[32], int64_t expires_at,
                                const struct store_actor *a, int64_t *id);
/* Records that token id was used at now: written only when its last_used_at is at least
 * STORE_TOKEN_TOUCH_S older (callers skip the call when the loaded last_used_at is younger, so an
 * authentication writes at most once a minute per token). Not audited; no fsync. */
#define STORE_TOKEN_TOUCH_S 60
#define STORE_TOKEN_TOUCH_S_STR "60"
int store_token_touch(store *s, int64_t id, int64_t now);
/* Loads a token by id for authentication (any tenant). STORE_NOTFOUND if no such token. */
int store_token_get_auth(store *s, int64_t id, struct store_token *out);
/* Array of {"id", "name", "role", "created_at", "created_by", "revoked_at" (null or time),
 * "expires_at" (null or time), "last_used_at" (null or time)}; never hashes. */
int store_token_list(store *s, int64_t tenant_id, json_t **out);
/* One token of the tenant in the shape of a list item. STORE_NOTFOUND if not the tenant's. */
int store_token_get(store *s, int64_t tenant_id, int64_t id, json_t **out);
/* Revokes (idempotent). STORE_NOTFOUND if not the tenant's. */
int store_token_revoke(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a);

/* --- dashboard sessions (store_session.c): an API token exchanged for a cookie --- */
struct store_session {
    unsigned char id_hash[32];   /* SHA-256 of the cookie's 32 random bytes */
    int64_t token_id;            /* the token it was made from; its tenant is the session's */
    int64_t tenant_id;           /* filled by store_session_get_auth (create takes the token's) */
    unsigned char csrf_hash[32]; /* SHA-256 of the CSRF token's text */
    int64_t created_at;
    int64_t expires_at;
};
/* Adds a session for token sess->token_id (its tenant is taken from the token), deleting every
 * session expired at sess->created_at first. STORE_NOTFOUND if the token does not exist,
 * STORE_INVALID if expires_at <= created_at. Not audited: the token's use is what counts. */
int store_session_create(store *s, const struct store_session *sess);
/* Loads the session of id_hash with its token's state into *tok (id, tenant, role, revoked,
 * expires_at, last_used_at; no hash). STORE_NOTFOUND if no such session. The caller decides about
 * expiry and revocation. */
int store_session_get_auth(store *s, const unsigned char id_hash[32], struct store_session *out,
                           struct store_token *tok);
/* Deletes the session of id_hash. STORE_NOTFOUND if there was none. */
int store_session_delete(store *s, const unsigned char id_hash[32]);

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
 * n), "public_key" (PEM), "created_at", "claimed_at" (null | time), "updated_at", "attestation"
 * (null | {"at", "result", "reason"}: the last attestation)} A tenant sees its registrations of
 * devices only (see store_device_import). */
struct store_import_entry {
    const char *device_id;      /* hex SHA-256 of the DER SubjectPublicKeyInfo, 64 chars */
    const char *public_key_pem; /* normalised PEM */
};
/* Imports n devices atomically (all or none). Entries the tenant already has a registration of are
 * kept as they are (idempotent); an entry it has none of gets one: the devices row when the
 * registry does not know the device, else a shadow, which only this tenant sees and the device
 * never authenticates to (docs/api.md "Devices": the answer must not tell that another tenant holds
 * the device). When claim is set, every entry is claimed into the tenant (and put in group_id if >
 * 0). STORE_NOTFOUND if group_id > 0 is not the tenant's. *created gets the number of new
 * registrations. *errors is always set to NULL: no entry can conflict any more (kept for the
 * callers). */
int store_device_import(store *s, int64_t tenant_id, const struct store_import_entry *e, size_t n,
                        int claim, int64_t group_id, const struct store_actor *a, json_t **errors,
                        size_t *created);
int store_device_get(store *s, int64_t tenant_id, const char *device_id, json_t **out);
/* group_id 0 = any; state NULL = any, else "unclaimed", "active" or "blocked". Ordered by device
 * id. */
int store_device_list(store *s, int64_t tenant_id, int64_t group_id, const char *state,
                      const struct store_page *pg, json_t **items, char *next_cursor);
/* Claims the tenant's unclaimed registration of a device (group_id 0 = no group). Idempotent once
 * claimed. STORE_NOTFOUND: the tenant has no registration of the device (whether or not another
 * tenant has one), or the group is not the tenant's. */
int store_device_claim(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                       const struct store_actor *a, json_t **out);
/* Stores a transfer code for the tenant's registration of a device: code_hash is the 64 hex
 * SHA-256 of the code, which the store never sees. It replaces the tenant's earlier code for the
 * device. STORE_NOTFOUND: the tenant has no registration of the device. */
int store_device_transfer_create(store *s, int64_t tenant_id, const char *device_id,
                                 const char *code_hash, int64_t expires_at,
                                 const struct store_actor *a);
/* Claims a device with a transfer code (its hash, as above): the code's maker loses its
 * registration, the tenant gets it, claimed into group_id (0 = none), and the code is used up.
 * STORE_NOTFOUND, using nothing up, for an unknown, used or expired code, a code of another device,
 * or a group that is not the tenant's. */
int store_device_claim_transfer(store *s, int64_t tenant_id, const char *device_id,
                                int64_t group_id, const char *code_hash,
                                const struct store_actor *a, json_t **out);
/* Moves a claimed device to group_id (0 = out of any group). STORE_NOTFOUND: device not claimed by
 * the tenant, or group not the tenant's. */
int store_device_move(store *s, int64_t tenant_id, const char *device_id, int64_t group_id,
                      const struct store_actor *a, json_t **out);
/* Blocks or unblocks a claimed device (idempotent). */
int store_device_set_blocked(store *s, int64_t tenant_id, const char *device_id, int blocked,
                             const struct store_actor *a, json_t **out);

/* --- device lifecycle (store_devices.c, store_devices_life.c, store_devices_drop.c) --- */
/* Tags of a registration: at most STORE_DEVICE_TAGS_MAX; a key is 1..64 bytes of [A-Za-z0-9._/-],
 * a value 0..128 bytes of UTF-8 without control characters. The device object shows them as
 * "tags": {key: value}. */
#define STORE_DEVICE_TAGS_MAX 16
#define STORE_DEVICE_TAG_KEY_MAX 64
#define STORE_DEVICE_TAG_VALUE_MAX 128
#define STORE_DEVICE_TAG_FILTERS_MAX 8
struct store_device_tag {
    const char *key;
    const char *value;
};
/* 1 when key and value are acceptable (above). */
int store_device_tag_ok(const char *key, const char *value);
/* A device list's filter: group_id 0 = any; state NULL = any; id_prefix NULL = any, else 1..64
 * lower-case hex characters (an index range); tags: every one must match (at most
 * STORE_DEVICE_TAG_FILTERS_MAX). */
struct store_device_filter {
    int64_t group_id;
    const char *state;
    const char *id_prefix;
    const struct store_device_tag *tags;
    size_t ntags;
};
/* store_device_list with the whole filter. STORE_INVALID for a malformed filter. */
int store_device_list_filtered(store *s, int64_t tenant_id, const struct store_device_filter *f,
                               const struct store_page *pg, json_t **items, char *next_cursor);
/* Returns the tenant's claimed registration of a device to unclaimed (out of its group, unblocked):
 * the device's certificates stop working at once (device mTLS needs a claimed device), its
 * registration, tags, attestation and transfer code stay. Idempotent on an unclaimed registration.
 * Audit device.unclaim. */
int store_device_unclaim(store *s, int64_t tenant_id, const char *device_id,
                         const struct store_actor *a, json_t **out);
/* A change of a registration (PATCH): the group when has_group (group_id 0 = none; needs a claimed
 * device), and the tags in tags, a JSON object whose string members set a tag and null members
 * remove one (NULL: no change). STORE_INVALID: a bad tag, or more than STORE_DEVICE_TAGS_MAX
 * after the change (nothing changed). Audit device.move, device.tag. */
struct store_device_patch {
    int has_group;
    int64_t group_id;
    const json_t *tags;
};
int store_device_patch(store *s, int64_t tenant_id, const char *device_id,
                       const struct store_device_patch *p, const struct store_actor *a,
                       json_t **out);
/* What deleting a registration removed (the audit row's detail). */
struct store_device_dropped {
    int64_t attestations;    /* records */
    int64_t reports;         /* telemetry reports */
    int64_t update_attempts; /* update status rows */
    int handed_over;         /* the registry row went to the tenant of the oldest other
                                registration instead of being deleted */
};
/* Deletes the tenant's registration of a device (docs/api.md "Deleting a device"): a shadow just
 * goes; the registry row goes with every record that names the device (attestation records,
 * telemetry reports, update attempts, transfer codes, tags, per-device telemetry marks), while the
 * aggregates (buckets' counts, device-hours, crash rates) keep what the device added; when another
 * tenant has a registration of the same key, the oldest such becomes the registry row instead (as
 * if the deleting tenant had never imported it) and only the deleting tenant's records go. The
 * device's certificates stop working at once. *out (may be NULL) gets what was removed.
 * STORE_NOTFOUND: no registration. Audit device.delete. */
int store_device_delete(store *s, int64_t tenant_id, const char *device_id,
                        const struct store_actor *a, struct store_device_dropped *out);
/* Deletes a tenant and everything it holds, in one transaction (docs/operations: aegisctl tenant
 * delete): its devices as store_device_delete (a key another tenant also registered is handed to
 * it), its shadows, tokens, products, groups, images' rows, TUF metadata, deployments, reference
 * values, minimums, attestation records, telemetry and aggregates, transfer codes, CAs and audit
 * log. Files (image bytes, CA keys) are the caller's to remove after. *devices (may be NULL) gets
 * the number of its registrations removed. STORE_NOTFOUND: no such tenant. */
int store_tenant_delete(store *s, int64_t tenant_id, int64_t *devices);

/* What device authentication needs to know of a device, in any tenant (devices authenticate before
 * a tenant is known). tenant_id is 0 while unclaimed; group_id and product_id are 0 when none. */
struct store_device_auth {
    int64_t tenant_id;
    int64_t group_id;
    int64_t product_id;
    int blocked;
    int64_t claimed_at; /* when the current tenant's claim began (unix s); 0 while unclaimed */
    char public_key_pem[512];
};
/* STORE_NOTFOUND for an unknown device, STORE_INVALID for a malformed id. */
int store_device_auth(store *s, const char *device_id, struct store_device_auth *out);
/* The generation of the device's registry state (store_device_auth's fields): it changes after
 * every committed change of them by any process on the database (import, claim, transfer, move,
 * block, unblock), so a copy of the state read after seeing generation g is current for as long as
 * the generation is still g. Devices share STORE_DEVGEN_SLOTS counters, so a change of one may
 * also change another's generation (never the reverse). A load from memory: no database access. */
#define STORE_DEVGEN_SLOTS 4096
uint64_t store_device_gen(store *s, const char *device_id);
/* 1 when the generations are shared with the other processes on the database (a file mapped
 * beside it), 0 when they only see this process's changes (the file could not be used: logged). */
int store_device_gen_shared(const store *s);
/* How many calls took a database connection so far (for tests: a path that must not touch the
 * database leaves it unchanged). */
uint64_t store_calls(const store *s);

/* --- audit log: {"id", "actor", "action", "object_type", "object_id", "detail" (object),
 * "created_at"} --- */
/* Newest first. */
int store_audit_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                     char *next_cursor);

/* --- device attestation (docs/protocol.md section 3): store_attest.c (nonces, an attempt's read
 * and record), store_refval.c (reference values, minimums), store_attest_records.c (records) ---
 * Measurements and reference values share one shape. Hex is lower-case; a component is 1..64 bytes
 * of [a-z0-9._-]; a version 1..32 printable ASCII characters (0x21..0x7e); svn 0..PROTO_SVN_MAX
 * (proto_fields.h). */
#define STORE_NONCE_LEN 32
#define STORE_NONCE_KEY_LEN 32 /* the MAC key of nonces (HMAC-SHA256) */

struct store_measurement {
    const char *stage;     /* "bootloader", "os" or "app" */
    const char *component; /* e.g. "aegis-os" */
    const char *version;   /* e.g. "1.2.0" */
    int64_t svn;
    const char *digest; /* 64 hex: SHA-256 of the image */
};

/* The MAC key of challenge nonces, into key: the database's, which is fresh (random bytes of the
 * caller's) when the database has none yet, so that every daemon on one database shares it. Never
 * log it. STORE_INVALID: a NULL argument. */
int store_nonce_key(store *s, const unsigned char fresh[STORE_NONCE_KEY_LEN], int64_t now,
                    unsigned char key[STORE_NONCE_KEY_LEN]);
/* Deletes at most max_rows (1..100000) used nonces that expired at or before now (the MAC check
 * refuses them from then on); *purged (may be NULL) gets their number. A caller that wants them
 * all calls again while *purged == max_rows. */
int store_nonce_purge(store *s, int64_t now, int max_rows, int *purged);

/* Reference values: {"id", "scope": "platform"|"tenant", "stage", "component", "version", "svn",
 * "digest", "created_at"}. Platform values (tenant_id 0: stages bootloader and os) belong to the
 * service operator (aegisctl); a tenant's values (stage app) to the tenant. */
/* Adds a value to the scope of tenant_id (0 = platform). STORE_INVALID: bad field, or a stage that
 * does not fit the scope; STORE_CONFLICT: the scope has (stage, component, version) already;
 * STORE_NOTFOUND: no such tenant. A tenant's value writes an audit row (refval.create); platform
 * values have no tenant audit log. */
int store_refval_add(store *s, int64_t tenant_id, const struct store_measurement *v,
                     const struct store_actor *a, json_t **out);
/* *ok = 1 when measurement m would pass attestation checks 7 and 8 for the tenant: it equals a
 * reference value (the platform's for bootloader and os, the tenant's for app) and its svn is not
 * below the tenant's minimum for its component. */
int store_refval_accepts(store *s, int64_t tenant_id, const struct store_measurement *m, int *ok);
/* Page, by id, of the platform values and (tenant_id > 0) the tenant's. */
int store_refval_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                      char *next_cursor);
/* Deletes value id of the scope of tenant_id: 0 deletes only platform values, a tenant only its own
 * (another tenant's or a platform value is STORE_NOTFOUND). Audit row refval.delete for tenants. */
int store_refval_delete(store *s, int64_t tenant_id, int64_t id, const struct store_actor *a);
/* Security minimums of a tenant: {"component", "min_svn", "updated_at"}. */
/* Creates or replaces the minimum svn of component (audit minimum.set). */
int store_minimum_set(store *s, int64_t tenant_id, const char *component, int64_t min_svn,
                      const struct store_actor *a, json_t **out);
/* Page ordered by component (the cursor is the last component shown). */
int store_minimum_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                       char *next_cursor);
/* STORE_NOTFOUND when the tenant has no minimum for component (audit minimum.delete). */
int store_minimum_delete(store *s, int64_t tenant_id, const char *component,
                         const struct store_actor *a);
/* What POST /v1/device/attest decides on (docs/protocol.md section 3.3), read in one call. */
/* One unexpired issuing CA of the device's tenant. */
struct store_attest_ca {
    char *cert_pem; /* malloc'd, owned by the context */
    char *key_name; /* the signer's name for the CA key; malloc'd, NULL if the row has none */
    int active;
};
struct store_attest_ctx {
    /* The nonce had not been used: it is used now. When 0 nothing below is read. */
    int nonce_ok;
    int registered; /* the device is in the registry; the fields up to tenant_name stay 0 if not */
    int64_t tenant_id; /* its owner, 0 while unclaimed */
    int blocked;
    char public_key_pem[512]; /* its identity key (as struct store_device_auth) */
    char tenant_name[129];    /* the owner's name (1..128 bytes), "" while unclaimed */
    char *device_root_pem;    /* the owner's device root (malloc'd), NULL if none yet */
    /* For each measurement of the call (the owner's policy; none for an unknown or unclaimed
     * device, whose reads are made all the same so that their time does not tell the registry): */
    int known[PROTO_EVENTS_MAX];       /* equals a reference value (platform values for
                                           bootloader and os, the owner's for app) */
    int64_t min_svn[PROTO_EVENTS_MAX]; /* the owner's minimum for its component, -1: none */
    struct store_attest_ca *cas;       /* the owner's unexpired CAs, active first, then
                                          newest first (malloc'd array of ncas) */
    size_t ncas;
};
/* Reads what an attempt of device_id with nonce (n measurements, 1..PROTO_EVENTS_MAX) is
 * decided on, at time now, in one transaction that first uses the nonce up: the caller has checked
 * its MAC and that it expires at expires_at (> now); the nonce is added to the used ones until
 * then, whatever the registry holds (of two concurrent uses one finds it added: nonce_ok 0, and
 * nothing else is read). The use commits even when a later read fails. STORE_OK with *out filled
 * (an unknown device is STORE_OK with registered 0); STORE_INVALID: malformed argument. Free *out
 * with store_attest_ctx_free, whatever the result. */
int store_attest_load(store *s, const char *device_id, const unsigned char nonce[STORE_NONCE_LEN],
                      int64_t expires_at, int64_t now, const struct store_measurement *m, size_t n,
                      struct store_attest_ctx *out);
/* Frees what *ctx owns (its CAs and device root) and clears them; ctx may be NULL. */
void store_attest_ctx_free(struct store_attest_ctx *ctx);

/* Attestation records: {"id", "device_id", "created_at", "result": "pass"|"fail", "reason": null |
 * string, "measurements": [event objects as presented], "certificate": null | {"serial",
 * "not_after"}, "peer": null | client address}. A device JSON shows its last one as "attestation":
 * null | {"at", "result", "reason"}. */
struct store_attestation {
    const char *device_id;
    int64_t at;
    int pass;
    const char *reason;         /* fail: 1..64 bytes (e.g. "bad_nonce"); NULL on pass */
    const json_t *measurements; /* a JSON array (borrowed), or NULL for [] */
    const char *cert_serial;    /* pass: the issued certificate's serial (hex) */
    int64_t cert_not_after;     /* pass: its notAfter */
    const char *peer;           /* the client address, or NULL */
};
/* Records one attempt and makes it the device's last attestation, in one transaction. The record
 * belongs to the tenant that sees the device: its owner, or while unclaimed its importer (a later
 * claim by another tenant does not carry the last attestation over). STORE_NOTFOUND: the device is
 * not in the registry. *id (may be NULL) gets the record's id. */
int store_attestation_record(store *s, const struct store_attestation *a, int64_t *id);
/* As store_attestation_record, made durable in groups (store_attest_sync.c): the record is
 * committed before this returns, without a flush of the write-ahead log; done(arg, rc) is then
 * called, from the store's syncer thread, once one flush has made it (with every record committed
 * before) durable: rc STORE_OK, or STORE_ERR (logged: durability unknown, acknowledge nothing; the
 * store stays so until a restart). Returns the commit's store code; done is called exactly once
 * when it is STORE_OK, and may run before this returns. store_close calls every pending done. */
typedef void (*store_durable_fn)(void *arg, int rc);
int store_attestation_record_durable(store *s, const struct store_attestation *a,
                                     store_durable_fn done, void *arg);
/* Page of the device's records, newest first. STORE_NOTFOUND: the device is not visible to the
 * tenant. */
int store_attestation_list_device(store *s, int64_t tenant_id, const char *device_id,
                                  const struct store_page *pg, json_t **items, char *next_cursor);
/* The device's current certificate into *out (the caller's): null when it has none, else
 * {"attestation_id", "issued_at", "serial", "not_after"} of its newest passed attestation since its
 * claim. STORE_NOTFOUND: the device is not visible to the tenant. */
int store_device_certificate(store *s, int64_t tenant_id, const char *device_id, json_t **out);
/* Page of the tenant's records, newest first; result NULL = any, else "pass" or "fail". */
int store_attestation_list(store *s, int64_t tenant_id, const char *result,
                           const struct store_page *pg, json_t **items, char *next_cursor);
/* Retention: deletes up to max_rows (1..100000) of the oldest records, those created before
 * `before`, in one transaction; *purged (may be NULL) gets the count. A device's last attestation
 * (its result in the registry) stays. Records are taken in id order, which follows creation time
 * (a clock stepped back only delays the records behind a younger one). */
int store_attestation_purge(store *s, int64_t before, int max_rows, int *purged);

/* --- failure reporting (store_tel_*.c; docs/telemetry.md) ---
 * Reports are stored once per (device, report_id), in one transaction per call, made durable by
 * store_telemetry_sync: a report the service acknowledges after it survives power loss. Crashes are
 * grouped into buckets per tenant by a signature, hex SHA-256 of "component|reason|pc|ra1|ra2|ra3"
 * with every address normalised (lower-case hex without leading zeros: "0x0800ABCD" -> "0x800abcd",
 * missing return addresses empty). Heartbeats add device-seconds per running image version and hour
 * (crash rate = crashes per device-hour). Times are those of receipt. */
/* The wire's limits are proto_telemetry.h's (PROTO_TEL_*); this is the buffer of a normalised
 * address. */
#define STORE_TEL_ADDR_LEN PROTO_TEL_ADDR_LEN

/* The wire's report types (proto_telemetry.h), under the store's names. */
enum store_report_type {
    STORE_REPORT_CRASH = PROTO_TEL_CRASH,
    STORE_REPORT_HEARTBEAT = PROTO_TEL_HEARTBEAT,
    STORE_REPORT_REBOOT = PROTO_TEL_REBOOT,
};
/* struct store_report.result after store_telemetry_ingest. */
enum store_report_result {
    STORE_REPORT_PENDING = 0,
    STORE_REPORT_STORED = 1,
    STORE_REPORT_DUPLICATE = 2,
};

/* The bucket signature (64 hex characters and a NUL into out) of a crash: component, reason and pc
 * as given (the caller passes normalised addresses), and the first PROTO_TEL_SIG_FRAMES of the nra
 * return addresses. */
void store_telemetry_signature(const char *component, const char *reason, const char *pc,
                               const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char out[65]);

/* One validated report (docs/telemetry.md section 1). Strings are borrowed; addresses
 * normalised. */
struct store_report {
    int64_t tenant_id;
    const char *device_id;
    int64_t group_id;   /* the device's, 0 when none */
    int64_t product_id; /* the device's, 0 when none */
    enum store_report_type type;
    int64_t report_id; /* 1 .. 2^53-1 */
    const char *boot_id;
    int64_t uptime_s;
    int64_t free_memory; /* crash and heartbeat */
    /* crash; reason is also the reboot's */
    const char *component;
    const char *image_version;
    const char *reason;
    char pc[STORE_TEL_ADDR_LEN];
    char lr[STORE_TEL_ADDR_LEN];
    char ra[PROTO_TEL_FRAMES_MAX][STORE_TEL_ADDR_LEN];
    size_t nra;
    const char *fault_registers; /* JSON object text {"name": "0x..."} */
    const char *message;         /* NULL when absent; message_len bytes of UTF-8 (may hold NUL) */
    size_t message_len;
    /* heartbeat */
    int64_t period_s;
    size_t nimages;
    const char *image_component[PROTO_TEL_IMAGES_MAX];
    const char *image_versions[PROTO_TEL_IMAGES_MAX];
    const char *images;   /* JSON object text {"component": "version"} */
    const char *counters; /* JSON object text {"name": n} */
    /* reboot */
    const char *previous_boot_id;
    /* set by store_telemetry_ingest */
    enum store_report_result result;
};
/* One upload (batch) of a device: its valid reports are reports[first .. first + nreports) of the
 * call. Its "dropped" count is added to the device's counter once: only when last_report_id is
 * above that of the last upload whose count was added, so a retry of an upload whose answer was
 * lost (the same reports) adds nothing, whether its reports were stored or rejected. */
struct store_upload {
    int64_t tenant_id;
    const char *device_id;
    int64_t dropped;        /* 0 .. 2^32-1 */
    int64_t last_report_id; /* the highest report_id of the upload, rejected reports included; 0
                               when none has one (its dropped count cannot be told from a retry's,
                               and is not added) */
    size_t first;
    size_t nreports;
};

/* The telemetry writer: the one writer of reports, with its own connection outside the pool (its
 * page cache stays warm between group commits), its cache of known buckets, and the flush of the
 * write-ahead log that makes its commits durable. Open one per process (server/device/ingest.c);
 * store_tel_writer_open returns STORE_OK, or STORE_ERR with the reason in err. Close it (accepts
 * NULL) when no call is in flight, before store_close: s must outlive it. Its calls are
 * thread-safe (serialised). */
typedef struct store_tel_writer store_tel_writer;
int store_tel_writer_open(store *s, store_tel_writer **out, char *err, size_t errlen);
void store_tel_writer_close(store_tel_writer *w);

/* Stores n reports and applies nup uploads in ONE transaction, received at time now:
 * each report is inserted unless (device, report_id) is stored already (or earlier in the same
 * call), and its result set to STORED or DUPLICATE; stored crashes update their bucket (created on
 * first sight), its devices and version counts; heartbeats and crashes update the usage per hour
 * and version. On any error nothing is stored (every result stays PENDING). STORE_INVALID: a
 * malformed report (checked before the transaction). */
int store_telemetry_ingest(store_tel_writer *w, struct store_report *const *reports, size_t n,
                           const struct store_upload *up, size_t nup, int64_t now);
/* The commit of store_telemetry_ingest is consistent but not yet durable: it reaches the
 * write-ahead log without waiting for the disk, so that the next group can be written while the
 * disk works. This call makes every ingest committed before it durable (one fdatasync of the log;
 * any thread may run it while the next ingest is written). Acknowledge reports only after it
 * returns STORE_OK. STORE_ERR (logged): durability unknown, acknowledge nothing. Once a flush has
 * failed, every later call fails too, and store_ping reports the store not ready, until the
 * process restarts (a failed flush may have dropped the pages it could not write). */
int store_telemetry_sync(store_tel_writer *w);
/* 0 while the last flush could not even open the log (the store is not ready until a flush
 * succeeds), else 1. */
int store_telemetry_log_ok(store_tel_writer *w);

enum store_bucket_sort {
    STORE_BUCKETS_BY_COUNT = 0,   /* most reports first */
    STORE_BUCKETS_BY_DEVICES = 1, /* most distinct devices first */
    STORE_BUCKETS_BY_RECENT = 2,  /* last seen first */
};
/* Filters of a bucket list: NULL / 0 = any. With only component (or nothing), the list shows the
 * buckets' all- time figures; with image_version, product_id, group_id, since or until, its figures
 * are counted over the stored reports that match (reports older than the retention are gone). since
 * inclusive, until exclusive. */
struct store_bucket_filter {
    const char *component;
    const char *image_version;
    int64_t product_id;
    int64_t group_id;
    int64_t since; /* inclusive; 0 = none */
    int64_t until; /* exclusive; INT64_MAX = none (0 is a bound: nothing before 1970) */
    enum store_bucket_sort sort;
};
/* Bucket: {"id", "signature", "component", "reason", "pc", "frames": [3 addresses at most],
 * "first_seen", "last_seen", "count", "devices"}. Page in the filter's order (ties by id). */
int store_bucket_list(store *s, int64_t tenant_id, const struct store_bucket_filter *f,
                      const struct store_page *pg, json_t **items, char *next_cursor);
/* A bucket with "versions": [{"image_version", "count", "first_seen", "last_seen"}] (most reports
 * first) and "samples": up to 10 of its stored reports, newest first. STORE_NOTFOUND: not the
 * tenant's. */
int store_bucket_get(store *s, int64_t tenant_id, int64_t id, json_t **out);

/* Report: {"id", "device_id", "report_id", "type", "boot_id", "uptime_s", "received_at"} and by
 * type: crash
 * {"component", "image_version", "reason", "pc", "lr", "return_addresses", "fault_registers",
 * "free_memory", "message", "bucket_id"}; heartbeat {"period_s", "free_memory", "images",
 * "counters"}; reboot {"reason", "previous_boot_id"}. */
/* Page of a device's reports, newest (highest report_id) first; type NULL = any. STORE_NOTFOUND:
 * the device is not visible to the tenant. */
int store_device_reports(store *s, int64_t tenant_id, const char *device_id, const char *type,
                         const struct store_page *pg, json_t **items, char *next_cursor);
/* Page of a device's update attempts in the tenant's deployments, newest first: {"deployment_id",
 * "attempt_id", "image", "wave", "state", "reason" (null | text), "created_at", "updated_at",
 * "finished_at" (null | time)}. STORE_NOTFOUND: the device is not visible to the tenant. */
int store_device_update_attempts(store *s, int64_t tenant_id, const char *device_id,
                                 const struct store_page *pg, json_t **items, char *next_cursor);
/* {"dropped", "reports", "last_upload" (null | time)} of a device visible to the tenant. */
int store_device_telemetry(store *s, int64_t tenant_id, const char *device_id, json_t **out);
/* Up to limit (1..PAGE_MAX) of the tenant's reports received in [since, until), in receipt order
 * after the keyset (*after_time, *after_id) (start with 0, 0), which is advanced to the last row
 * returned. *items gets the reports (fewer than limit: the end). For streaming exports: each call
 * is its own short read. */
int store_report_export(store *s, int64_t tenant_id, int64_t since, int64_t until,
                        int64_t *after_time, int64_t *after_id, int limit, json_t **items);

/* Crash rates of the tenant in [since, until) (hours), per period of granularity seconds (3600 or
 * 86400):
 * {"items": [{"component", "image_version", "period_start", "device_hours", "crashes",
 * "crash_rate"}], "versions": [{"component", "image_version", "first_seen", "device_hours",
 * "crashes", "crash_rate"}], "fleet": {"device_hours", "crashes", "crash_hours",
 * "crash_free_device_hours"}, "truncated": bool}. component NULL = all. crash_rate is crashes per
 * device-hour (null without device-hours); at most max_items items (truncated tells). */
int store_crash_rates(store *s, int64_t tenant_id, const char *component, int64_t since,
                      int64_t until, int64_t granularity, int max_items, json_t **out);

/* Flags: {"id", "kind": "new_bucket" | "rate_regression", "created_at", "bucket_id" (null | id),
 * "component", "image_version" (null | text), "previous_version" (null | text), "detail": {...}}.
 * Newest first. */
int store_flag_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                    char *next_cursor);
/* Raises (once) a new_bucket flag for every bucket of any tenant first seen at or after since and
 * seen on more than min_devices devices within its first hour. *raised gets the number of new
 * flags. */
int store_flag_new_buckets(store *s, int64_t since, int64_t min_devices, int64_t now, int *raised);
/* Raises (once) a rate_regression flag for every image version whose crash rate exceeds its
 * predecessor's (the version of the same component first seen before it) by more than factor_pct
 * percent of it, both with at least min_device_seconds of use and the version with at least one
 * crash. *raised as above. */
int store_flag_rate_regressions(store *s, int64_t factor_pct, int64_t min_device_seconds,
                                int64_t now, int *raised);
/* Deletes at most max_rows (1..100000) reports received before `before` (and the per-device
 * crash-hour marks of that age) in one short transaction; *purged gets the number of reports.
 * Aggregates stay. */
int store_report_purge(store *s, int64_t before, int max_rows, int *purged);

/* --- update images (docs/api.md "Images") --- */
/* What the manufacturer says an image is; sha256 and size come from its bytes. */
struct store_image {
    char sha256[65];
    int64_t size;
    int64_t product_id;
    char component[65]; /* proto_component_ok */
    char kind[4];       /* "os" or "app" */
    char version[33];   /* proto_version_ok */
    int64_t svn;        /* 0..2^32-1 */
    char hardware[65];  /* the hardware class, named like a component */
    /* app images only: also register the image as the tenant's reference value of its component
     * and version (stage app, digest = sha256), in the upload's transaction (store_image_ok) */
    int register_refval;
};
/* 1 if the manufacturer's fields of img are acceptable. */
int store_image_ok(const struct store_image *img);
/* An image's bytes on their way in: a temporary file under <dir>/tmp/ (made 0700 if missing) and
 * their running SHA-256. store_image_upload_begin returns NULL with a reason in err; every upload
 * ends in exactly one of store_image_upload_commit and store_image_upload_abort, which free it. */
typedef struct store_image_upload store_image_upload;
store_image_upload *store_image_upload_begin(const char *dir, char *err, size_t errlen);
/* Appends n bytes: 0, or -1 with the reason in err (a full disk, for example). */
int store_image_upload_write(store_image_upload *u, const void *p, size_t n, char *err,
                             size_t errlen);
/* Removes the temporary file and frees u (NULL: no-op). */
void store_image_upload_abort(store_image_upload *u);
/* Deletes what crashed uploads left in <dir>/tmp/: files no upload holds locked (each live upload
 * keeps an flock on its file, in any process on the host) and unwritten for a minute. *removed gets
 * their number. Returns 0, or -1 when the directory cannot be read. */
int store_image_sweep(const char *dir, int *removed);
/* Completes u as the tenant's image img (sha256 and size set from the bytes): the file becomes
 * <dir>/<tenant>/<sha256>, durable before its row commits. STORE_OK with *out (the image's JSON)
 * and *created 1, or 0 when the tenant had these bytes with the same fields already (idempotent);
 * STORE_CONFLICT when it had them with other fields; STORE_NOTFOUND when the product is not the
 * tenant's; STORE_INVALID for bad fields. u is freed and its temporary file gone in every case. */
int store_image_upload_commit(store *s, store_image_upload *u, int64_t tenant_id,
                              struct store_image *img, const struct store_actor *a, json_t **out,
                              int *created);
/* {"sha256", "size", "product_id", "component", "kind", "version", "svn", "hardware",
 * "created_at"}; STORE_NOTFOUND for another tenant's or a malformed sha256. */
int store_image_get(store *s, int64_t tenant_id, const char *sha256, json_t **out);
/* A page of the tenant's images, oldest first. */
int store_image_list(store *s, int64_t tenant_id, const struct store_page *pg, json_t **items,
                     char *next_cursor);
/* Opens the tenant's image sha256 for reading: STORE_OK with *fd (the caller's to close) and *size,
 * the file <dir>/<tenant>/<sha256> of the tenant's row, checked to be a regular file (no symlink)
 * of the row's size; STORE_NOTFOUND for a malformed sha256, another tenant's image, or a row whose
 * file is missing or not what the row says (logged); STORE_ERR. */
int store_image_open(store *s, const char *dir, int64_t tenant_id, const char *sha256, int *fd,
                     int64_t *size);
/* Deletes the row, then the file under dir. STORE_NOTFOUND as for store_image_get;
 * STORE_CONFLICT while a running, paused or halted deployment uses the image. */
int store_image_delete(store *s, const char *dir, int64_t tenant_id, const char *sha256,
                       const struct store_actor *a);

#endif
