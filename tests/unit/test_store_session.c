/* Unit tests of dashboard sessions in the store (store_session.c, migration 0015): hashes in,
 * token state out, bound to the token, expired ones swept, deleted with the tenant. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fx.h"

static int64_t
make_token(struct fx *f, int64_t tenant, const char *role)
{
    unsigned char h[32];
    int64_t id = 0;
    memset(h, (int)tenant, sizeof(h));
    assert_int_equal(store_token_create(f->s, tenant, "ui", role, h, actor_of(f, tenant), &id),
                     STORE_OK);
    return id;
}

static struct store_session
session_of(int64_t token, unsigned char tag, int64_t created, int64_t expires)
{
    struct store_session s;
    memset(&s, 0, sizeof(s));
    memset(s.id_hash, tag, sizeof(s.id_hash));
    memset(s.csrf_hash, tag ^ 0xff, sizeof(s.csrf_hash));
    s.token_id = token;
    s.created_at = created;
    s.expires_at = expires;
    return s;
}

static int64_t
count_sessions(struct fx *f)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void
test_create_and_load(void **state)
{
    struct fx *f = *state;
    int64_t tok = make_token(f, f->tb, "operator");
    struct store_session in = session_of(tok, 0x11, 1000, 2000), out;
    struct store_token t;
    assert_int_equal(store_session_create(f->s, &in), STORE_OK);
    assert_int_equal(store_session_get_auth(f->s, in.id_hash, &out, &t), STORE_OK);
    assert_int_equal(out.token_id, tok);
    assert_int_equal(out.tenant_id, f->tb); /* the token's tenant, whatever the caller says */
    assert_memory_equal(out.csrf_hash, in.csrf_hash, 32);
    assert_int_equal(out.created_at, 1000);
    assert_int_equal(out.expires_at, 2000);
    assert_int_equal(t.id, tok);
    assert_int_equal(t.tenant_id, f->tb);
    assert_string_equal(t.role, "operator");
    assert_int_equal(t.revoked, 0);
    assert_int_equal(t.expires_at, 0);
    /* another id hash: no such session */
    unsigned char other[32];
    memset(other, 0x12, sizeof(other));
    assert_int_equal(store_session_get_auth(f->s, other, &out, &t), STORE_NOTFOUND);
    /* the same id twice is refused (the primary key), not overwritten */
    struct store_session dup = session_of(tok, 0x11, 1000, 3000);
    assert_int_equal(store_session_create(f->s, &dup), STORE_CONFLICT);
    assert_int_equal(count_sessions(f), 1);
}

static void
test_bad_arguments(void **state)
{
    struct fx *f = *state;
    int64_t tok = make_token(f, f->ta, "reader");
    struct store_session s = session_of(tok, 0x21, 1000, 1000);
    assert_int_equal(store_session_create(f->s, &s), STORE_INVALID);
    s = session_of(999999, 0x22, 1000, 2000); /* no such token */
    assert_int_equal(store_session_create(f->s, &s), STORE_NOTFOUND);
    assert_int_equal(count_sessions(f), 0);
}

static void
test_bound_to_the_token(void **state)
{
    struct fx *f = *state;
    int64_t tok = make_token(f, f->ta, "admin");
    struct store_session in = session_of(tok, 0x31, 1000, 5000), out;
    struct store_token t;
    assert_int_equal(store_session_create(f->s, &in), STORE_OK);
    assert_int_equal(store_token_revoke(f->s, f->ta, tok, &f->a), STORE_OK);
    assert_int_equal(store_session_get_auth(f->s, in.id_hash, &out, &t), STORE_OK);
    assert_int_equal(t.revoked, 1); /* the caller refuses it */
    assert_string_equal(t.role, "admin");
}

static void
test_expired_swept_on_create(void **state)
{
    struct fx *f = *state;
    int64_t tok = make_token(f, f->ta, "reader");
    struct store_session a = session_of(tok, 0x41, 1000, 2000);
    struct store_session b = session_of(tok, 0x42, 1000, 9000);
    assert_int_equal(store_session_create(f->s, &a), STORE_OK);
    assert_int_equal(store_session_create(f->s, &b), STORE_OK);
    assert_int_equal(count_sessions(f), 2);
    struct store_session c = session_of(tok, 0x43, 2000, 3000); /* a expires at 2000: swept */
    assert_int_equal(store_session_create(f->s, &c), STORE_OK);
    assert_int_equal(count_sessions(f), 2);
    struct store_session out;
    struct store_token t;
    assert_int_equal(store_session_get_auth(f->s, a.id_hash, &out, &t), STORE_NOTFOUND);
    assert_int_equal(store_session_get_auth(f->s, b.id_hash, &out, &t), STORE_OK);
}

static void
test_delete(void **state)
{
    struct fx *f = *state;
    int64_t tok = make_token(f, f->ta, "reader");
    struct store_session a = session_of(tok, 0x51, 1000, 9000), out;
    struct store_token t;
    assert_int_equal(store_session_create(f->s, &a), STORE_OK);
    assert_int_equal(store_session_delete(f->s, a.id_hash), STORE_OK);
    assert_int_equal(store_session_get_auth(f->s, a.id_hash, &out, &t), STORE_NOTFOUND);
    assert_int_equal(store_session_delete(f->s, a.id_hash), STORE_NOTFOUND);
}

static void
test_tenant_delete_takes_its_sessions(void **state)
{
    struct fx *f = *state;
    int64_t ta = make_token(f, f->ta, "reader"), tb = make_token(f, f->tb, "reader");
    struct store_session a = session_of(ta, 0x61, 1000, 9000);
    struct store_session b = session_of(tb, 0x62, 1000, 9000), out;
    struct store_token t;
    assert_int_equal(store_session_create(f->s, &a), STORE_OK);
    assert_int_equal(store_session_create(f->s, &b), STORE_OK);
    int64_t devices = -1;
    assert_int_equal(store_tenant_delete(f->s, f->ta, &devices), STORE_OK);
    assert_int_equal(store_session_get_auth(f->s, a.id_hash, &out, &t), STORE_NOTFOUND);
    assert_int_equal(store_session_get_auth(f->s, b.id_hash, &out, &t), STORE_OK);
    assert_int_equal(count_sessions(f), 1);
}

int
main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_to_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_swept_on_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_delete_takes_its_sessions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
