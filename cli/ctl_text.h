/* ctl_text: service and device text made safe for a terminal, and its display width.
 *
 * Valid UTF-8 is kept as it is. What would let text drive the terminal or show something other
 * than itself is made inert: each control character (C0, DEL, C1), each bidirectional control
 * (U+061C, U+200E-F, U+202A-E, U+2066-9) and each line or paragraph separator (U+2028-9) becomes
 * one '?'; each ill-formed UTF-8 sequence (a maximal subpart, as Unicode's "substitution of
 * maximal subparts" counts them) becomes one U+FFFD (or '?' in place).
 *
 * Widths are measured with aegisctl's own table (Unicode 14: East Asian Wide and Fullwidth = 2
 * columns, nonspacing and enclosing marks and format characters = 0, else 1), so they do not
 * depend on the user's locale. */
#ifndef AEGIS_CTL_TEXT_H
#define AEGIS_CTL_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Flags of ctl_text_safe. */
enum {
    CTL_TEXT_KEEP_LINES = 1, /* keep '\n' and '\t' (values printed for scripts) */
};

/* A display-safe copy of s (malloc'd, caller frees; NULL when out of memory). */
char *ctl_text_safe(const char *s, unsigned flags);

/* The same in place: the text never grows, so ill-formed sequences become '?' too. */
void ctl_text_sanitize(char *s);

/* Columns a code point takes on a terminal: 0, 1 or 2. */
int ctl_text_cp_width(uint32_t cp);

/* Columns s takes once made safe (any bytes; ill-formed sequences count as U+FFFD's 1). */
size_t ctl_text_width(const char *s);

/* A copy of s (malloc'd, caller frees; NULL when out of memory) that takes at most cols columns:
 * s itself when it fits, else its start and "…" (cols >= 1). Never cuts a character or separates
 * a mark from its base. s should be safe (ctl_text_safe). */
char *ctl_text_cut(const char *s, size_t cols);

/* Writes s and then spaces up to cols columns (none when s is wider). */
void ctl_text_pad(FILE *f, const char *s, size_t cols);

#endif
