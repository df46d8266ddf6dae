#include "log.h"

#include "log_json.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The log destination is process configuration, set at start and on SIGHUP. */
static enum log_level cur_level = LOG_INFO;
static int log_fd = STDERR_FILENO;
static char log_path[4096];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_format cur_format = LOG_FORMAT_TEXT;
static int to_journal; /* log_fd is journald's stream: priority prefixes, no timestamps */

/* Room for a context value as written: quoted and escaped at worst. */
#define CTX_FMT_MAX (LOG_CTX_MAX * 4 + 8)
/* What a caller's text may take of a line; the context and the line's head come on top. */
#define BODY_MAX 2048
#define LINE_MAX (BODY_MAX * 4)

/* The thread's request context (log.h), kept as written into a line. */
static _Thread_local char ctx_req[CTX_FMT_MAX], ctx_dev[CTX_FMT_MAX];

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* sd-daemon(3)'s SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR. */
static const int journal_prio[] = {7, 6, 4, 3};
static const char *const format_names[] = {"text", "json"};

/* The index of s in names[0..n), or -1. */
static int
name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int
log_parse_level(const char *s, enum log_level *out)
{
    int i = name_index(level_names, 4, s);
    if (i >= 0)
        *out = (enum log_level)i;
    return i >= 0 ? 0 : -1;
}

void
log_set_level(enum log_level lvl)
{
    cur_level = lvl;
}

int
log_enabled(enum log_level lvl)
{
    return lvl >= cur_level;
}

int
log_parse_format(const char *s, enum log_format *out)
{
    int i = name_index(format_names, 2, s);
    if (i >= 0)
        *out = (enum log_format)i;
    return i >= 0 ? 0 : -1;
}

void
log_set_format(enum log_format f)
{
    cur_format = f;
}

/* Whether fd is the stream systemd connected to the journal: $JOURNAL_STREAM is "<dev>:<ino>" of
 * it (systemd.exec(5)). A descriptor inherited by a child that redirected stderr does not match. */
