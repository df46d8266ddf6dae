/* Unit tests of the store's attestation part (server/store/store_attest.c, store_refval.c,
 * store_attest_records.c): the nonce key and used nonces, reference values, security minimums and
 * attestation records, on a fresh SQLite database per test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "app.h"
#include "log.h"
#include "store.h"
#include "test_db_files.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#define CURSOR_BUF 129
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define UNKNOWN "9999999999999999999999999999999999999999999999999999999999999999"
#define H_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define H_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fx {
    char dir[64];
    char path[128];
    store *s;
    int64_t ta, tb;
    struct store_actor a, b;
};

static const struct store_actor ctl = {0, "aegisctl"};

static void
import_dev(struct fx *f, int64_t tenant, const struct store_actor *a, const char *id, int claim)
{
    struct store_import_entry e = {id, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    assert_int_equal(store_device_import(f->s, tenant, &e, 1, claim, 0, a, &errors, &created),
                     STORE_OK);
    json_decref(errors);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-sat-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(f->s, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &f->ta), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "globex", &ctl, &f->tb), STORE_OK);
    f->a = (struct store_actor){f->ta, "token:1"};
    f->b = (struct store_actor){f->tb, "token:2"};
    import_dev(f, f->ta, &f->a, D1, 1);
    import_dev(f, f->ta, &f->a, D2, 1);
    import_dev(f, f->tb, &f->b, D3, 1);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_error_count(f->s), 0);
    store_close(f->s);
    test_rm_db(f->path, f->dir);
    free(f);
    return 0;
}

static void
nonce_of(unsigned char n[STORE_NONCE_LEN], unsigned seed)
{
    for (int i = 0; i < STORE_NONCE_LEN; i++)
        n[i] = (unsigned char)(seed * 31 + (unsigned)i);
}

static const char *
jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

/* The actions of the tenant's audit log, newest first, joined by spaces. */
static void
audit_actions(struct fx *f, int64_t tenant, char *out, size_t outlen)
{
    char next[CURSOR_BUF];
    struct store_page pg = {NULL, 1000};
    json_t *items = NULL, *it;
    size_t i;
    out[0] = '\0';
    assert_int_equal(store_audit_list(f->s, tenant, &pg, &items, next), STORE_OK);
    json_array_foreach(items, i, it)
    {
        size_t len = strlen(out);
        snprintf(out + len, outlen - len, "%s%s", len > 0 ? " " : "", jstr(it, "action"));
    }
    json_decref(items);
}

/* --- nonces --- */

/* A measurement for calls that only look at the nonce. */
static const struct store_measurement ANY_M = {"bootloader", "bl", "1", 0, H_A};

/* What store_attest_load says of the nonce (valid until expires): STORE_OK when it was unused
 * (and is used now), STORE_NOTFOUND when used, or the load's error. *registered (may be NULL)
 * gets what the load read of the device. */
static int
use(struct fx *f, const char *dev, const unsigned char n[STORE_NONCE_LEN], int64_t expires,
    int64_t now, int *registered)
{
    struct store_attest_ctx ctx;
    int rc = store_attest_load(f->s, dev, n, expires, now, &ANY_M, 1, &ctx);
    int ok = ctx.nonce_ok;
    if (registered != NULL)
        *registered = ctx.registered;
    if (rc == STORE_OK && !ok)
        assert_false(ctx.registered); /* a used nonce reads nothing */
    store_attest_ctx_free(&ctx);
    return rc != STORE_OK ? rc : ok ? STORE_OK : STORE_NOTFOUND;
}

static void
test_nonce_single_use(void **state)
{
    struct fx *f = *state;
    unsigned char n[STORE_NONCE_LEN];
    int64_t now = util_now();
    int reg = -1;
    nonce_of(n, 1);
    assert_int_equal(use(f, "ABC", n, now + 60, now, NULL), STORE_INVALID);
    assert_int_equal(use(f, D1, n, now, now, NULL), STORE_INVALID); /* expired */
    assert_int_equal(use(f, D1, n, now + 60, now, &reg), STORE_OK);
    assert_true(reg);
    assert_int_equal(use(f, D1, n, now + 60, now, NULL), STORE_NOTFOUND);
    /* The set holds nonces, not (device, nonce) pairs: the MAC binds a nonce to its device. */
    assert_int_equal(use(f, D2, n, now + 60, now, NULL), STORE_NOTFOUND);
}

