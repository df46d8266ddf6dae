/* sg_ilog: the issuance log of sg_ilog.h. Each line is
 *   {"seq":N,"time":T,"kind":K,"tenant":I,"subject":S,"serial":H,"issuer":N,"not_after":T,
 *    "prev":"<hex SHA-256 of the previous line without its newline, 64 zeros for the first>"}
 * The chain makes a line changed or removed before the last one visible; the last line itself is
 * protected only by the lines that come after it (and by the file's permissions). */
#include "sg_ilog.h"

#include "errbuf.h"
#include "proto_fields.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The longest line (records are a few hundred bytes: every string field is bounded). */
#define ILOG_LINE_MAX 1024
#define ILOG_FIELD_MAX 96
#define ILOG_HEX (2 * crypto_hash_sha256_BYTES)

struct sg_ilog {
    int fd;
    int pending; /* appended since the last sync */
    int failed;  /* a write or sync failed: the file's tail is unknown, refuse everything */
    int64_t seq; /* of the last line */
    char prev[ILOG_HEX + 1];
    char path[PATH_MAX];
};

static void
line_hash(const char *line, size_t len, char hex[ILOG_HEX + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)line, len);
    proto_hex(h, sizeof(h), hex);
    hex[ILOG_HEX] = '\0';
}

/* The seq and prev of one line (its bytes without the newline). 0, or -1 with the reason in why. */
static int
line_fields(const char *line, size_t len, int64_t *seq, const char **why, char prev[ILOG_HEX + 1])
{
    json_error_t je;
    json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    json_t *s = json_object_get(j, "seq");
    const char *p = json_string_value(json_object_get(j, "prev"));
    int rc = -1;
    if (j == NULL)
        *why = "not JSON";
    else if (!json_is_integer(s) || json_integer_value(s) < 1)
        *why = "no positive seq";
    else if (p == NULL || strlen(p) != ILOG_HEX)
        *why = "no prev hash";
    else {
        *seq = json_integer_value(s);
        memcpy(prev, p, ILOG_HEX + 1);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* Reads the last line of the open log (size bytes) to continue its chain. */
static int
read_tail(sg_ilog *l, off_t size, char *err, size_t errlen)
{
    char buf[ILOG_LINE_MAX + 2], prev[ILOG_HEX + 1];
    const char *why = NULL;
    size_t n = size > ILOG_LINE_MAX + 1 ? ILOG_LINE_MAX + 1 : (size_t)size;
    off_t at = size - (off_t)n;
    if (n == 0) {
        memset(l->prev, '0', ILOG_HEX);
        return 0;
    }
    if (pread(l->fd, buf, n, at) != (ssize_t)n) {
        errbuf_set(err, errlen, "issuance log %s: cannot read: %s", l->path, strerror(errno));
        return -1;
    }
    if (buf[n - 1] != '\n') {
        errbuf_set(err, errlen,
                   "issuance log %s: the last line has no newline (a torn write): check the file "
                   "and cut the partial line before the signer may append",
                   l->path);
        return -1;
    }
    size_t start = n - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && at > 0)
        why = "the last line is too long";
    else if (line_fields(buf + start, n - 1 - start, &l->seq, &why, prev) == 0)
        line_hash(buf + start, n - 1 - start, l->prev);
    if (why != NULL) {
        errbuf_set(err, errlen, "issuance log %s: last line: %s", l->path, why);
        return -1;
    }
    return 0;
}

sg_ilog *
sg_ilog_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    sg_ilog *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        errbuf_set(err, errlen, "issuance log: out of memory");
        return NULL;
    }
    l->fd = -1;
    if (path == NULL || snprintf(l->path, sizeof(l->path), "%s", path) >= (int)sizeof(l->path)) {
        errbuf_set(err, errlen, "issuance log: no path or a path too long");
        goto fail;
    }
    l->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l->fd < 0 || fstat(l->fd, &st) != 0) {
        errbuf_set(err, errlen, "issuance log %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        errbuf_set(err, errlen,
                   "issuance log %s: not a regular file of mode 0600 (others may read or write it)",
                   path);
        goto fail;
    }
    if (read_tail(l, st.st_size, err, errlen) != 0)
        goto fail;
    return l;
fail:
    sg_ilog_close(l);
    return NULL;
}

void
sg_ilog_close(sg_ilog *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l);
}

static int
field_ok(const char *s)
{
    return s != NULL && *s != '\0' && strnlen(s, ILOG_FIELD_MAX + 1) <= ILOG_FIELD_MAX;
}