static int
is_journal_stream(int fd)
{
    const char *env = getenv("JOURNAL_STREAM");
    char *colon = NULL, *end = NULL;
    struct stat st;
    if (env == NULL || env[0] < '0' || env[0] > '9')
        return 0;
    errno = 0;
    unsigned long long dev = strtoull(env, &colon, 10);
    if (*colon != ':' || colon[1] < '0' || colon[1] > '9')
        return 0;
    unsigned long long ino = strtoull(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || fstat(fd, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int
open_path(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

int
log_open(const char *path)
{
    int rc = -1;
    pthread_mutex_lock(&log_lock);
    if (path == NULL || *path == '\0') {
        log_path[0] = '\0';
        if (log_fd != STDERR_FILENO)
            close(log_fd);
        log_fd = STDERR_FILENO;
        to_journal = is_journal_stream(STDERR_FILENO);
        rc = 0;
        goto out;
    }
    if (strlen(path) >= sizeof(log_path))
        goto out;
    int fd = open_path(path);
    if (fd < 0)
        goto out;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    to_journal = 0;
    snprintf(log_path, sizeof(log_path), "%s", path);
    rc = 0;
out:
    pthread_mutex_unlock(&log_lock);
    return rc;
}

int
log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&log_lock);
    if (log_path[0] != '\0') {
        int fd = open_path(log_path);
        if (fd < 0) {
            rc = -1;
        } else {
            if (log_fd != STDERR_FILENO)
                close(log_fd);
            log_fd = fd;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

/* The escaped form of the character at p into out (at most 4 bytes); *used gets how many input
 * bytes it took. Returns the length written. */
static size_t
escape_one(const unsigned char *p, char *out, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = util_utf8_char_len((const char *)p);
    *used = n > 0 ? n : 1;
    if (*p == '"' || *p == '\\') {
        out[0] = '\\';
        out[1] = (char)*p;
        return 2;
    }
    if (*p == '\n' || *p == '\r' || *p == '\t') {
        out[0] = '\\';
        out[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        return 2;
    }
    if (n == 0 || *p < 0x20 || *p == 0x7F) {
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[*p >> 4];
        out[3] = hex[*p & 15];
        return 4;
    }
    memcpy(out, p, n);
    return n;
}

/* Whether all of p, escaped, fits in room bytes. */
static int
fits_whole(const unsigned char *p, size_t room)
{
    size_t total = 0, used;
    char tmp[4];
    for (; *p != '\0' && total <= room; p += used)
        total += escape_one(p, tmp, &used);
    return total <= room;
}

const char *
log_quote(char *buf, size_t len, const char *s)
{
    assert(len >= 8); /* room for "..." between quotes */
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    /* Two quotes and the NUL; when cut, the "..." too. */
    size_t room = fits_whole(p, len - 3) ? len - 3 : len - 6, o = 0;
    buf[o++] = '"';
    while (*p != '\0') {
        char tmp[4];
        size_t used, n = escape_one(p, tmp, &used);
        if (o - 1 + n > room) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, n);
        o += n;
        p += used;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Whether every byte of s may stand in a line unquoted. */
static int
is_bare(const char *s)
{
    return *s != '\0' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") ==
               strlen(s);
}

static void
ctx_store(char *dst, const char *v)
{
    char cut[LOG_CTX_MAX + 1];
    snprintf(cut, sizeof(cut), "%s", v != NULL ? v : "");
    if (is_bare(cut) || cut[0] == '\0')
        memcpy(dst, cut, strlen(cut) + 1);
    else
        log_quote(dst, CTX_FMT_MAX, cut);
}

void
log_ctx_set(const char *request_id, const char *device_id)
{
    ctx_store(ctx_req, request_id);
    ctx_store(ctx_dev, device_id);
}

void
log_ctx_clear(void)
{
    ctx_req[0] = ctx_dev[0] = '\0';
}

/* Whether body has a pair named key (at its start or after a space). */
static int
has_key(const char *body, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = body; (p = strstr(p, key)) != NULL; p += kl)
        if ((p == body || p[-1] == ' ') && p[kl] == '=')
            return 1;
    return 0;
}

/* Appends the thread's context to body (len bytes of cap). Returns the new length. */
static size_t
append_ctx(char *body, size_t len, size_t cap)
{
    const char *names[] = {"req", "device"}, *vals[] = {ctx_req, ctx_dev};
    for (int i = 0; i < 2; i++) {
        if (vals[i][0] == '\0' || has_key(body, names[i]))
            continue;
        int m = snprintf(body + len, cap - len, " %s=%s", names[i], vals[i]);
        assert(m > 0 && (size_t)m < cap - len); /* cap keeps room for both */
        len += (size_t)m;
    }
    return len;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    char body[BODY_MAX + 2 * (CTX_FMT_MAX + 8)], line[LINE_MAX], ts[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(body, BODY_MAX, fmt, ap);
    va_end(ap);
    size_t blen = m < 0 ? 0 : (size_t)m < BODY_MAX ? (size_t)m : BODY_MAX - 1;
    body[blen] = '\0';
    append_ctx(body, blen, sizeof(body));
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    int journal = to_journal;
    size_t n = journal ? (size_t)snprintf(line, sizeof(line), "<%d>", journal_prio[lvl]) : 0;
    if (cur_format == LOG_FORMAT_JSON) {
        n += log_json_line(line + n, sizeof(line) - n - 1, journal ? NULL : ts, level_names[lvl],
                           body);
    } else {
        int k = snprintf(line + n, sizeof(line) - n - 1, "%s%s%slevel=%s %s",
                         journal ? "" : "ts=", journal ? "" : ts, journal ? "" : " ",
                         level_names[lvl], body);
        n += k < 0 ? 0 : (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    }
    /* One write per line keeps lines whole when threads log at once. */
    line[n++] = '\n';
    pthread_mutex_lock(&log_lock);
    ssize_t w = write(log_fd, line, n);
    (void)w;
    pthread_mutex_unlock(&log_lock);
}
