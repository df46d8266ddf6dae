/* ctl_time: the times a user types (--since, --until) and the API's form of them. */
#ifndef AEGIS_CTL_TIME_H
#define AEGIS_CTL_TIME_H

#include <stdint.h>

/* Bytes of the API's form "YYYY-MM-DDTHH:MM:SSZ" with its NUL. */
#define CTL_TIME_LEN 21

/* Parses s into unix seconds (*out). Accepted:
 *  - RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), 'T' also 't' or a space; the
 *    fraction is dropped (the API counts whole seconds);
 *  - a date YYYY-MM-DD: its midnight UTC;
 *  - "now", or a duration back from now: one or more of <N>s, <N>m, <N>h, <N>d, <N>w ("90s",
 *    "1h30m", "2d").
 * Returns 0, or -1 with *why (may be NULL) set to a static reason. */
int ctl_time_parse(const char *s, int64_t now, int64_t *out, const char **why);

/* The API's form of t into out. Returns 0, or -1 when t is before 1970 or after 9999. */
int ctl_time_format(int64_t t, char out[CTL_TIME_LEN]);

#endif