/* The record's line (malloc'd, without a newline) continuing the chain, or NULL. */
static char *
format_line(const sg_ilog *l, const struct sg_ilog_rec *r)
{
    json_t *j =
        json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:I, s:s}", "seq", (json_int_t)l->seq + 1,
                  "time", (json_int_t)r->time, "kind", r->kind, "tenant", (json_int_t)r->tenant_id,
                  "subject", r->subject, "serial", r->serial_hex, "issuer", r->issuer, "not_after",
                  (json_int_t)r->not_after, "prev", l->prev);
    char *line = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return line;
}

int
sg_ilog_append(sg_ilog *l, const struct sg_ilog_rec *r, char *err, size_t errlen)
{
    int rc = -1;
    char *line = NULL;
    if (l->failed) {
        errbuf_set(err, errlen, "issuance log %s: an earlier write failed", l->path);
        goto out;
    }
    if (r->kind == NULL || (strcmp(r->kind, "device_cert") != 0 && strcmp(r->kind, "ca") != 0) ||
        !field_ok(r->subject) || !field_ok(r->serial_hex) || !field_ok(r->issuer)) {
        errbuf_set(err, errlen, "issuance log: malformed record");
        goto out;
    }
    line = format_line(l, r);
    size_t len = line != NULL ? strlen(line) : 0;
    if (line == NULL || len >= ILOG_LINE_MAX) {
        errbuf_set(err, errlen, "issuance log: cannot format the record");
        goto out;
    }
    line[len] = '\n'; /* the NUL's byte: the line goes out in one write */
    ssize_t w;
    do
        w = write(l->fd, line, len + 1);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(len + 1)) {
        l->failed = 1;
        errbuf_set(err, errlen, "issuance log %s: write: %s", l->path,
                   w < 0 ? strerror(errno) : "short write");
        goto out;
    }
    line_hash(line, len, l->prev);
    l->seq++;
    l->pending = 1;
    rc = 0;
out:
    free(line);
    return rc;
}

int
sg_ilog_sync_begin(sg_ilog *l)
{
    if (l->failed)
        return -1;
    int pending = l->pending;
    l->pending = 0;
    return pending;
}

int
sg_ilog_sync_end(sg_ilog *l, int synced, char *err, size_t errlen)
{
    if (synced && !l->failed)
        return 0;
    l->failed = 1;
    errbuf_set(err, errlen, "issuance log %s: %s", l->path,
               synced ? "an earlier write failed" : "fdatasync failed");
    return -1;
}

int
sg_ilog_fd(const sg_ilog *l)
{
    return l->fd;
}

int
sg_ilog_sync(sg_ilog *l, char *err, size_t errlen)
{
    int pending = sg_ilog_sync_begin(l);
    if (pending == 0)
        return 0;
    if (pending < 0)
        return sg_ilog_sync_end(l, 1, err, errlen);
    int e = fdatasync(l->fd) == 0 ? 0 : errno;
    if (e != 0) {
        sg_ilog_sync_end(l, 0, err, errlen);
        errbuf_set(err, errlen, "issuance log %s: fdatasync: %s", l->path, strerror(e));
        return -1;
    }
    return 0;
}

/* Checks one line (len bytes, no newline) as record number *n + 1 after the hash prev. */
static int
verify_line(const char *line, size_t len, size_t n, char prev[ILOG_HEX + 1], char *err,
            size_t errlen)
{
    char want[ILOG_HEX + 1];
    int64_t seq = 0;
    const char *why = NULL;
    if (line_fields(line, len, &seq, &why, want) == 0) {
        if (seq != (int64_t)n + 1)
            why = "seq out of order (a line removed or inserted)";
        else if (strcmp(want, prev) != 0)
            why = "prev is not the hash of the line before (a line changed or removed)";
    }
    if (why != NULL) {
        errbuf_set(err, errlen, "issuance log: line %zu: %s", n + 1, why);
        return -1;
    }
    line_hash(line, len, prev);
    return 0;
}

int
sg_ilog_verify(const char *path, size_t *lines, char *err, size_t errlen)
{
    int rc = -1;
    char prev[ILOG_HEX + 1];
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    FILE *f = fopen(path, "re");
    *lines = 0;
    if (f == NULL) {
        errbuf_set(err, errlen, "issuance log %s: %s", path, strerror(errno));
        goto out;
    }
    memset(prev, '0', ILOG_HEX);
    prev[ILOG_HEX] = '\0';
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n' || len > ILOG_LINE_MAX) {
            errbuf_set(err, errlen, "issuance log: line %zu: %s", n + 1,
                       line[len - 1] != '\n' ? "no newline (a torn write)" : "too long");
            goto out;
        }
        if (verify_line(line, (size_t)len - 1, n, prev, err, errlen) != 0)
            goto out;
        n++;
    }
    if (ferror(f)) {
        errbuf_set(err, errlen, "issuance log %s: read error", path);
        goto out;
    }
    *lines = n;
    rc = 0;
out:
    free(line);
    if (f != NULL)
        fclose(f);
    return rc;
}
