#include "upd_recovery.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    unsigned char token_hash[crypto_hash_sha256_BYTES];
    struct upd_recovery_grant g;
    int used;
};

struct upd_recovery {
    pthread_mutex_t lock;
    struct entry e[UPD_RECOVERY_MAX];
    size_t next; /* the slot to reuse when no slot is free or expired: the oldest */
};

upd_recovery *
upd_recovery_new(void)
{
    upd_recovery *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    pthread_mutex_init(&rc->lock, NULL);
    return rc;
}

void
upd_recovery_free(upd_recovery *rc)
{
    if (rc == NULL)
        return;
    pthread_mutex_destroy(&rc->lock);
    sodium_memzero(rc->e, sizeof(rc->e));
    free(rc);
}

static int
grant_ok(const struct upd_recovery_grant *g)
{
    if (g->tenant_id <= 0 || g->nimages > UPD_RECOVERY_IMAGES ||
        strnlen(g->device_id, sizeof(g->device_id)) != 64)
        return 0;
    for (size_t i = 0; i < g->nimages; i++) {
        if (strnlen(g->images[i], sizeof(g->images[i])) != 64)
            return 0;
    }
    return 1;
}

/* The slot for a new grant of device: its earlier grant's, a free or expired one, else the oldest
 * (slots are taken round-robin, so the next one is the oldest). Called with the lock held. */
static struct entry *
slot_for(upd_recovery *rc, const char *device_id, int64_t now)
{
    struct entry *free_slot = NULL;
    for (size_t i = 0; i < UPD_RECOVERY_MAX; i++) {
        struct entry *e = &rc->e[i];
        if (e->used && strcmp(e->g.device_id, device_id) == 0)
            return e;
        if (free_slot == NULL && (!e->used || e->g.expires_at <= now))
            free_slot = e;
    }
    if (free_slot != NULL)
        return free_slot;
    struct entry *e = &rc->e[rc->next];
    rc->next = (rc->next + 1) % UPD_RECOVERY_MAX;
    return e;
}

int
upd_recovery_grant(upd_recovery *rc, struct upd_recovery_grant *g, int64_t now,
                   char token[UPD_RECOVERY_TOKEN_HEX])
{
    unsigned char raw[32];
    if (!grant_ok(g))
        return -1;
    g->expires_at = now + UPD_RECOVERY_TTL_S;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, UPD_RECOVERY_TOKEN_HEX, raw, sizeof(raw));
    pthread_mutex_lock(&rc->lock);
    struct entry *e = slot_for(rc, g->device_id, now);
    crypto_hash_sha256(e->token_hash, (const unsigned char *)token, 64);
    e->g = *g;
    e->used = 1;
    pthread_mutex_unlock(&rc->lock);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

int
upd_recovery_find(upd_recovery *rc, const char *token, int64_t now, struct upd_recovery_grant *g)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    int found = -1;
    if (token == NULL || strnlen(token, 65) != 64)
        return -1;
    crypto_hash_sha256(h, (const unsigned char *)token, 64);
    pthread_mutex_lock(&rc->lock);
    for (size_t i = 0; i < UPD_RECOVERY_MAX; i++) {
        const struct entry *e = &rc->e[i];
        /* tokens are compared as their hashes, in constant time */
        if (e->used && CRYPTO_memcmp(e->token_hash, h, sizeof(h)) == 0) {
            if (e->g.expires_at > now) {
                *g = e->g;
                found = 0;
            }
            break;
        }
    }
    pthread_mutex_unlock(&rc->lock);
    return found;
}

int
upd_recovery_allows(const struct upd_recovery_grant *g, const char *sha256)
{
    for (size_t i = 0; i < g->nimages; i++) {
        if (strcmp(g->images[i], sha256) == 0)
            return 1;
    }
    return 0;
}
