/* ota_cjson: canonical JSON as the public TUF implementations sign it (the OLPC dialect of
 * securesystemslib's encode_canonical, used by python-tuf, and of @tufjs/canonical-json, used by
 * tuf-js). A TUF signature is over these bytes of the "signed" object, so they must match those
 * implementations byte for byte. The encoding of a jansson value:
 *
 *   object   "{" members "}", members separated by "," with no spaces, each "key":value; the keys
 *            sorted by their bytes (memcmp of the UTF-8, a shorter key before a longer one it
 *            begins). That is code point order, the order of Python's sorted(); tuf-js sorts by
 *            UTF-16 code units, which differs only between keys with a character above U+FFFF
 *            and keys with one in U+E000..U+FFFF at the same place, never for ASCII keys.
 *   array    "[" elements "]", separated by "," with no spaces, in order.
 *   string   '"' bytes '"' where only '"' and '\' are escaped (as \" and \\); every other byte,
 *            control characters and UTF-8 included, is written as it is (no \n, no \uXXXX).
 *   integer  decimal, "-" for negatives, no "+", no leading zeros, no exponent.
 *   true / false / null as such.
 *   real     refused (TUF metadata has no floats; Python's encoder refuses them too), even one
 *            with an integral value such as 1.0.
 *
 * No whitespace anywhere, no trailing newline. Nesting deeper than OTA_CJSON_MAX_DEPTH is refused
 * (TUF metadata is at most 6 deep) so that recursion stays bounded on any input. */
#ifndef AEGIS_OTA_CJSON_H
#define AEGIS_OTA_CJSON_H

#include <jansson.h>
#include <stddef.h>

#define OTA_CJSON_MAX_DEPTH 32

/* Encodes v. On success *out is a new buffer (malloc'd, caller frees) of *len bytes plus a NUL
 * after them (the bytes themselves may contain NUL if a string does). Returns 0, or -1 with a
 * message (a real, a value too deep, out of memory) and *out NULL. */
int ota_cjson_encode(const json_t *v, char **out, size_t *len, char *err, size_t errlen);

#endif
