/* director: per-device TUF targets answers from memory (director.h). One mutex guards the two
 * maps (tenants, devices); signing and store reads happen outside it. A plan is shared by the
 * answers being built from it, so it is reference-counted. */
#include "director.h"

#include "hmap.h"
#include "ota_meta.h"
#include "rollout.h"
#include "signer.h"
#include "store_deploy.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each group's current deployment of a tenant, as of one generation. */
struct plan {
    atomic_int refs;
    int64_t generation;
    int64_t made_at; /* when the generation was made (the store's time of it) */
    int64_t expires;
    size_t n;
    struct store_deployment *deps;
};

struct tenant_state {
    int64_t generation; /* the newest known */
    struct plan *plan;  /* NULL until asked; may be of an older generation */
};

struct device_entry {
    int64_t tenant_id, group_id, generation;
    char etag[DIRECTOR_ETAG_MAX];
    char *body;
    size_t len;
};

struct director {
    store *st;
    struct signer *sg;
    pthread_mutex_t lock;
    pthread_mutex_t load_lock; /* held around a plan load: one at a time, so a herd loads once */
    struct hmap tenants;       /* tenant id -> ts[] */
    struct tenant_state *ts;
    size_t tcap;
    struct hmap devices; /* device id -> ds[]; entries without a body were evicted */
    struct device_entry *ds;
    size_t dcap;
    size_t live;      /* entries with a body */
    size_t cache_max; /* at most this many live entries */
    atomic_uint_fast64_t built;
};

director *
director_new(store *st, struct signer *sg)
{
    director *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->st = st;
    d->sg = sg;
    d->cache_max = DIRECTOR_CACHE_MAX;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->load_lock, NULL);
    return d;
}

static void
plan_unref(struct plan *p)
{
    if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1) {
        free(p->deps);
        free(p);
    }
}

static void
clear_devices(director *d)
{
    /* a key whose entry could not be grown into has no entry: bounded by the capacity too */
    for (size_t i = 0; i < hmap_count(&d->devices) && i < d->dcap; i++) {
        free(d->ds[i].body);
        d->ds[i].body = NULL; /* keep() frees the body of the slot a new key reuses */
    }
    hmap_clear(&d->devices);
    d->live = 0;
}

void
director_set_cache_max(director *d, size_t max)
{
    assert(max >= 1);
    pthread_mutex_lock(&d->lock);
    d->cache_max = max;
    pthread_mutex_unlock(&d->lock);
}

uint64_t
director_built(director *d)
{
    return atomic_load(&d->built);
}

void
director_free(director *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < hmap_count(&d->tenants) && i < d->tcap; i++)
        plan_unref(d->ts[i].plan);
    hmap_clear(&d->tenants);
    free(d->ts);
    clear_devices(d);
    free(d->ds);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->load_lock);
    free(d);
}

/* Grows *arr (elements of size bytes, *cap of them) to hold index idx. Under the lock. */
static int
grow(void **arr, size_t *cap, size_t idx, size_t size)
{
    if (idx < *cap)
        return 0;
    size_t ncap = *cap > 0 ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL)
        return -1;
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

/* The tenant's state, added with generation gen when absent (NULL when out of memory). Under the
 * lock. */
static struct tenant_state *
tenant_at(director *d, int64_t tenant_id, int64_t gen)
{
    char k[HMAP_KEY_MAX];
    size_t idx, klen = hmap_key_i64(k, 0, tenant_id);
    int added = 0;
    if (hmap_insert(&d->tenants, k, klen, &idx, &added) != 0 ||
        grow((void **)&d->ts, &d->tcap, idx, sizeof(*d->ts)) != 0)
        return NULL; /* an index without a slot is never read: the slot is grown first next time */
    if (added || d->ts[idx].generation < gen)
        d->ts[idx].generation = gen;
    return &d->ts[idx];
}

static struct tenant_state *
tenant_find(director *d, int64_t tenant_id)
{
    char k[HMAP_KEY_MAX];
    size_t klen = hmap_key_i64(k, 0, tenant_id), idx = hmap_find(&d->tenants, k, klen);
    return idx != HMAP_NONE && idx < d->tcap ? &d->ts[idx] : NULL;
}

void
director_note(director *d, int64_t tenant_id, int64_t gen)
{
    pthread_mutex_lock(&d->lock);
    tenant_at(d, tenant_id, gen);
    pthread_mutex_unlock(&d->lock);
}

