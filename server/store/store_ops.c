/* store_ops: figures for the operator's metrics (store.h store_device_state_counts). */
#include "store.h"
#include "store_int.h"

#include <sqlite3.h>

/* One pass over the devices' primary rows (a device registered in another tenant too counts once,
 * by its own row). */
static const char SQL_DEVICE_STATES[] =
    "SELECT CASE WHEN tenant_id IS NULL THEN 0 WHEN blocked != 0 THEN 2 ELSE 1 END, count(*) "
    "FROM devices GROUP BY 1";

int
store_device_state_counts(store *s, int64_t out[STORE_DEVICE_STATES])
{
    struct conn *c = store__take(s);
    sqlite3_stmt *st = store__prep(s, c, SQL_DEVICE_STATES);
    int rc = STORE_ERR, step = SQLITE_ERROR;
    for (int i = 0; i < STORE_DEVICE_STATES; i++)
        out[i] = 0;
    if (st == NULL)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state >= 0 && state < STORE_DEVICE_STATES)
            out[state] = sqlite3_column_int64(st, 1);
    }
    rc = step == SQLITE_DONE ? STORE_OK : store__db_error(s, c, "device states");
    sqlite3_reset(st);
out:
    store__give(s, c);
    return rc;
}
