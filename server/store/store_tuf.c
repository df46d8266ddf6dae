/* store_tuf: the tenants' TUF metadata files (store_tuf.h), one row per version of each role. */
#include "store_tuf.h"
#include "store_int.h"

#include "util.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define PUBLISH_MAX 8

static const char SQL_TUF_GET[] =
    "SELECT version, expires, body FROM tuf_meta WHERE tenant_id = ?1 AND repo = ?2 AND "
    "role = ?3 AND version = ?4";
static const char SQL_TUF_NEWEST[] =
    "SELECT version, expires, body FROM tuf_meta WHERE tenant_id = ?1 AND repo = ?2 AND "
    "role = ?3 ORDER BY version DESC LIMIT 1";
static const char SQL_TUF_ADD[] =
    "INSERT INTO tuf_meta (tenant_id, repo, role, version, expires, body, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_TUF_VERSION[] =
    "SELECT COALESCE(MAX(version), 0) FROM tuf_meta WHERE tenant_id = ?1 AND repo = ?2 AND "
    "role = ?3";
static const char SQL_TUF_TENANTS[] = "SELECT DISTINCT tenant_id FROM tuf_meta "
                                      "WHERE repo = 'image' AND role = 'timestamp' ORDER BY 1";

static const char *const ROLES[] = {"root", "targets", "snapshot", "timestamp"};

/* The static name of role, or NULL. */
static const char *
role_name(const char *role)
{
    for (size_t i = 0; role != NULL && i < sizeof(ROLES) / sizeof(ROLES[0]); i++)
        if (strcmp(role, ROLES[i]) == 0)
            return ROLES[i];
    return NULL;
}

static int
repo_ok(const char *repo)
{
    return repo != NULL &&
           (strcmp(repo, STORE_TUF_IMAGE) == 0 || strcmp(repo, STORE_TUF_DIRECTOR) == 0);
}

void
store_tuf_file_free(struct store_tuf_file *f)
{
    if (f == NULL)
        return;
    free(f->body);
    memset(f, 0, sizeof(*f));
}

/* Copies the current row of SQL_TUF_GET / SQL_TUF_NEWEST into out. */
static int
file_of_row(sqlite3_stmt *st, const char *role, struct store_tuf_file *out)
{
    const void *b = sqlite3_column_blob(st, 2);
    int n = sqlite3_column_bytes(st, 2);
    out->role = role;
    out->version = sqlite3_column_int64(st, 0);
    out->expires = sqlite3_column_int64(st, 1);
    out->len = (size_t)n;
    if ((out->body = malloc((size_t)n + 1)) == NULL)
        return STORE_ERR;
    if (n > 0)
        memcpy(out->body, b, (size_t)n);
    out->body[n] = '\0';
    return STORE_OK;
}

int
store_tuf_get(store *s, int64_t tenant_id, const char *repo, const char *role, int64_t version,
              struct store_tuf_file *out)
{
    const char *r = role_name(role);
    memset(out, 0, sizeof(*out));
    if (!repo_ok(repo) || r == NULL || version < 0)
        return STORE_INVALID;
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, version > 0 ? SQL_TUF_GET : SQL_TUF_NEWEST);
    int rc = STORE_ERR;
    if (st != NULL)
        rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, repo) |
                              store__bind_text(st, 3, r) |
                              (version > 0 ? sqlite3_bind_int64(st, 4, version) : SQLITE_OK));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "tuf get");
    if (rc == STORE_OK)
        rc = file_of_row(st, r, out);
    store__give(s, c);
    if (rc != STORE_OK)
        store_tuf_file_free(out);
    return rc;
}

static int
insert_file(store *s, struct conn *c, int64_t tenant_id, const char *repo,
            const struct store_tuf_file *f)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TUF_ADD);
    if (st == NULL)
        return STORE_ERR;
    int rc =
        store__bound(s, c,
                     sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, repo) |
                         store__bind_text(st, 3, f->role) | sqlite3_bind_int64(st, 4, f->version) |
                         sqlite3_bind_int64(st, 5, f->expires) |
                         sqlite3_bind_blob(st, 6, f->body, (int)f->len, SQLITE_STATIC) |
                         sqlite3_bind_int64(st, 7, util_now()));
    return rc == STORE_OK ? store__step_done(s, c, st, "tuf insert") : rc;
}

/* STORE_OK when the newest version of e's role is e->version, else STORE_CONFLICT. */
static int
check_expect(store *s, struct conn *c, int64_t tenant_id, const struct store_tuf_expect *e)
{
    sqlite3_stmt *st = store__prep(s, c, SQL_TUF_VERSION);
    if (st == NULL)
        return STORE_ERR;
    int rc = store__bound(s, c,
                          sqlite3_bind_int64(st, 1, tenant_id) | store__bind_text(st, 2, e->repo) |
                              store__bind_text(st, 3, e->role));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "tuf version");
    if (rc == STORE_OK && sqlite3_column_int64(st, 0) != e->version)
        rc = STORE_CONFLICT;
    return rc;
}

static int
expect_ok(const struct store_tuf_expect *expect, size_t n)
{
    if (n > PUBLISH_MAX || (n > 0 && expect == NULL))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!repo_ok(expect[i].repo) || role_name(expect[i].role) == NULL || expect[i].version < 0)
            return 0;
    return 1;
}

static int
files_ok(const struct store_tuf_file *files, size_t n)
{
    if (n < 1 || n > PUBLISH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (role_name(files[i].role) == NULL || files[i].version < 1 || files[i].body == NULL ||
            files[i].len > STORE_TUF_MAX_BYTES)
            return 0;
    return 1;
}

int
store_tuf_publish(store *s, int64_t tenant_id, const char *repo, const struct store_tuf_file *files,
                  size_t n, const struct store_tuf_expect *expect, size_t nexpect,
                  const struct store_actor *a, const char *action, json_t *detail)
{
    struct conn *c = NULL;
    int rc = STORE_INVALID;
    if (!repo_ok(repo) || !files_ok(files, n) || !expect_ok(expect, nexpect) || tenant_id <= 0 ||
        (action != NULL && !store__actor_ok(a)))
        goto out;
    c = store__take(s);
    if ((rc = store__begin(s, c)) != STORE_OK ||
        (rc = store__tenant_exists(s, c, tenant_id)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < nexpect && rc == STORE_OK; i++)
        rc = check_expect(s, c, tenant_id, &expect[i]);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = insert_file(s, c, tenant_id, repo, &files[i]);
    if (rc == STORE_OK && action != NULL) {
        rc = store__audit(s, c, tenant_id, a, action, "tuf", 0, repo, detail);
        detail = NULL;
    }
out:
    json_decref(detail);
    if (c != NULL) {
        rc = store__end_tx(s, c, rc);
        store__give(s, c);
    }
    return rc;
}

static int
tenant_row(sqlite3_stmt *st, void *elem)
{
    *(int64_t *)elem = sqlite3_column_int64(st, 0);
    return 0;
}

int
store_tuf_tenants(store *s, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_TUF_TENANTS);
    int rc = st != NULL
                 ? store__collect_rows(s, c, st, sizeof(int64_t), tenant_row, (void **)ids, n)
                 : STORE_ERR;
    store__give(s, c);
    if (rc != STORE_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}
