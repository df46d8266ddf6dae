#include "cron.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>

/* Expired nonces are deleted in batches this large, so one tick never holds the write lock for
 * long. */
#define NONCE_PURGE_BATCH 5000
#define NONCE_PURGE_MAX_BATCHES 20

struct step {
    const char *name;
    uint64_t period_ms;
    void (*run)(struct app *app);
};

static void purge_nonces(struct app *app);

static const struct step steps[] = {
    {"purge_nonces", 10000, purge_nonces},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

struct cron {
    uv_timer_t timer;
    struct app *app;
    uint64_t last_ms[NSTEPS];
};

static void
purge_nonces(struct app *app)
{
    int purged = NONCE_PURGE_BATCH, total = 0;
    for (int i = 0; i < NONCE_PURGE_MAX_BATCHES && purged == NONCE_PURGE_BATCH; i++) {
        if (store_nonce_purge(app->st, util_now(), NONCE_PURGE_BATCH, &purged) != STORE_OK)
            return;
        total += purged;
    }
    if (total > 0)
        log_debug("msg=\"purged expired nonces\" count=%d", total);
}

static void
on_tick(uv_timer_t *t)
{
    cron *c = t->data;
    uint64_t now = uv_now(t->loop);
    for (size_t i = 0; i < NSTEPS; i++) {
        if (now - c->last_ms[i] < steps[i].period_ms)
            continue;
        c->last_ms[i] = now;
        uint64_t t0 = util_mono_ns();
        steps[i].run(c->app);
        log_debug("msg=cron step=%s dur_ms=%.2f", steps[i].name,
                  (double)(util_mono_ns() - t0) / 1e6);
    }
}

cron *
cron_start(uv_loop_t *loop, struct app *app)
{
    cron *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->app = app;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_tick, 1000, 1000);
    return c;
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

void
cron_stop(cron *c)
{
    if (c == NULL)
        return;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}
