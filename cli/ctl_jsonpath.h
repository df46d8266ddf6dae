/* ctl_jsonpath: the subset of kubectl's JSONPath templates that -o jsonpath=EXPR takes.
 *
 * A template is text with expressions in braces; the text is printed as it is, each expression
 * is replaced by what it selects:
 *   {.name}  {.a.b}  {['key with.dots']}   a member (missing: nothing)
 *   {.items[0]}  {.items[-1]}              an element by index (negative: from the end)
 *   {.items[*].id}  {.labels.*}            every element or member
 *   {$.x}  {@.x}  {@}                      from the root / the current element / the current
 * element {range .items[*]}...{end}              the inner template once per selected value
 * (nestable)
 *   {"\n"}  {"\t"}                         a quoted literal with escapes \n \t \r \\ \"
 * Several values from one expression are separated by one space; strings print without quotes,
 * numbers and booleans as in JSON, null as "null", objects and arrays as compact JSON. Values are
 * made safe for a terminal (ctl_text) but keep their newlines and tabs. Not supported: filters
 * [?(...)], recursive descent (..), slices [a:b] and unions [a,b]. As with kubectl, nothing is
 * added at the end: put {"\n"} in the template for a final newline. */
#ifndef AEGIS_CTL_JSONPATH_H
#define AEGIS_CTL_JSONPATH_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Checks a template. Returns 0, or -1 with the reason in err (errlen bytes). */
int ctl_jsonpath_check(const char *expr, char *err, size_t errlen);

/* Writes the template evaluated on v to f. Returns 0, or -1 with the reason in err (a template
 * that ctl_jsonpath_check refuses, or out of memory). */
int ctl_jsonpath_write(FILE *f, const char *expr, const json_t *v, char *err, size_t errlen);

#endif
