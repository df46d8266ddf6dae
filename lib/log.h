/* Structured logging to stderr or a file: one line per event, "ts=... level=... msg=..." plus
 * key=value pairs. Never pass secrets (tokens, keys, nonces) to these functions. Thread-safe. */
#ifndef AEGIS_LOG_H
#define AEGIS_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Parses "debug", "info", "warn", "error". Returns 0, or -1 if unknown. */
int log_parse_level(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
/* Directs output to path (appending, 0600), or to stderr when path is NULL or "". Returns
 * 0 / -1. */
int log_open(const char *path);
/* Reopens the file given to log_open (for logrotate, on SIGHUP). Returns 0 / -1. */
int log_reopen(void);
int log_enabled(enum log_level lvl);

/* Room for a quoted value of up to LOG_VALUE_MAX bytes of input escaped at worst (4 bytes each). */
#define LOG_VALUE_MAX 128
#define LOG_QUOTE_BUF (LOG_VALUE_MAX * 4 + 8)

/* Writes s (NULL reads as "") into buf as a log value that no input can break out of: in double
 * quotes, with '"' and '\\' escaped by a backslash, \n \r \t as such, other control bytes and bytes
 * that are not part of valid UTF-8 as \xHH. Cut, with "..." before the closing quote, where it
 * would not fit in len bytes (at least 8). Every value that can come from outside (method, path,
 * peer, header, device text) goes into a log line through this. Returns buf. */
const char *log_quote(char *buf, size_t len, const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) (log_enabled(LOG_DEBUG) ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
