#include "log.h"

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
