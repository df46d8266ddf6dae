/* Structured logging to stderr or a file: one line per event, "ts=... level=... msg=..." plus
 * key=value pairs, or the same as one JSON object per line (log_set_format). Never pass secrets
 * (tokens, keys, nonces) to these functions. Thread-safe.
 *
 * Each thread has a log context (log_ctx_set): while a request is handled, every line the thread
 * writes ends with req=<id> and, once the device is known, device=<id> (unless the line names that
 * key itself).
 *
 * Under systemd (stderr is the journal's stream: $JOURNAL_STREAM names its device and inode, as
 * systemd.exec(5) says to check), each line starts with its syslog priority as sd-daemon(3)
 * prefixes it ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug), which journald takes as the
 * entry's PRIORITY, and without ts= (journald stamps each entry). */
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

enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };
/* Parses "text" or "json". Returns 0, or -1 if unknown. */
int log_parse_format(const char *s, enum log_format *out);
/* JSON lines: {"ts":...,"level":...,"msg":...,<the other key=value pairs>} (log_json.h says how a
 * line's pairs become members). */
void log_set_format(enum log_format f);

/* The calling thread's context: copied (each at most LOG_CTX_MAX bytes, longer ones are cut);
 * NULL or "" for none. A value outside [A-Za-z0-9._:-] is written quoted (log_quote). */
#define LOG_CTX_MAX 64
void log_ctx_set(const char *request_id, const char *device_id);
void log_ctx_clear(void);

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
