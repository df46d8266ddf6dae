#include "log.h"

#include "util.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The log destination is process configuration, set at start and on SIGHUP. */
static enum log_level cur_level = LOG_INFO;
static int log_fd = STDERR_FILENO;
static char log_path[4096];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int
log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
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
        log_fd = STDERR_FILENO;
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

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* One write per line keeps lines whole when threads log at once. */
    line[len++] = '\n';
    pthread_mutex_lock(&log_lock);
    ssize_t w = write(log_fd, line, len);
    (void)w;
    pthread_mutex_unlock(&log_lock);
}
