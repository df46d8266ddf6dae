/* ctl_print: aegisctl's output in the modes of c->output (ctl.h): the data modes (-o json, -o
 * jsonpath=EXPR, -o name) print the API's JSON or what is selected from it, for scripts; the text
 * modes (table, -o wide) print aligned tables and "key: value" lines for people.
 *
 * Text from the service or a device goes through ctl_text: valid UTF-8 is kept, controls and
 * bidirectional overrides are shown inert, and columns are aligned by display width. When stdout
 * is a terminal, a table is fitted to its width ($COLUMNS, else TIOCGWINSZ): device IDs and
 * digests are shortened to a 12-character prefix and the widest free-text columns are cut with
 * "…"; with -o wide, or when stdout is not a terminal, nothing is cut. */
#ifndef AEGIS_CTL_PRINT_H
#define AEGIS_CTL_PRINT_H

#include "ctl.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Makes text safe in place (ctl_text_sanitize): for messages built from service text. */
void ctl_sanitize(char *s);

/* Prints a JSON value pretty (2-space indent) to stdout, with a final newline. */
void ctl_print_json(const json_t *v);
/* Overwrites the string o[key] (a token shown once) in place, before o is freed. Accepts NULL. */
void ctl_json_forget(json_t *o, const char *key);

/* struct ctl_col.flags */
enum {
    CTL_COL_ID = 1,    /* the ID that -o name prints (default: the table's first column) */
    CTL_COL_WIDE = 2,  /* shown with -o wide only */
    CTL_COL_CUT = 4,   /* free text that may be cut to fit the terminal (implied by max > 0) */
    CTL_COL_HASH = 8,  /* a device ID or SHA-256 digest: shown as its first CTL_HASH_SHORT hex
                        * characters when the table is fitted to a terminal (git-style: the CLI
                        * takes unique prefixes), whole with -o wide and when not a terminal */
    CTL_COL_DROP = 16, /* low priority: left out on a terminal too narrow for the table with its
                        * free-text columns cut to their narrowest (shown with -o wide) */
};

/* The characters of a 64-hex ID or digest a fitted table shows (CTL_COL_HASH). */
#define CTL_HASH_SHORT 12

/* A column of a table: header, the object key it shows, the width it is cut to on a terminal
 * (0 = none; never with -o wide or when stdout is not a terminal), CTL_COL_* flags. A table is
 * an array ended by an entry with header NULL. */
struct ctl_col {
    const char *header;
    const char *key;
    size_t max;
    unsigned flags;
};

/* How a table is laid out (ctl_table_write); ctl_print_table takes it from c and stdout. */
struct ctl_table_opts {
    int wide;       /* -o wide: the CTL_COL_WIDE columns too, nothing cut */
    int no_headers; /* no header line */
    size_t width;   /* the terminal's width to fit, 0: none (not a terminal) */
};

/* The data modes. With -o json, jsonpath or name, prints v (the whole result: an object, a page
 * {"items": [...]} or an array) and returns 1; in the text modes prints nothing and returns 0 (the
 * caller prints its text). -o name prints the ID of v, or of each item, one per line: the key of
 * cols' ID column (cols may be NULL: "id"). The -o jsonpath template was checked when the option
 * was parsed (ctl_args); a failure to print it anyway (out of memory) returns -1 with the error
 * printed, which the caller turns into its exit code with ctl_print_exit. */
int ctl_print_data(const struct ctl *c, const json_t *v, const struct ctl_col *cols);
/* The exit code for what ctl_print_data returned: CTL_EXIT_LOCAL for -1, else CTL_EXIT_OK. */
int ctl_print_exit(int printed);
/* The same to f, with the mode and template given. Returns 1 or 0 as ctl_print_data, or -1 with
 * the jsonpath error in err. */
int ctl_data_write(FILE *f, enum ctl_output mode, const char *jsonpath, const json_t *v,
                   const struct ctl_col *cols, char *err, size_t errlen);

/* Prints an array of objects as a table (text modes): aligned by display width, missing and null
 * values as "-", nested values as "a,b" (arrays) and "k=v,k=v" (objects) of their scalars. */
void ctl_print_table(const struct ctl *c, const json_t *items, const struct ctl_col *cols);
void ctl_table_write(FILE *f, const json_t *items, const struct ctl_col *cols,
                     const struct ctl_table_opts *o);

/* Prints an object as aligned "key: value" lines; multi-line strings (PEM) continue indented below
 * their key; nested objects print as indented "key: value" lines, arrays as "- item" lines; null,
 * empty objects and empty arrays as "-". */
void ctl_print_object(const json_t *obj);
void ctl_object_write(FILE *f, const json_t *obj);

/* 1 in the text modes (table, wide), 0 in the data modes. */
int ctl_print_text_mode(const struct ctl *c);

/* ctl_print_data, else ctl_print_object. Returns the exit code (ctl_print_exit). */
int ctl_print_result(const struct ctl *c, const json_t *obj, const struct ctl_col *cols);

#endif