/* The nonce is used before anything depends on the registry: an unknown, unclaimed or blocked
 * device uses it up like any other. */
static void
test_nonce_used_whatever_the_registry(void **state)
{
    struct fx *f = *state;
    unsigned char n[STORE_NONCE_LEN];
    int64_t now = util_now();
    int reg = -1;
    const char *d4 = "4444444444444444444444444444444444444444444444444444444444444444";

    import_dev(f, f->ta, &f->a, d4, 0);
    assert_int_equal(store_device_set_blocked(f->s, f->ta, D2, 1, &f->a, NULL), STORE_OK);
    const char *devs[] = {UNKNOWN, d4, D2};
    for (unsigned i = 0; i < 3; i++) {
        nonce_of(n, 20 + i);
        assert_int_equal(use(f, devs[i], n, now + 60, now, &reg), STORE_OK);
        assert_int_equal(reg, i > 0);
        assert_int_equal(use(f, devs[i], n, now + 60, now, NULL), STORE_NOTFOUND);
    }
}

/* Nothing is kept per device: any number of other nonces leaves a device's nonce usable. */
static void
test_nonce_not_evicted(void **state)
{
    struct fx *f = *state;
    unsigned char n[STORE_NONCE_LEN], other[STORE_NONCE_LEN];
    int64_t now = util_now();
    nonce_of(n, 30);
    for (unsigned i = 0; i < 20; i++) {
        nonce_of(other, 100 + i);
        assert_int_equal(use(f, i % 2 ? D1 : UNKNOWN, other, now + 60, now, NULL), STORE_OK);
    }
    assert_int_equal(use(f, D1, n, now + 60, now, NULL), STORE_OK);
}

