/* Small helpers shared by every module: strict number parsing, time formatting, hex. */
#ifndef AEGIS_UTIL_H
#define AEGIS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses a whole decimal string into [min, max]: digits with an optional "-", no "+", no leading
 * zeros ("0" itself is fine), no trailing junk, no overflow. Returns 0, or -1 if s is not such a
 * number. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Formats a unix time as RFC 3339 UTC ("2026-11-22T10:00:00Z") into buf (>= 21 bytes). Returns
 * buf. */
char *util_rfc3339(int64_t t, char *buf, size_t len);

/* Parses RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" of a time that exists (2026-02-30 does not). Returns
 * 0, or -1. */
int util_parse_rfc3339(const char *s, int64_t *out);

/* Wall-clock unix seconds. */
int64_t util_now(void);

/* Monotonic time in nanoseconds, for durations. */
uint64_t util_mono_ns(void);

/* Number of online CPUs, at least 1. */
int util_ncpu(void);

/* Reads a whole file of at most max bytes into a new NUL-terminated buffer (caller frees).
 * Returns NULL on error or when the file is larger than max. */
char *util_read_file(const char *path, size_t max, size_t *len);

/* Writes data to path atomically and durably, the one file writer of the tree: a new temporary
 * file ".<name>.tmp.<pid>.<n>" in path's directory (O_EXCL, O_NOFOLLOW; exactly the given mode,
 * whatever the umask), all of data, fsync, rename over path, fsync of the directory. A power cut
 * leaves the old contents or the new, and at worst a temporary file (a user that restarts after
 * crashes, like firmware-ref/hal_host.c, removes ".*.tmp.*" names when it opens the directory).
 * Returns 0, or -1 with errno set: the temporary file is removed, and path is unchanged unless only
 * the directory's fsync failed (path has the new contents then, not yet durable). */
int util_write_file(const char *path, const void *data, size_t len, unsigned mode);
/* Flag of util_write_file_flags: no fsync of the file nor of the directory (still atomic for the
 * readers, but not durable): for tests and simulations of many devices. */
#define UTIL_WRITE_NOSYNC 1u
/* util_write_file with flags (0 or UTIL_WRITE_NOSYNC). */
int util_write_file_flags(const char *path, const void *data, size_t len, unsigned mode,
                          unsigned flags);
/* fsync of a directory (after a rename or an unlink in it). Returns 0 / -1. */
int util_fsync_dir(const char *dir);

/* Makes s valid UTF-8 in place: every byte that is not part of a well-formed sequence (a sequence
 * cut short by a length limit, an overlong form, a surrogate, above U+10FFFF) becomes '?'. For
 * messages that quote client data and must go into JSON. Returns the number of bytes replaced. */
size_t util_utf8_repair(char *s);
/* Bytes of the well-formed UTF-8 character at s (1 for ASCII, NUL included), or 0 when s does not
 * start one. */
size_t util_utf8_char_len(const char *s);

/* Creates a directory and its parents with the given mode. Returns 0 / -1. */
int util_mkdirs(const char *path, unsigned mode);

#endif
