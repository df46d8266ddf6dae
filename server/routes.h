/* routes: the whole HTTP surface of aegisd in one table (method, path pattern, auth kind, minimum
 * role, body kind, body limit, handler), so every route gets the same authentication and limits by
 * construction. A request's path: its row here, the handler it names (server/api/ or
 * server/device/), the store file that handler calls (server/store/). */
#ifndef AEGIS_ROUTES_H
#define AEGIS_ROUTES_H

#include "router.h"

#include <stddef.h>

/* The table and its length. */
const struct route *routes_table(size_t *n);

#endif