static void
test_nonce_purge_in_batches(void **state)
{
    struct fx *f = *state;
    unsigned char n[STORE_NONCE_LEN];
    int64_t now = util_now();
    int purged = -1;
    for (unsigned i = 0; i < 9; i++) {
        nonce_of(n, 40 + i);
        /* used 10 s ago; every third is still valid */
        assert_int_equal(use(f, D1, n, i % 3 == 2 ? now + 600 : now - 1, now - 10, NULL), STORE_OK);
    }
    assert_int_equal(store_nonce_purge(f->s, now, 0, &purged), STORE_INVALID);
    assert_int_equal(store_nonce_purge(f->s, now, 4, &purged), STORE_OK);
    assert_int_equal(purged, 4);
    assert_int_equal(store_nonce_purge(f->s, now, 4, &purged), STORE_OK);
    assert_int_equal(purged, 2);
    assert_int_equal(store_nonce_purge(f->s, now, 4, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    /* The unexpired stay used; the purged ones are refused by their expiry (the MAC check). */
    for (unsigned i = 2; i < 9; i += 3) {
        nonce_of(n, 40 + i);
        assert_int_equal(use(f, D1, n, now + 600, now, NULL), STORE_NOTFOUND);
    }
}

/* The first key stays: a later daemon's fresh key is ignored, after a reopen too. */
static void
test_nonce_key(void **state)
{
    struct fx *f = *state;
    unsigned char k1[STORE_NONCE_KEY_LEN], k2[STORE_NONCE_KEY_LEN], key[STORE_NONCE_KEY_LEN];
    char err[256] = "";
    memset(k1, 1, sizeof(k1));
    memset(k2, 2, sizeof(k2));
    assert_int_equal(store_nonce_key(f->s, NULL, 0, key), STORE_INVALID);
    assert_int_equal(store_nonce_key(f->s, k1, util_now(), key), STORE_OK);
    assert_memory_equal(key, k1, sizeof(key));
    assert_int_equal(store_nonce_key(f->s, k2, util_now(), key), STORE_OK);
    assert_memory_equal(key, k1, sizeof(key));
    store_close(f->s);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    memset(key, 0, sizeof(key));
    assert_int_equal(store_nonce_key(f->s, k2, util_now(), key), STORE_OK);
    assert_memory_equal(key, k1, sizeof(key));
}

/* --- reference values --- */

static struct store_measurement
meas(const char *stage, const char *component, const char *version, int64_t svn, const char *digest)
{
    struct store_measurement m = {stage, component, version, svn, digest};
    return m;
}

/* Loads the context of an attempt of dev with a fresh nonce and measurements m[0..n). */
static int
load(struct fx *f, const char *dev, const struct store_measurement *m, size_t n,
     struct store_attest_ctx *ctx)
{
    static unsigned seq = 1000;
    unsigned char nonce[STORE_NONCE_LEN];
    int64_t now = util_now();
    nonce_of(nonce, seq++);
    int rc = store_attest_load(f->s, dev, nonce, now + 60, now, m, n, ctx);
    assert_true(rc != STORE_OK || ctx->nonce_ok);
    return rc;
}

/* The reference-value verdict of m[0..n) for a device of the tenant (D1 of A, D3 of B): STORE_OK
 * when every measurement is known, else STORE_NOTFOUND with *idx the first unknown one. */
static int
match(struct fx *f, int64_t tenant, const struct store_measurement *m, size_t n, size_t *idx)
{
    struct store_attest_ctx ctx;
    int rc = load(f, tenant == f->ta ? D1 : D3, m, n, &ctx);
    for (*idx = 0; rc == STORE_OK && *idx < n; (*idx)++)
        if (!ctx.known[*idx]) {
            rc = STORE_NOTFOUND;
            break;
        }
    store_attest_ctx_free(&ctx);
    return rc;
}

/* The minimum verdict, as match: STORE_CONFLICT with *idx and *min of the first below. */
static int
below(struct fx *f, int64_t tenant, const struct store_measurement *m, size_t n, size_t *idx,
      int64_t *min)
{
    struct store_attest_ctx ctx;
    int rc = load(f, tenant == f->ta ? D1 : D3, m, n, &ctx);
    for (*idx = 0; rc == STORE_OK && *idx < n; (*idx)++)
        if (m[*idx].svn < ctx.min_svn[*idx]) {
            *min = ctx.min_svn[*idx];
            rc = STORE_CONFLICT;
            break;
        }
    store_attest_ctx_free(&ctx);
    return rc;
}

static int64_t
add_refval(struct fx *f, int64_t tenant, struct store_measurement m)
{
    json_t *o = NULL;
    const struct store_actor *a = tenant == 0 ? &ctl : (tenant == f->ta ? &f->a : &f->b);
    assert_int_equal(store_refval_add(f->s, tenant, &m, a, &o), STORE_OK);
    assert_string_equal(jstr(o, "scope"), tenant == 0 ? "platform" : "tenant");
    assert_string_equal(jstr(o, "digest"), m.digest);
    assert_int_equal(json_integer_value(json_object_get(o, "svn")), m.svn);
    int64_t id = json_integer_value(json_object_get(o, "id"));
    json_decref(o);
    return id;
}

/* The ids of a tenant's reference value list (all pages of 2), as "1 2 3". */
static void
refval_ids(struct fx *f, int64_t tenant, char *out, size_t outlen)
{
    char cursor[CURSOR_BUF] = "", next[CURSOR_BUF];
    out[0] = '\0';
    for (;;) {
        struct store_page pg = {cursor[0] ? cursor : NULL, 2};
        json_t *items = NULL, *it;
        size_t i;
        assert_int_equal(store_refval_list(f->s, tenant, &pg, &items, next), STORE_OK);
        json_array_foreach(items, i, it)
        {
            size_t len = strlen(out);
            snprintf(out + len, outlen - len, "%s%lld", len ? " " : "",
                     (long long)json_integer_value(json_object_get(it, "id")));
        }
        json_decref(items);
        if (next[0] == '\0')
            return;
        memcpy(cursor, next, sizeof(cursor));
    }
}

/* What the load reads of an unknown, unclaimed or blocked device (its nonce is used up first). */
static void
test_load_device_states(void **state)
{
    struct fx *f = *state;
    struct store_attest_ctx ctx;
    unsigned char n[STORE_NONCE_LEN];
    int64_t now = util_now();
    const char *d4 = "4444444444444444444444444444444444444444444444444444444444444444";

    nonce_of(n, 7);
    assert_int_equal(store_attest_load(f->s, "x", n, now + 60, now, &ANY_M, 1, &ctx),
                     STORE_INVALID);
    assert_int_equal(store_attest_load(f->s, D1, n, now + 60, now, &ANY_M, 0, &ctx), STORE_INVALID);
    assert_int_equal(load(f, UNKNOWN, &ANY_M, 1, &ctx), STORE_OK);
    assert_false(ctx.registered);
    assert_int_equal(ctx.tenant_id, 0);
    assert_int_equal(ctx.ncas, 0);
    store_attest_ctx_free(&ctx);

    import_dev(f, f->ta, &f->a, d4, 0);
    assert_int_equal(load(f, d4, &ANY_M, 1, &ctx), STORE_OK);
    assert_true(ctx.registered);
    assert_int_equal(ctx.tenant_id, 0);
    assert_string_equal(ctx.tenant_name, "");
    assert_false(ctx.known[0]);
    assert_int_equal(ctx.min_svn[0], -1);
    store_attest_ctx_free(&ctx);

    assert_int_equal(store_device_set_blocked(f->s, f->ta, D1, 1, &f->a, NULL), STORE_OK);
    assert_int_equal(load(f, D1, &ANY_M, 1, &ctx), STORE_OK);
    assert_true(ctx.registered);
    assert_true(ctx.blocked);
    assert_int_equal(ctx.tenant_id, f->ta);
    store_attest_ctx_free(&ctx);
}

/* The owner's name, its key and its unexpired CAs, the active one first. */
static void
test_load_owner_and_cas(void **state)
{
    struct fx *f = *state;
    struct store_attest_ctx ctx;
    int64_t now = util_now(), id = 0;

    assert_int_equal(
        store_ca_add(f->s, f->ta, "old", "tenants/1/ca-1", now - 10, now + 100, 1, &ctl, &id),
        STORE_OK);
    assert_int_equal(
        store_ca_add(f->s, f->ta, "expired", "tenants/1/ca-0", now - 99, now - 1, 0, &ctl, &id),
        STORE_OK);
    assert_int_equal(
        store_ca_add(f->s, f->ta, "new", "tenants/1/ca-2", now - 10, now + 200, 1, &ctl, &id),
        STORE_OK);
    assert_int_equal(load(f, D1, &ANY_M, 1, &ctx), STORE_OK);
    assert_int_equal(ctx.tenant_id, f->ta);
    assert_string_equal(ctx.tenant_name, "acme");
    assert_string_equal(ctx.public_key_pem, PEM);
    assert_int_equal(ctx.ncas, 2);
    assert_string_equal(ctx.cas[0].cert_pem, "new");
    assert_string_equal(ctx.cas[0].key_name, "tenants/1/ca-2");
    assert_true(ctx.cas[0].active);
    assert_string_equal(ctx.cas[1].cert_pem, "old");
    assert_false(ctx.cas[1].active);
    assert_false(ctx.known[0]);
    assert_int_equal(ctx.min_svn[0], -1);
    store_attest_ctx_free(&ctx);
    assert_null(ctx.cas);
    store_attest_ctx_free(&ctx); /* idempotent */
    /* Tenant B has no CA. */
    assert_int_equal(load(f, D3, &ANY_M, 1, &ctx), STORE_OK);
    assert_int_equal(ctx.ncas, 0);
    assert_string_equal(ctx.tenant_name, "globex");
    store_attest_ctx_free(&ctx);
}

static void
test_refvals_scopes(void **state)
{
    struct fx *f = *state;
    json_t *o = NULL;
    char ids[128], want[128], actions[256];
    struct store_measurement bl = meas("bootloader", "aegis-bl", "1.0.0", 1, H_A);
    struct store_measurement app = meas("app", "thermo", "2.0", 3, H_B);

    int64_t p1 = add_refval(f, 0, bl);
    int64_t a1 = add_refval(f, f->ta, app);
    int64_t b1 = add_refval(f, f->tb, app); /* the same app value, another tenant: fine */
    int64_t p2 = add_refval(f, 0, meas("os", "aegis-os", "2.3.1", 7, H_C));
    /* Stages must fit the scope; duplicates conflict; fields are checked. */
    struct store_measurement bad = meas("os", "aegis-os", "9", 1, H_A);
    assert_int_equal(store_refval_add(f->s, f->ta, &bad, &f->a, &o), STORE_INVALID);
    assert_int_equal(store_refval_add(f->s, 0, &app, &ctl, &o), STORE_INVALID);
    assert_int_equal(store_refval_add(f->s, 0, &bl, &ctl, &o), STORE_CONFLICT);
    assert_int_equal(store_refval_add(f->s, f->ta, &app, &f->a, &o), STORE_CONFLICT);
    const struct store_measurement invalid[] = {
        meas("app", "Thermo", "1", 1, H_A),
        meas("app", "", "1", 1, H_A),
        meas("app", "t", "", 1, H_A),
        meas("app", "t", "1 0", 1, H_A),
        meas("app", "t", "1", -1, H_A),
        meas("app", "t", "1", 4294967296LL, H_A),
        meas("app", "t", "1", 1, "AA"),
        meas("kernel", "t", "1", 1, H_A),
        meas("app", "t", "1", 1, H_A "a"),
        meas("app", "t", "123456789012345678901234567890123", 1, H_A),
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(store_refval_add(f->s, f->ta, &invalid[i], &f->a, &o), STORE_INVALID);
    assert_null(o);
    /* Lists: platform + own. */
    refval_ids(f, f->ta, ids, sizeof(ids));
    snprintf(want, sizeof(want), "%lld %lld %lld", (long long)p1, (long long)a1, (long long)p2);
    assert_string_equal(ids, want);
    refval_ids(f, 0, ids, sizeof(ids));
    snprintf(want, sizeof(want), "%lld %lld", (long long)p1, (long long)p2);
    assert_string_equal(ids, want);
    /* Deletes: another tenant's or a platform value is not found. */
    assert_int_equal(store_refval_delete(f->s, f->ta, b1, &f->a), STORE_NOTFOUND);
    assert_int_equal(store_refval_delete(f->s, f->ta, p1, &f->a), STORE_NOTFOUND);
    assert_int_equal(store_refval_delete(f->s, 0, a1, &ctl), STORE_NOTFOUND);
    assert_int_equal(store_refval_delete(f->s, f->ta, a1, &f->a), STORE_OK);
    assert_int_equal(store_refval_delete(f->s, f->ta, a1, &f->a), STORE_NOTFOUND);
    assert_int_equal(store_refval_delete(f->s, 0, p2, &ctl), STORE_OK);
    refval_ids(f, f->tb, ids, sizeof(ids));
    snprintf(want, sizeof(want), "%lld %lld", (long long)p1, (long long)b1);
    assert_string_equal(ids, want);
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_non_null(strstr(actions, "refval.delete refval.create"));
    /* A malformed cursor. */
    struct store_page pg = {"x", 10};
    json_t *items = NULL;
    char next[CURSOR_BUF];
    assert_int_equal(store_refval_list(f->s, f->ta, &pg, &items, next), STORE_INVALID);
}

static void
test_refvals_match(void **state)
{
    struct fx *f = *state;
    size_t idx = 99;
    add_refval(f, 0, meas("bootloader", "aegis-bl", "1.0.0", 1, H_A));
    add_refval(f, 0, meas("os", "aegis-os", "2.3.1", 7, H_B));
    add_refval(f, f->ta, meas("app", "thermo", "2.0", 3, H_C));
    add_refval(f, f->tb, meas("app", "globex-app", "1", 1, H_C));

    struct store_measurement m[3] = {meas("bootloader", "aegis-bl", "1.0.0", 1, H_A),
                                     meas("os", "aegis-os", "2.3.1", 7, H_B),
                                     meas("app", "thermo", "2.0", 3, H_C)};
    assert_int_equal(match(f, f->ta, m, 3, &idx), STORE_OK);
    /* Tenant B's values do not cover tenant A's app. */
    assert_int_equal(match(f, f->tb, m, 3, &idx), STORE_NOTFOUND);
    assert_int_equal(idx, 2);
    struct store_measurement g = meas("app", "globex-app", "1", 1, H_C);
    m[2] = g;
    assert_int_equal(match(f, f->ta, m, 3, &idx), STORE_NOTFOUND);
    assert_int_equal(idx, 2);
    assert_int_equal(match(f, f->tb, m, 3, &idx), STORE_OK);
    /* Every field counts. */
    const struct store_measurement wrong[] = {
        meas("os", "aegis-os", "2.3.1", 8, H_B), meas("os", "aegis-os", "2.3.2", 7, H_B),
        meas("os", "aegis-os", "2.3.1", 7, H_A), meas("os", "aegis-bl", "2.3.1", 7, H_B),
        meas("bootloader", "aegis-os", "2.3.1", 7, H_B)};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        m[1] = wrong[i];
        assert_int_equal(match(f, f->tb, m, 3, &idx), STORE_NOTFOUND);
        assert_int_equal(idx, 1);
    }
    assert_int_equal(match(f, f->ta, m, 0, &idx), STORE_INVALID);
}

/* --- security minimums --- */

static void
test_minimums(void **state)
{
    struct fx *f = *state;
    json_t *o = NULL, *items = NULL;
    char next[CURSOR_BUF], actions[256];
    size_t idx = 0;
    int64_t min = 0;

    assert_int_equal(store_minimum_set(f->s, f->ta, "thermo", 5, &f->a, &o), STORE_OK);
    assert_string_equal(jstr(o, "component"), "thermo");
    assert_int_equal(json_integer_value(json_object_get(o, "min_svn")), 5);
    json_decref(o);
    assert_int_equal(store_minimum_set(f->s, f->ta, "thermo", 6, &f->a, &o), STORE_OK);
    json_decref(o);
    assert_int_equal(store_minimum_set(f->s, f->ta, "aegis-os", 2, &f->a, NULL), STORE_OK);
    assert_int_equal(store_minimum_set(f->s, f->tb, "thermo", 100, &f->b, NULL), STORE_OK);
    assert_int_equal(store_minimum_set(f->s, f->ta, "Bad", 1, &f->a, NULL), STORE_INVALID);
    assert_int_equal(store_minimum_set(f->s, f->ta, "x", -1, &f->a, NULL), STORE_INVALID);
    assert_int_equal(store_minimum_set(f->s, f->ta, "x", 4294967296LL, &f->a, NULL), STORE_INVALID);

    /* Listed by component, one page of 1 at a time. */
    struct store_page pg = {NULL, 1};
    assert_int_equal(store_minimum_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "component"), "aegis-os");
    assert_string_equal(next, "aegis-os");
    json_decref(items);
    pg.cursor = "aegis-os";
    assert_int_equal(store_minimum_list(f->s, f->ta, &pg, &items, next), STORE_OK);
    assert_string_equal(jstr(json_array_get(items, 0), "component"), "thermo");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "min_svn")), 6);
    assert_string_equal(next, "");
    json_decref(items);

    struct store_measurement m[3] = {meas("bootloader", "aegis-bl", "1", 0, H_A),
                                     meas("os", "aegis-os", "2", 2, H_B),
                                     meas("app", "thermo", "3", 6, H_C)};
    assert_int_equal(below(f, f->ta, m, 3, &idx, &min), STORE_OK);
    m[2].svn = 5;
    assert_int_equal(below(f, f->ta, m, 3, &idx, &min), STORE_CONFLICT);
    assert_int_equal(idx, 2);
    assert_int_equal(min, 6);
    m[1].svn = 1;
    assert_int_equal(below(f, f->ta, m, 3, &idx, &min), STORE_CONFLICT);
    assert_int_equal(idx, 1);
    assert_int_equal(min, 2);

    assert_int_equal(store_minimum_delete(f->s, f->ta, "aegis-os", &f->a), STORE_OK);
    assert_int_equal(store_minimum_delete(f->s, f->ta, "aegis-os", &f->a), STORE_NOTFOUND);
    assert_int_equal(store_minimum_delete(f->s, f->ta, "nothing", &f->a), STORE_NOTFOUND);
    assert_int_equal(below(f, f->ta, m, 2, &idx, &min), STORE_OK);
    audit_actions(f, f->ta, actions, sizeof(actions));
    assert_non_null(strstr(actions, "minimum.delete minimum.set minimum.set minimum.set"));
}

