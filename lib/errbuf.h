/* errbuf: the message half of the error convention (a 0/negative return code plus a message in a
 * buffer the caller owns). One definition instead of a vsnprintf wrapper in every module. */
#ifndef AEGIS_ERRBUF_H
#define AEGIS_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the message into err (errlen bytes, always NUL-terminated, cut when longer). Does nothing
 * when err is NULL or errlen is 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void errbuf_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
