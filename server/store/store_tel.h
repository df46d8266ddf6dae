/* store_tel: what the telemetry files of the store share. Internal to server/store: ingest
 * (store_tel_ingest.c, the group-commit writes), queries (store_tel_query.c), retention
 * (store_tel_purge.c) and the writer's state (store_tel_writer.c). Same conventions as
 * store_int.h. */
#ifndef AEGIS_STORE_TEL_H
#define AEGIS_STORE_TEL_H

#include "store.h"
#include "store_agg.h"
#include "store_int.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_TEL_HOUR 3600
#define STORE_TEL_SIG_HEX 64 /* a bucket signature: hex SHA-256 */

/* --- rules (store_tel.c) --- */
/* The text a crash's signature hashes (component|reason|pc|ra1|ra2|ra3) into out (len bytes): its
 * length, or -1 when too long. */
int store__tel_sig_text(const char *component, const char *reason, const char *pc,
                        const char (*ra)[STORE_TEL_ADDR_LEN], size_t nra, char *out, size_t len);
/* The signature of a text from store__tel_sig_text into out. */
void store__tel_sig_digest(const char *text, size_t n, char out[STORE_TEL_SIG_HEX + 1]);
/* 1 when s (NUL-terminated, may be NULL) follows rule (a proto_*_ok of s and its length). */
int store__tel_text_ok(const char *s, int (*rule)(const char *, size_t));
/* 1 when r is a valid report (docs/telemetry.md section 1). */
int store__tel_report_ok(const struct store_report *r);
/* Steps the write statement st whose bindings bind_rc (OR of sqlite3_bind_*) set, and resets it. */
int store__tel_run_write(store *s, struct conn *c, sqlite3_stmt *st, int bind_rc, const char *what);
/* As store__bind_text, without a copy: for texts that outlive the statement's step (every
 * statement of the telemetry files is stepped and reset before its texts go away). */
int store__tel_bind_static(sqlite3_stmt *st, int i, const char *v);

/* --- the writer's state (store_tel_writer.c) --- */
/* Takes the writer's own connection for one ingest (waits while another call holds it). Give it
 * back with store__telw_give. */
struct conn *store__telw_take(store_tel_writer *w);
void store__telw_give(store_tel_writer *w, struct conn *c);
/* The store the writer writes to. */
store *store__telw_store(const store_tel_writer *w);
/* The buckets (tenant, signature text) the writer has seen committed, with their id (id) and
 * newest report (last), so that a known bucket's first report in a group needs no upsert. Only
 * between store__telw_take and store__telw_give; its user empties it before it would pass
 * STORE_TELW_BUCKETS_MAX entries. */
#define STORE_TELW_BUCKETS_MAX 16384
struct store_agg *store__telw_buckets(store_tel_writer *w);
/* Notes a commit of the writer: the store's checkpoints leave the log to it for a while (its
 * connection checkpoints by itself; store_checkpoint). */
void store__telw_committed(store_tel_writer *w);

#endif
