/* The fixture of the telemetry store's unit tests (test_store_telemetry_*.c): a fresh SQLite
 * database in a temp directory per test with its telemetry writer, two tenants (acme with devices
 * D1 and D2, globex with D3), report slots the tests fill (mk_crash, mk_heartbeat) and ingest,
 * and JSON field readers. Its functions are static inline so that each test file compiles only
 * what it uses. */
#ifndef AEGIS_TEST_STORE_TELEMETRY_FX_H
#define AEGIS_TEST_STORE_TELEMETRY_FX_H

#include "log.h"
#include "schema.h"
#include "store.h"
#include "test_db_files.h"
#include "store_int.h"
#include "util.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEM                                                                                        \
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
#undef CURSOR_BUF /* store_int.h: the store's minimum; the tests use a larger buffer */
#define CURSOR_BUF 129
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define BOOT "0123456789abcdef0123456789abcdef"
#define T0 1800000000LL /* an hour start: 2027-01-15T08:00:00Z */
#define MAXR 64

struct fx {
    char dir[64];
    char path[128];
    store *s;
    store_tel_writer *w;
    int64_t ta, tb;
    struct store_actor a, b;
    struct store_report r[MAXR];
    struct store_report *p[MAXR];
};

static const struct store_actor ctl = {0, "aegisctl"};

static inline void
import_dev(struct fx *f, int64_t tenant, const struct store_actor *a, const char *id)
{
    struct store_import_entry e = {id, PEM};
    json_t *errors = NULL;
    size_t created = 0;
    assert_int_equal(store_device_import(f->s, tenant, &e, 1, 1, 0, a, &errors, &created),
                     STORE_OK);
    json_decref(errors);
}

static inline int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256] = "";
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aegis-stel-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/aegis.db", f->dir);
    assert_int_equal(store_open(f->path, 3, &f->s, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(f->s, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tel_writer_open(f->s, &f->w, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "acme", &ctl, &f->ta), STORE_OK);
    assert_int_equal(store_tenant_create(f->s, "globex", &ctl, &f->tb), STORE_OK);
    f->a = (struct store_actor){f->ta, "token:1"};
    f->b = (struct store_actor){f->tb, "token:2"};
    import_dev(f, f->ta, &f->a, D1);
    import_dev(f, f->ta, &f->a, D2);
    import_dev(f, f->tb, &f->b, D3);
    for (int i = 0; i < MAXR; i++)
        f->p[i] = &f->r[i];
    *state = f;
    return 0;
}

static inline int
teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_error_count(f->s), 0);
    store_tel_writer_close(f->w);
    store_close(f->s);
    test_rm_db(f->path, f->dir);
    free(f);
    return 0;
}

static inline int64_t
tenant_of(const struct fx *f, const char *dev)
{
    return strcmp(dev, D3) == 0 ? f->tb : f->ta;
}

/* Fills report slot i as a crash of dev. */
static inline struct store_report *
mk_crash(struct fx *f, int i, const char *dev, int64_t rid, const char *version, const char *pc)
{
    struct store_report *r = &f->r[i];
    memset(r, 0, sizeof(*r));
    r->tenant_id = tenant_of(f, dev);
    r->device_id = dev;
    r->type = STORE_REPORT_CRASH;
    r->report_id = rid;
    r->boot_id = BOOT;
    r->uptime_s = 10;
    r->component = "aegis-app";
    r->image_version = version;
    r->reason = "hardfault";
    assert_int_equal(proto_tel_addr_norm(pc, strlen(pc), r->pc), 0);
    snprintf(r->lr, sizeof(r->lr), "0x1");
    snprintf(r->ra[0], sizeof(r->ra[0]), "0x8001000");
    snprintf(r->ra[1], sizeof(r->ra[1]), "0x8002000");
    r->nra = 2;
    r->fault_registers = "{\"cfsr\":\"0x8200\"}";
    r->free_memory = 100;
    r->message = "boom, \"quoted\"";
    r->message_len = strlen(r->message);
    return r;
}

static inline struct store_report *
mk_heartbeat(struct fx *f, int i, const char *dev, int64_t rid, const char *version, int64_t period)
{
    struct store_report *r = &f->r[i];
    memset(r, 0, sizeof(*r));
    r->tenant_id = tenant_of(f, dev);
    r->device_id = dev;
    r->type = STORE_REPORT_HEARTBEAT;
    r->report_id = rid;
    r->boot_id = BOOT;
    r->uptime_s = period;
    r->period_s = period;
    r->free_memory = 100;
    r->nimages = 1;
    r->image_component[0] = "aegis-app";
    r->image_versions[0] = version;
    r->images = "{\"aegis-app\":\"x\"}";
    r->counters = "{}";
    return r;
}

/* An upload of reports first .. first + n - 1 of the fixture, its last_report_id their highest. */
static inline struct store_upload
upload_of(const struct fx *f, const char *dev, int64_t tenant, int64_t dropped, size_t first,
          size_t n)
{
    struct store_upload u = {tenant, dev, dropped, 0, first, n};
    for (size_t i = first; i < first + n; i++)
        if (f->r[i].report_id > u.last_report_id)
            u.last_report_id = f->r[i].report_id;
    return u;
}

/* Ingests reports 0..n-1 (one upload per device run is not needed here: no uploads). */
static inline void
ingest(struct fx *f, size_t n, int64_t now)
{
    assert_int_equal(store_telemetry_ingest(f->w, f->p, n, NULL, 0, now), STORE_OK);
}

static inline json_t *
bucket_list(struct fx *f, int64_t tenant, const struct store_bucket_filter *flt, int limit,
            const char *cursor, char *next)
{
    struct store_page pg = {cursor, limit};
    json_t *items = NULL;
    assert_int_equal(store_bucket_list(f->s, tenant, flt, &pg, &items, next), STORE_OK);
    return items;
}

static inline int64_t
jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static inline double
jreal(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static inline const char *
jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    assert_non_null(v);
    return v;
}

#endif