/* Loads the tenant's plan from the store (and makes sure its director key exists): its newest
 * generation, at least gen. The plan carries the time its generation was made, not the time it
 * was loaded, so every daemon on the database, and a restarted one, signs one version with one
 * expiry. A generation older than DIRECTOR_RESIGN_S (or none yet: the tenant never changed) is
 * replaced by a new one first, so no answer is built that expires within 12 hours. */
static struct plan *
plan_load(director *d, int64_t tenant_id, int64_t gen, char *err, size_t errlen)
{
    struct plan *p = calloc(1, sizeof(*p));
    int64_t now = util_now();
    char key[64];
    ota_key pub;
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(key, sizeof(key), "tenants/%lld/tuf-director", (long long)tenant_id);
    if (store_director_generation(d->st, tenant_id, &p->generation, &p->made_at) != STORE_OK ||
        (p->made_at < now - DIRECTOR_RESIGN_S &&
         store_director_bump(d->st, tenant_id, now, &p->generation) != STORE_OK)) {
        snprintf(err, errlen, "cannot read the director generation");
        goto out;
    }
    if (p->made_at < now - DIRECTOR_RESIGN_S)
        p->made_at = now; /* just bumped */
    if (p->generation < gen)
        p->generation = gen; /* only a database restored from an older copy has a lower one */
    /* the deployments after the generation: the plan is never older than its label */
    if (store_deploy_plan(d->st, tenant_id, &p->deps, &p->n) != STORE_OK) {
        snprintf(err, errlen, "cannot load the tenant's deployments");
        goto out;
    }
    if (signer_ed25519_public(d->sg, key, 1, &pub, err, errlen) != 0)
        goto out;
    atomic_init(&p->refs, 1);
    p->expires = p->made_at + DIRECTOR_EXPIRY_S;
    return p;
out:
    free(p->deps);
    free(p);
    return NULL;
}

/* The tenant's plan when it is of its newest known generation (a reference), else NULL with *gen
 * that generation. A tenant seen for the first time is added (generation 1: plan_load reads
 * its real one). */
static struct plan *
plan_current(director *d, int64_t tenant_id, int64_t *gen)
{
    struct plan *p = NULL;
    pthread_mutex_lock(&d->lock);
    struct tenant_state *t = tenant_at(d, tenant_id, 1);
    *gen = t != NULL ? t->generation : 1;
    if (t != NULL && t->plan != NULL && t->plan->generation == t->generation) {
        p = t->plan;
        atomic_fetch_add(&p->refs, 1);
    }
    pthread_mutex_unlock(&d->lock);
    return p;
}

/* The tenant's plan of its newest known generation (a reference the caller drops with
 * plan_unref), or NULL with err. */
static struct plan *
plan_get(director *d, int64_t tenant_id, char *err, size_t errlen)
{
    int64_t gen;
    struct plan *p = plan_current(d, tenant_id, &gen);
    if (p != NULL)
        return p;
    pthread_mutex_lock(&d->load_lock);
    if ((p = plan_current(d, tenant_id, &gen)) == NULL &&
        (p = plan_load(d, tenant_id, gen, err, errlen)) != NULL) {
        pthread_mutex_lock(&d->lock);
        struct tenant_state *t = tenant_at(d, tenant_id, p->generation);
        if (t != NULL && (t->plan == NULL || t->plan->generation < p->generation)) {
            plan_unref(t->plan);
            t->plan = p;
            atomic_fetch_add(&p->refs, 1);
        }
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&d->load_lock);
    return p;
}

/* The group's current deployment in p, or NULL. */
static const struct store_deployment *
plan_deployment(const struct plan *p, int64_t group_id)
{
    for (size_t i = 0; i < p->n && group_id > 0; i++)
        if (p->deps[i].group_id == group_id)
            return &p->deps[i];
    return NULL;
}

/* What an answer offers: the deployment (NULL: nothing) and whether only its platform images (a
 * recovery answer, docs/update.md section 8). */
struct offer {
    const struct store_deployment *dep;
    int recovery;
    const struct director_filter *filter; /* recovery answers: which images to keep, or NULL */
};

/* The device's offer: its group's deployment when its wave is in. */
static struct offer
offered(const struct plan *p, const struct director_device *dev)
{
    const struct store_deployment *dep = plan_deployment(p, dev->group_id);
    struct offer o = {dep != NULL && rollout_eligible(dev->device_id, dep) ? dep : NULL, 0, NULL};
    return o;
}

