#include "ctl_time.h"

#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TIME_MAX ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

/* n digits at s into *out; 0 or -1. */
static int
digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "YYYY-MM-DD" at s (a day that exists) into *day (its midnight, unix seconds). */
static int
parse_date(const char *s, int64_t *day)
{
    char buf[CTL_TIME_LEN];
    if (strlen(s) < 10 || s[4] != '-' || s[7] != '-')
        return -1;
    /* util_parse_rfc3339 checks that the day exists (no February 30th) */
    snprintf(buf, sizeof(buf), "%.10sT00:00:00Z", s);
    return util_parse_rfc3339(buf, day);
}

/* The time-of-day and offset of RFC 3339 after the date: "HH:MM:SS[.frac](Z|±HH:MM)". */
static int
parse_clock(const char *s, int64_t *secs, const char **why)
{
    int h, m, sec, oh = 0, om = 0, sign = 0;
    if (digits(s, 2, &h) != 0 || s[2] != ':' || digits(s + 3, 2, &m) != 0 || s[5] != ':' ||
        digits(s + 6, 2, &sec) != 0 || h > 23 || m > 59 || sec > 59) {
        *why = "expected HH:MM:SS after the date";
        return -1;
    }
    s += 8;
    if (*s == '.') {
        const char *f = ++s;
        while (isdigit((unsigned char)*s))
            s++;
        if (s == f) {
            *why = "a fraction of a second needs digits";
            return -1;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        if (digits(s + 1, 2, &oh) != 0 || s[3] != ':' || digits(s + 4, 2, &om) != 0 || oh > 23 ||
            om > 59) {
            *why = "expected a UTC offset +HH:MM or -HH:MM";
            return -1;
        }
        s += 6;
    } else {
        *why = "a time needs its UTC offset: Z, +HH:MM or -HH:MM";
        return -1;
    }
    if (*s != '\0') {
        *why = "unexpected text after the time";
        return -1;
    }
    /* local time = UTC + offset, so UTC = local time - offset */
    *secs = (int64_t)h * 3600 + m * 60 + sec - sign * ((int64_t)oh * 3600 + om * 60);
    return 0;
}

/* "now" or a sequence of <N><unit> into *back (seconds before now). */
static int
parse_duration(const char *s, int64_t *back)
{
    int64_t total = 0;
    if (strcmp(s, "now") == 0) {
        *back = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        int64_t n = 0, unit;
        if (!isdigit((unsigned char)*s))
            return -1;
        for (; isdigit((unsigned char)*s); s++) {
            n = n * 10 + (*s - '0');
            if (n > TIME_MAX)
                return -1;
        }
        switch (*s++) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            return -1;
        }
        if (n > TIME_MAX / unit || total > TIME_MAX - n * unit)
            return -1;
        total += n * unit;
    }
    *back = total;
    return 0;
}

int
ctl_time_parse(const char *s, int64_t now, int64_t *out, const char **why)
{
    const char *dummy;
    int64_t day, secs, back;
    if (why == NULL)
        why = &dummy;
    *why = "expected an RFC 3339 time (2026-11-22T10:00:00Z, 2026-11-22T11:00:00.5+01:00), a date "
           "(2026-11-22) or a time back from now (90s, 15m, 1h, 2d, 1w)";
    if (isdigit((unsigned char)s[0]) && parse_duration(s, &back) == 0) {
        if (back > now) {
            *why = "that is before 1970";
            return -1;
        }
        *out = now - back;
        return 0;
    }
    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }
    if (parse_date(s, &day) != 0)
        return -1;
    if (s[10] == '\0') {
        *out = day;
        return 0;
    }
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return -1;
    if (parse_clock(s + 11, &secs, why) != 0)
        return -1;
    if (day + secs < 0 || day + secs > TIME_MAX) {
        *why = "the time is out of range";
        return -1;
    }
    *out = day + secs;
    return 0;
}

int
ctl_time_format(int64_t t, char out[CTL_TIME_LEN])
{
    if (t < 0 || t > TIME_MAX)
        return -1;
    util_rfc3339(t, out, CTL_TIME_LEN);
    return 0;
}
