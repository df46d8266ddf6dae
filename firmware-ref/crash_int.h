/* crash_int: the crash queue's internals, shared by crash.c (the stored queue and its records) and
 * crash_upload.c (batches and their answers). Private to firmware-ref/crash*. */
#ifndef ADEV_CRASH_INT_H
#define ADEV_CRASH_INT_H

#include "crash.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct adev_crashq {
    adev_storage *st;
    unsigned capacity;
    json_t *doc;        /* the stored queue (crash.h) */
    int64_t reserved;   /* every report_id given is below this */
    int booted;         /* adev_crash_boot ran on this object */
    uint32_t hb_uptime; /* uptime of the previous heartbeat of this boot */
    /* the batch in flight */
    int64_t inflight[PROTO_TEL_REPORTS_MAX];
    size_t n_inflight;
    int64_t sent_dropped; /* "dropped" of the batch */
};

/* An integer member of o, 0 when missing or not an integer. */
int64_t crash_get_int(const json_t *o, const char *key);
/* Sets an integer member: 0, or -1. */
int crash_set_int(json_t *o, const char *key, int64_t v);
/* Adds by to one of doc's counters, saturating at PROTO_TEL_COUNTER_MAX. */
void crash_bump(json_t *doc, const char *counter, int64_t by);
/* 1 when o's string member key equals s. */
int crash_same_str(json_t *o, const char *key, const char *s);
/* 1 when report r is of type t (enum proto_tel_type). */
int crash_is_type(json_t *r, enum proto_tel_type t);
/* A copy of the stored queue to change and then commit (caller owns it; NULL on failure). */
json_t *crash_copy_doc(const adev_crashq *q);
/* Writes next (stolen) as the queue, reserving report IDs first when next_id passes the
 * reservation. On success q->doc becomes next; on failure q is unchanged. 0 or -1. */
int crash_commit(adev_crashq *q, json_t *next);
/* Copies valid UTF-8 from s into out (max + 1 bytes): at most max bytes, never half a character,
 * each invalid byte replaced by '?'. Returns the length. */
size_t crash_clean_utf8(const char *s, char *out, size_t max);

#endif
