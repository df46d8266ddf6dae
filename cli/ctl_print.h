/* ctl_print: aegisctl's output: JSON, aligned tables, "key: value" lines, and the sanitiser that
 * keeps service and device text from driving the terminal. */
#ifndef AEGIS_CTL_PRINT_H
#define AEGIS_CTL_PRINT_H

#include <jansson.h>
#include <stddef.h>

/* Makes service or device text safe to print on a terminal, in place: each control character (C0,
 * DEL, C1) and each bidirectional control or line separator becomes one '?'. */
void ctl_sanitize(char *s);

/* Prints a JSON value pretty (2-space indent) to stdout, with a final newline. */
void ctl_print_json(const json_t *v);
/* Overwrites the string o[key] (a token shown once) in place, before o is freed. Accepts NULL. */
void ctl_json_forget(json_t *o, const char *key);

/* A column of a table: header, the object key it shows, and a width cap in characters (0 =
 * none). */
struct ctl_col {
    const char *header;
    const char *key;
    size_t max;
};

/* Prints an array of objects as an aligned table (cols terminated by an entry with header NULL);
 * missing and null values show as "-". Control characters are shown as '?'. */
void ctl_print_table(const json_t *items, const struct ctl_col *cols);

/* Prints an object as aligned "key: value" lines; multi-line strings (PEM) continue indented below
 * their key, nested objects and arrays print as compact JSON. */
void ctl_print_object(const json_t *obj);

/* ctl_print_json with --json, else ctl_print_object. */
void ctl_print_result(int json, const json_t *obj);

#endif
