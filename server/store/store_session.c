/* store_session: dashboard sign-in sessions (store.h "sessions"; db/schema/0015_sessions.sql). Only
 * hashes of the session id and of the CSRF token reach the database. */
#include "store.h"
#include "store_int.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* Expired sessions go as new ones come: the sign-in path pays for the clean-up, a request never. */
static const char SQL_SESSION_EXPIRE[] = "DELETE FROM sessions WHERE expires_at <= ?1";
static const char SQL_SESSION_ADD[] =
    "INSERT INTO sessions (id_hash, token_id, tenant_id, csrf_hash, created_at, expires_at) "
    "SELECT ?1, id, tenant_id, ?3, ?4, ?5 FROM api_tokens WHERE id = ?2";
/* The token's state comes with the session, so one read decides a request. */
static const char SQL_SESSION_AUTH[] =
    "SELECT s.token_id, s.tenant_id, s.csrf_hash, s.created_at, s.expires_at, t.role, "
    "t.revoked_at IS NOT NULL, coalesce(t.expires_at, 0), coalesce(t.last_used_at, 0) "
    "FROM sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.id_hash = ?1";
static const char SQL_SESSION_DELETE[] = "DELETE FROM sessions WHERE id_hash = ?1";

int
store_session_create(store *s, const struct store_session *sess)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;
    int rc = STORE_INVALID;

    assert(sess != NULL);
    if (sess->expires_at <= sess->created_at || sess->token_id <= 0)
        goto out;
    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_SESSION_EXPIRE)) == NULL)
        goto out;
    if ((rc = store__bound(s, c, sqlite3_bind_int64(st, 1, sess->created_at))) != STORE_OK ||
        (rc = store__step_done(s, c, st, "session expire")) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_SESSION_ADD)) == NULL)
        goto out;
    rc = store__bound(s, c,
                      sqlite3_bind_blob(st, 1, sess->id_hash, 32, SQLITE_STATIC) |
                          sqlite3_bind_int64(st, 2, sess->token_id) |
                          sqlite3_bind_blob(st, 3, sess->csrf_hash, 32, SQLITE_STATIC) |
                          sqlite3_bind_int64(st, 4, sess->created_at) |
                          sqlite3_bind_int64(st, 5, sess->expires_at));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "session add");
    /* The INSERT ... SELECT adds nothing for a token that is gone. */
    if (rc == STORE_OK && sqlite3_changes(c->db) != 1)
        rc = STORE_NOTFOUND;
out:
    if (rc != STORE_INVALID)
        rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}

int
store_session_get_auth(store *s, const unsigned char id_hash[32], struct store_session *out,
                       struct store_token *tok)
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_SESSION_AUTH);
    int rc = STORE_ERR;

    memset(out, 0, sizeof(*out));
    memset(tok, 0, sizeof(*tok));
    if (st == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC));
    if (rc == STORE_OK)
        rc = store__step_row(s, c, st, "session load");
    if (rc != STORE_OK)
        goto out;
    const void *csrf = sqlite3_column_blob(st, 2);
    const unsigned char *role = sqlite3_column_text(st, 5);
    if (csrf == NULL || role == NULL || sqlite3_column_bytes(st, 2) != 32) {
        rc = store__db_error(s, c, "session load (bad row)");
        goto out;
    }
    memcpy(out->id_hash, id_hash, 32);
    out->token_id = sqlite3_column_int64(st, 0);
    out->tenant_id = sqlite3_column_int64(st, 1);
    memcpy(out->csrf_hash, csrf, 32);
    out->created_at = sqlite3_column_int64(st, 3);
    out->expires_at = sqlite3_column_int64(st, 4);
    tok->id = out->token_id;
    tok->tenant_id = out->tenant_id;
    snprintf(tok->role, sizeof(tok->role), "%s", (const char *)role);
    tok->revoked = sqlite3_column_int(st, 6) != 0;
    tok->expires_at = sqlite3_column_int64(st, 7);
    tok->last_used_at = sqlite3_column_int64(st, 8);
out:
    store__give(s, c);
    return rc;
}

int
store_session_delete(store *s, const unsigned char id_hash[32])
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = store__begin(s, c)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((st = store__prep(s, c, SQL_SESSION_DELETE)) == NULL)
        goto out;
    rc = store__bound(s, c, sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC));
    if (rc == STORE_OK)
        rc = store__step_done(s, c, st, "session delete");
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_NOTFOUND;
out:
    rc = store__end_tx(s, c, rc);
    store__give(s, c);
    return rc;
}