/* --- attestation records --- */

static struct store_attestation
rec(const char *device, int64_t at, const char *reason)
{
    struct store_attestation r = {device,
                                  at,
                                  reason == NULL,
                                  reason,
                                  NULL,
                                  reason == NULL ? "0a1b2c" : NULL,
                                  reason == NULL ? at + 86400 : 0,
                                  "127.0.0.1"};
    return r;
}

/* The "attestation" of a device as the tenant sees it (new reference). */
static json_t *
last_of(struct fx *f, int64_t tenant, const char *device)
{
    json_t *d = NULL;
    assert_int_equal(store_device_get(f->s, tenant, device, &d), STORE_OK);
    json_t *a = json_incref(json_object_get(d, "attestation"));
    assert_non_null(a);
    json_decref(d);
    return a;
}

static void
test_attestation_records(void **state)
{
    struct fx *f = *state;
    json_t *items = NULL, *last, *m = json_pack("[{s:s}]", "stage", "bootloader");
    char next[CURSOR_BUF];
    int64_t id = 0, now = util_now();

    last = last_of(f, f->ta, D1);
    assert_true(json_is_null(last));
    json_decref(last);

    struct store_attestation r1 = rec(D1, now - 10, "bad_nonce");
    r1.measurements = m;
    assert_int_equal(store_attestation_record(f->s, &r1, &id), STORE_OK);
    assert_true(id > 0);
    struct store_attestation r2 = rec(D1, now, NULL);
    assert_int_equal(store_attestation_record(f->s, &r2, NULL), STORE_OK);
    struct store_attestation r3 = rec(D3, now, "rollback");
    assert_int_equal(store_attestation_record(f->s, &r3, NULL), STORE_OK);
    struct store_attestation unknown = rec(UNKNOWN, now, "bad_nonce");
    assert_int_equal(store_attestation_record(f->s, &unknown, NULL), STORE_NOTFOUND);
    struct store_attestation bad = rec(D1, now, NULL);
    bad.reason = "x"; /* a pass has no reason */
    assert_int_equal(store_attestation_record(f->s, &bad, NULL), STORE_INVALID);
    bad = rec(D1, now, "");
    assert_int_equal(store_attestation_record(f->s, &bad, NULL), STORE_INVALID);

    last = last_of(f, f->ta, D1);
    assert_string_equal(jstr(last, "result"), "pass");
    assert_true(json_is_null(json_object_get(last, "reason")));
    jstr(last, "at");
    json_decref(last);

    /* Per device, newest first, pages of 1. */
    struct store_page pg = {NULL, 1};
    assert_int_equal(store_attestation_list_device(f->s, f->ta, D1, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_t *it = json_array_get(items, 0);
    assert_string_equal(jstr(it, "result"), "pass");
    assert_string_equal(jstr(json_object_get(it, "certificate"), "serial"), "0a1b2c");
    assert_string_equal(jstr(it, "peer"), "127.0.0.1");
    assert_true(json_is_array(json_object_get(it, "measurements")));
    json_decref(items);
    assert_true(next[0] != '\0');
    pg.cursor = next;
    char cur[CURSOR_BUF];
    memcpy(cur, next, sizeof(cur));
    pg.cursor = cur;
    assert_int_equal(store_attestation_list_device(f->s, f->ta, D1, &pg, &items, next), STORE_OK);
    it = json_array_get(items, 0);
    assert_string_equal(jstr(it, "reason"), "bad_nonce");
    assert_true(json_is_null(json_object_get(it, "certificate")));
    assert_true(json_equal(json_object_get(it, "measurements"), m));
    assert_string_equal(next, "");
    json_decref(items);
    /* Another tenant: the device is not found, and its own list does not show it. */
    pg.cursor = NULL;
    pg.limit = 100;
    assert_int_equal(store_attestation_list_device(f->s, f->tb, D1, &pg, &items, next),
                     STORE_NOTFOUND);
    assert_int_equal(store_attestation_list(f->s, f->tb, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "device_id"), D3);
    json_decref(items);
    /* Filter by result. */
    assert_int_equal(store_attestation_list(f->s, f->ta, "fail", &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(store_attestation_list(f->s, f->ta, NULL, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 2);
    json_decref(items);
    assert_int_equal(store_attestation_list(f->s, f->ta, "maybe", &pg, &items, next),
                     STORE_INVALID);
    json_decref(m);
}

/* Retention deletes old records in batches, oldest first; the device keeps its last result. */
static void
test_attestation_purge(void **state)
{
    struct fx *f = *state;
    json_t *items = NULL, *last;
    char next[CURSOR_BUF];
    int64_t now = util_now(), day = 86400;
    int purged = -1;

    struct store_attestation r1 = rec(D1, now - 100 * day, "bad_nonce");
    assert_int_equal(store_attestation_record(f->s, &r1, NULL), STORE_OK);
    struct store_attestation r2 = rec(D1, now - 95 * day, NULL);
    assert_int_equal(store_attestation_record(f->s, &r2, NULL), STORE_OK);
    struct store_attestation r3 = rec(D1, now - 10 * day, "rollback");
    assert_int_equal(store_attestation_record(f->s, &r3, NULL), STORE_OK);
    assert_int_equal(store_attestation_purge(f->s, now - 90 * day, 1, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_attestation_purge(f->s, now - 90 * day, 1, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_attestation_purge(f->s, now - 90 * day, 1, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_attestation_purge(f->s, now, 0, &purged), STORE_INVALID);
    struct store_page pg = {NULL, 100};
    assert_int_equal(store_attestation_list_device(f->s, f->ta, D1, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "reason"), "rollback");
    json_decref(items);
    /* every record gone: the registry still has the last result */
    assert_int_equal(store_attestation_purge(f->s, now + 1, 1000, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    last = last_of(f, f->ta, D1);
    assert_string_equal(jstr(last, "result"), "fail");
    assert_string_equal(jstr(last, "reason"), "rollback");
    json_decref(last);
    /* records stamped in the future (a clock that jumped) at the lowest ids do not hold up the old
     * ones behind them */
    for (int i = 0; i < 3; i++) {
        struct store_attestation fut = rec(D1, now + 400 * day, NULL);
        assert_int_equal(store_attestation_record(f->s, &fut, NULL), STORE_OK);
    }
    struct store_attestation old = rec(D1, now - 200 * day, NULL);
    assert_int_equal(store_attestation_record(f->s, &old, NULL), STORE_OK);
    assert_int_equal(store_attestation_purge(f->s, now - 90 * day, 2, &purged), STORE_OK);
    assert_int_equal(purged, 1);
}

static void
test_attestation_of_unclaimed_device(void **state)
{
    struct fx *f = *state;
    const char *d = "4444444444444444444444444444444444444444444444444444444444444444";
    json_t *items = NULL, *last;
    char next[CURSOR_BUF];
    struct store_page pg = {NULL, 100};

    import_dev(f, f->ta, &f->a, d, 0); /* imported by A, not claimed */
    struct store_attestation r = rec(d, util_now(), "not_claimed");
    assert_int_equal(store_attestation_record(f->s, &r, NULL), STORE_OK);
    /* The importer sees it. */
    assert_int_equal(store_attestation_list_device(f->s, f->ta, d, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    last = last_of(f, f->ta, d);
    assert_string_equal(jstr(last, "reason"), "not_claimed");
    json_decref(last);
    /* Transferred to another tenant: it does not inherit the importer's record. */
    json_t *dev = NULL;
    const char *code_hash = "1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(
        store_device_transfer_create(f->s, f->ta, d, code_hash, util_now() + 60, &f->a), STORE_OK);
    assert_int_equal(store_device_claim_transfer(f->s, f->tb, d, 0, code_hash, &f->b, &dev),
                     STORE_OK);
    assert_true(json_is_null(json_object_get(dev, "attestation")));
    json_decref(dev);
    assert_int_equal(store_attestation_list_device(f->s, f->tb, d, &pg, &items, next), STORE_OK);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

int
main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nonce_single_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_used_whatever_the_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_not_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_purge_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_device_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_owner_and_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refvals_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refvals_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestation_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestation_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestation_of_unclaimed_device, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
