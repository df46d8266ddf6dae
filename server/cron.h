/* cron: the daemon's periodic jobs, one named step each, run on the main libuv loop (Redis'
 * serverCron): a 1-second tick runs every step whose period has elapsed. Steps are short and
 * bounded (batches), so the loop stays responsive to signals. */
#ifndef AEGIS_CRON_H
#define AEGIS_CRON_H

#include "config.h"
#include "store.h"

#include <uv.h>

typedef struct cron cron;

struct metrics;
struct app;

/* Starts the tick on loop with the daemon's state (its store, configuration, metrics, signer for
 * the online TUF keys, and director), which must outlive it. Returns NULL on allocation failure.
 * Stop with cron_stop before the loop's last run: the memory is freed in the timer's close
 * callback. */
cron *cron_start(uv_loop_t *loop, const struct app *app);
void cron_stop(cron *c);

#endif
