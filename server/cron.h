/* cron: the daemon's periodic jobs, one named step each, run on the main libuv loop (Redis'
 * serverCron): a 1-second tick runs every step whose period has elapsed. Steps are short and
 * bounded (batches), so the loop stays responsive to signals. */
#ifndef AEGIS_CRON_H
#define AEGIS_CRON_H

#include "app.h"

#include <uv.h>

typedef struct cron cron;

/* Starts the tick on loop. Returns NULL on allocation failure. Stop with cron_stop before the
 * loop's last run: the memory is freed in the timer's close callback. */
cron *cron_start(uv_loop_t *loop, struct app *app);
void cron_stop(cron *c);

#endif