/* A recovery offer: the group's running or completed deployment, whatever the device's wave (a
 * paused or halted release is not pushed to devices that cannot run anything else). */
static struct offer
recovery_offer(const struct plan *p, const struct director_device *dev,
               const struct director_filter *filter)
{
    const struct store_deployment *dep = plan_deployment(p, dev->group_id);
    int live =
        dep != NULL && (dep->state == STORE_DEPLOY_RUNNING || dep->state == STORE_DEPLOY_COMPLETED);
    struct offer o = {live ? dep : NULL, 1, filter};
    return o;
}

/* Whether image im of o's deployment is named: not deleted since, and a platform image in a
 * recovery answer. */
static int
offer_names(const struct offer *o, const struct store_deploy_image *im)
{
    if (im->size < 0 || (o->recovery && strcmp(im->kind, "os") != 0))
        return 0;
    return !o->recovery || o->filter == NULL || o->filter->accept(o->filter->ctx, im);
}

/* The "signed" object of the device's answer. */
static json_t *
answer_signed(const struct plan *p, const struct director_device *dev, const struct offer *o,
              char *err, size_t errlen)
{
    const struct store_deployment *dep = o->dep;
    json_t *s = ota_meta_new_targets(p->generation, p->expires);
    char path[140];
    int rc = s != NULL ? 0 : -1;
    for (size_t i = 0; dep != NULL && i < dep->nimages && rc == 0; i++) {
        const struct store_deploy_image *im = &dep->images[i];
        if (!offer_names(o, im))
            continue;
        json_t *custom = json_pack(
            "{s:s, s:s, s:s, s:I, s:s, s:I, s:I}", "component", im->component, "kind", im->kind,
            "version", im->version, "svn", (json_int_t)im->svn, "hardware", im->hardware,
            "product_id", (json_int_t)im->product_id, "deployment_id", (json_int_t)dep->id);
        snprintf(path, sizeof(path), "%s/%s", im->component, im->sha256);
        rc = custom != NULL
                 ? ota_meta_targets_add(s, path, im->size, im->sha256, custom, err, errlen)
                 : -1;
        json_decref(custom);
    }
    json_t *custom =
        rc != 0 ? NULL
                : json_pack("{s:s, s:I, s:o, s:o}", "device_id", dev->device_id, "tenant_id",
                            (json_int_t)dev->tenant_id, "deployment_id",
                            dep != NULL ? json_integer(dep->id) : json_null(), "wave",
                            dep != NULL ? json_integer(rollout_wave_of(dev->device_id, dep))
                                        : json_null());
    if (custom != NULL && o->recovery)
        json_object_set_new(custom, "recovery", json_true());
    if (rc == 0)
        rc = custom != NULL ? json_object_set_new(s, "custom", custom) : -1;
    if (rc != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

/* Builds and signs the device's answer from p into e (body malloc'd). */
static int
answer_build(director *d, const struct plan *p, const struct director_device *dev,
             const struct offer *o, struct device_entry *e, char *err, size_t errlen)
{
    json_t *env = NULL, *sobj = answer_signed(p, dev, o, err, errlen);
    char *bytes = NULL, key[64], sig[OTA_SIG_HEX_LEN], keyid[OTA_KEYID_HEX_LEN];
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    size_t blen = 0;
    int rc = -1;

    snprintf(key, sizeof(key), "tenants/%lld/tuf-director", (long long)dev->tenant_id);
    if (sobj == NULL || (env = ota_meta_envelope(sobj)) == NULL ||
        ota_meta_signed_bytes(env, &bytes, &blen, err, errlen) != 0 ||
        signer_ed25519_sign(d->sg, key, (const unsigned char *)bytes, blen, sig, keyid, err,
                            errlen) != 0)
        goto out;
    if (json_array_append_new(json_object_get(env, "signatures"),
                              json_pack("{s:s, s:s}", "keyid", keyid, "sig", sig)) != 0 ||
        ota_meta_dump(env, &e->body, &e->len, err, errlen) != 0)
        goto out;
    crypto_hash_sha256(h, (const unsigned char *)e->body, e->len);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(e->etag, sizeof(e->etag), "\"%lld-%.16s\"", (long long)p->generation, hex);
    e->tenant_id = dev->tenant_id;
    e->group_id = dev->group_id;
    e->generation = p->generation;
    rc = 0;
out:
    if (rc != 0 && err[0] == '\0')
        snprintf(err, errlen, "cannot build the director metadata");
    free(bytes);
    json_decref(env);
    return rc;
}

/* Copies e out to the caller. */
static int
copy_out(const struct device_entry *e, char etag[DIRECTOR_ETAG_MAX], char **body, size_t *len)
{
    memcpy(etag, e->etag, DIRECTOR_ETAG_MAX);
    if (body == NULL)
        return 0;
    if ((*body = malloc(e->len + 1)) == NULL)
        return -1;
    memcpy(*body, e->body, e->len);
    (*body)[e->len] = '\0';
    *len = e->len;
    return 0;
}

/* Looks up a fresh cached answer: 1 copied out, 0 none, -1 out of memory. *moved is set when the
 * device's answer of this generation was for another group (or tenant). Under the lock. */
static int
cached(director *d, const struct director_device *dev, char etag[DIRECTOR_ETAG_MAX], char **body,
       size_t *len, int *moved)
{
    const struct tenant_state *t = tenant_find(d, dev->tenant_id);
    size_t idx = hmap_find(&d->devices, dev->device_id, strlen(dev->device_id));
    *moved = 0;
    if (t == NULL || idx == HMAP_NONE || idx >= d->dcap)
        return 0;
    const struct device_entry *e = &d->ds[idx];
    if (e->body == NULL || e->generation != t->generation)
        return 0;
    if (e->tenant_id != dev->tenant_id || e->group_id != dev->group_id) {
        *moved = 1;
        return 0;
    }
    return copy_out(e, etag, body, len) == 0 ? 1 : -1;
}

/* Frees one live entry's body, picked at random (so no access pattern makes every check miss, as
 * a cyclic one does with LRU or clock). Under the lock, with d->live > 0. */
static void
evict_one(director *d)
{
    size_t n = hmap_count(&d->devices), i = randombytes_uniform((uint32_t)n);
    assert(d->live > 0 && n <= UINT32_MAX);
    for (size_t k = 0; k < n; k++, i = (i + 1) % n) {
        if (i < d->dcap && d->ds[i].body != NULL) {
            free(d->ds[i].body);
            d->ds[i].body = NULL;
            d->live--;
            return;
        }
    }
}

/* Rebuilds the map with the live entries only, so evicted keys do not pile up. Under the lock.
 * Out of memory: everything is dropped (answers are built again). */
static void
compact(director *d)
{
    struct hmap m = {0};
    size_t cap = d->live > 0 ? d->live : 1, n = 0;
    struct device_entry *ds = calloc(cap, sizeof(*ds));
    int failed = ds == NULL;
    for (size_t i = 0; !failed && n < cap && i < hmap_count(&d->devices) && i < d->dcap; i++) {
        size_t klen, idx;
        int added;
        const void *k = hmap_key(&d->devices, i, &klen);
        if (d->ds[i].body == NULL)
            continue;
        if (hmap_insert(&m, k, klen, &idx, &added) != 0) {
            failed = 1;
            break;
        }
        assert(idx == n);
        ds[n++] = d->ds[i];
        d->ds[i].body = NULL;
    }
    clear_devices(d);
    if (failed) {
        hmap_clear(&m);
        for (size_t j = 0; ds != NULL && j < n; j++)
            free(ds[j].body); /* moved out of d->ds already */
        free(ds);
        return;
    }
    free(d->ds);
    d->devices = m;
    d->ds = ds;
    d->dcap = cap;
    d->live = n;
}

/* Keeps e (its body taken) as the device's answer. Under the lock. */
static void
keep(director *d, const struct director_device *dev, struct device_entry *e)
{
    size_t idx;
    int added;
    if (hmap_count(&d->devices) >= 2 * d->cache_max)
        compact(d);
    if (hmap_insert(&d->devices, dev->device_id, strlen(dev->device_id), &idx, &added) != 0 ||
        grow((void **)&d->ds, &d->dcap, idx, sizeof(*d->ds)) != 0)
        return; /* not cached: built again next time */
    if (!added && d->ds[idx].generation > e->generation)
        return; /* a newer answer got there first */
    if (d->ds[idx].body == NULL) {
        if (d->live >= d->cache_max)
            evict_one(d);
        d->live++;
    }
    free(d->ds[idx].body);
    d->ds[idx] = *e;
    e->body = NULL;
}

/* Reads the tenant's generation from the store now (as director_sync does for every tenant). */
static int
director_sync_tenant(director *d, int64_t tenant_id, char *err, size_t errlen)
{
    int64_t gen, made_at;
    if (store_director_generation(d->st, tenant_id, &gen, &made_at) != STORE_OK) {
        snprintf(err, errlen, "cannot read the director generation");
        return -1;
    }
    director_note(d, tenant_id, gen);
    return 0;
}

int
director_answer(director *d, const struct director_device *dev, int64_t now,
                char etag[DIRECTOR_ETAG_MAX], char **body, size_t *len, char *err, size_t errlen)
{
    struct device_entry e = {0};
    struct plan *p;
    int rc, moved;

    err[0] = '\0';
    pthread_mutex_lock(&d->lock);
    rc = cached(d, dev, etag, body, len, &moved);
    pthread_mutex_unlock(&d->lock);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    /* A device moved to another group changes its answer: the move bumped the generation in its
     * transaction (store_devices.c), so take it now rather than at the next director_sync, and
     * never sign a different answer with the version of the one it replaces. */
    if (moved && director_sync_tenant(d, dev->tenant_id, err, errlen) != 0)
        return -1;
    (void)now;
    if ((p = plan_get(d, dev->tenant_id, err, errlen)) == NULL)
        return -1;
    struct offer o = offered(p, dev);
    rc = answer_build(d, p, dev, &o, &e, err, errlen);
    plan_unref(p);
    if (rc != 0)
        return -1;
    atomic_fetch_add(&d->built, 1);
    rc = copy_out(&e, etag, body, len);
    pthread_mutex_lock(&d->lock);
    keep(d, dev, &e);
    pthread_mutex_unlock(&d->lock);
    free(e.body);
    return rc;
}

int
director_names_image(director *d, const struct director_device *dev, const char *sha256)
{
    char err[128];
    struct plan *p = plan_get(d, dev->tenant_id, err, sizeof(err));
    int found = 0;
    if (p == NULL)
        return -1;
    struct offer o = offered(p, dev);
    for (size_t i = 0; o.dep != NULL && i < o.dep->nimages && !found; i++)
        found = offer_names(&o, &o.dep->images[i]) && strcmp(o.dep->images[i].sha256, sha256) == 0;
    plan_unref(p);
    return found;
}

int
director_recovery_answer(director *d, const struct director_device *dev,
                         const struct director_filter *accept, char (*images)[65], size_t max,
                         size_t *n, char **body, size_t *len, char *err, size_t errlen)
{
    struct device_entry e = {0};
    struct plan *p;
    int rc = -1;

    err[0] = '\0';
    *n = 0;
    if ((p = plan_get(d, dev->tenant_id, err, errlen)) == NULL)
        return -1;
    struct offer o = recovery_offer(p, dev, accept);
    for (size_t i = 0; o.dep != NULL && i < o.dep->nimages; i++) {
        if (offer_names(&o, &o.dep->images[i]) && *n < max)
            memcpy(images[(*n)++], o.dep->images[i].sha256, 65);
    }
    if (*n > 0 && answer_build(d, p, dev, &o, &e, err, errlen) == 0) {
        *body = e.body;
        *len = e.len;
        rc = 0;
    } else if (*n == 0) {
        snprintf(err, errlen,
                 "the group has no running or completed deployment with an os image that would "
                 "pass attestation");
    }
    plan_unref(p);
    return rc;
}

int
director_sync(director *d, int64_t now)
{
    struct store_generation *g = NULL;
    int64_t stale[64];
    size_t n = 0, nstale = 0;
    int rc = 0;

    if (store_director_generations(d->st, &g, &n) != STORE_OK)
        return -1;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n; i++)
        if (tenant_find(d, g[i].tenant_id) != NULL)
            tenant_at(d, g[i].tenant_id, g[i].generation);
    for (size_t i = 0; d->ts != NULL && i < hmap_count(&d->tenants) && i < d->tcap && nstale < 64;
         i++) {
        const struct plan *p = d->ts[i].plan;
        size_t klen;
        const char *k = hmap_key(&d->tenants, i, &klen);
        if (p != NULL && p->generation == d->ts[i].generation &&
            p->made_at < now - DIRECTOR_RESIGN_S && klen == sizeof(int64_t))
            memcpy(&stale[nstale++], k, sizeof(int64_t));
    }
    pthread_mutex_unlock(&d->lock);
    free(g);
    for (size_t i = 0; i < nstale; i++) {
        int64_t gen;
        if (store_director_bump(d->st, stale[i], now, &gen) == STORE_OK)
            director_note(d, stale[i], gen);
        else
            rc = -1;
    }
    return rc;
}
