/* store_deploy internals shared by store_deploy.c and store_deploy_status.c. */
#ifndef AEGIS_STORE_DEPLOY_INT_H
#define AEGIS_STORE_DEPLOY_INT_H

#include "store_int.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Inside the open transaction on c: bumps the tenant's director generation (at time now); *gen
 * (may be NULL) gets the new value. */
int store__director_bump(store *s, struct conn *c, int64_t tenant_id, int64_t now, int64_t *gen);

/* Runs sql (its ?1 and ?2, when it has them, bound to a1 and a2) on its own connection and
 * collects its rows with row (store__collect_rows): *rows malloc'd (caller frees) or NULL. */
int store__typed_rows(store *s, const char *sql, int64_t a1, int64_t a2, size_t elem_size,
                      store__row_fn row, void **rows, size_t *n);

/* The index of name in names[0..n), or -1 (also for NULL). */
int store__name_index(const char *const *names, int n, const char *name);
/* Copies text column i (NULL: "") into dst (len bytes, truncated). */
void store__copy_col(char *dst, size_t len, sqlite3_stmt *st, int i);

#endif
