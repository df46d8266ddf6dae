/* log_json: one log line's text ("msg=... key=value ...") as one JSON object, for log_format = json
 * (log.h). Internal to lib/log.c; separate so that it can be tested on its own. */
#ifndef AEGIS_LOG_JSON_H
#define AEGIS_LOG_JSON_H

#include <stddef.h>

/* Writes {"ts":ts,"level":level,<the pairs of body>} into out (cap bytes, at least 64) without a
 * newline or NUL, and returns its length. ts NULL leaves "ts" out (under journald, which stamps
 * lines itself).
 *
 * body is read as key=value pairs separated by spaces; a key is [A-Za-z0-9_.-]+; a value is either
 * bare (up to the next space: a JSON number stays a number, anything else becomes a string) or in
 * double quotes with log_quote's escapes (always a string; \xHH becomes \u00HH for a control
 * byte, the text "\xHH" for a byte that is not UTF-8). A key already seen is dropped (the first one
 * wins). A body that is not made of such pairs (a caller that printed a quote unescaped, a line cut
 * at its limit inside a quote) is kept whole as the "msg" string instead, so no input can make the
 * object invalid or forge a member. Control bytes and bytes that are not UTF-8 are escaped
 * anywhere. Output that would pass cap is cut inside a string or before a member, and the object is
 * still closed. */
size_t log_json_line(char *out, size_t cap, const char *ts, const char *level, const char *body);

#endif
