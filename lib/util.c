#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int
util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1; /* no "+", no spaces, no empty digits */
    if (*p == '0' && (p[1] != '\0' || p != s))
        return -1; /* one spelling per number: no leading zeros, no "-0" */
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return -1;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

char *
util_rfc3339(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int
util_parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm;
    char back[32];
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    int64_t t = (int64_t)timegm(&tm);
    /* timegm normalises 2026-02-30 to March 2: a time that does not format back to the same text
     * does not exist (and "2026-1-5" is not RFC 3339) */
    if (strcmp(util_rfc3339(t, back, sizeof(back)), s) != 0)
        return -1;
    *out = t;
    return 0;
}

int64_t
util_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t
util_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int
util_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

char *
util_read_file(const char *path, size_t max, size_t *len)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max)
        goto fail;
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        goto fail;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto fail;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (len != NULL)
        *len = got;
    close(fd);
    return buf;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int
util_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc == 0 ? 0 : -1;
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates a new temporary file for path (name in tmp, PATH_MAX bytes) and its directory's name in
 * dir. A name left by a crashed process of the same pid is skipped: O_EXCL never reuses a file.
 * Returns the descriptor, or -1. */
static int
temp_create(const char *path, unsigned mode, char *tmp, char *dir)
{
    static atomic_ulong counter; /* distinct names for the threads of one process */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0; /* with its '/' */
    if (path[dlen] == '\0' || dlen >= PATH_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (dlen == 0)
        snprintf(dir, PATH_MAX, ".");
    else
        snprintf(dir, PATH_MAX, "%.*s", (int)(dlen > 1 ? dlen - 1 : 1), path);
    for (int tries = 0; tries < 16; tries++) {
        int n = snprintf(tmp, PATH_MAX, "%.*s.%s.tmp.%ld.%lu", (int)dlen, path, path + dlen,
                         (long)getpid(), atomic_fetch_add(&counter, 1) + 1);
        if (n < 0 || n >= PATH_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int
util_write_file_flags(const char *path, const void *data, size_t len, unsigned mode, unsigned flags)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int rc = -1, e = 0, sync = (flags & UTIL_WRITE_NOSYNC) == 0;
    int fd = temp_create(path, mode, tmp, dir);
    if (fd < 0)
        return -1;
    /* fchmod: the mode must not depend on the umask (key files are 0600, public ones 0644). */
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || (sync && fsync(fd) != 0))
        goto out;
    int c = close(fd);
    fd = -1;
    if (c != 0 || rename(tmp, path) != 0)
        goto out;
    tmp[0] = '\0'; /* renamed: nothing to remove */
    if (sync && util_fsync_dir(dir) != 0)
        goto out;
    rc = 0;
out:
    e = errno;
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp[0] != '\0')
        unlink(tmp);
    errno = e;
    return rc;
}

int
util_write_file(const char *path, const void *data, size_t len, unsigned mode)
{
    return util_write_file_flags(path, data, len, mode, 0);
}

int
util_mkdirs(const char *path, unsigned mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629, table 3-7 of Unicode), or 0. */
static size_t
utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing above U+10FFFF */
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

size_t
util_utf8_char_len(const char *s)
{
    return utf8_seq_len((const unsigned char *)s);
}

size_t
util_utf8_repair(char *s)
{
    size_t replaced = 0;
    unsigned char *p = (unsigned char *)s;
    while (*p != '\0') {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            *p++ = '?';
            replaced++;
        } else {
            p += n;
        }
    }
    return replaced;
}
