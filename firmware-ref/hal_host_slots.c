/* hal_host_slots: the A/B slots, boot control block and security-version counters of adev_hal.h
 * on a Linux host (layout in hal_host.h). Both files are small JSON documents replaced whole by
 * util_write_file, so a power loss leaves the old document or the new one; whatever is read back
 * is validated (a malformed file is an error, never trusted). */
#include "hal_host.h"
#include "hal_host_int.h"

#include "proto_fields.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS_DIR "slots"
#define BOOTCTL_FILE "bootctl.json"
#define SVN_FILE "svn.json"
#define BOOTCTL_MAX 4096
#define SVN_FILE_MAX 65536
#define SVN_COMPONENTS_MAX 64 /* more components than any manifest names (8 stages + previous) */
#define TRIES_MAX 255
#define PATH_BUF 4096

struct adev_slots {
    char *dir; /* DIR/slots */
    adev_storage *st[ADEV_SLOT_COUNT];
    unsigned wflags; /* util_write_file_flags' flags */
};

adev_slots *
adev_host_slots_open(const char *dir, int flags)
{
    adev_slots *s = NULL, *res = NULL;
    char path[PATH_BUF];

    if (dir == NULL || (s = calloc(1, sizeof(*s))) == NULL)
        goto out;
    s->wflags = (flags & ADEV_HOST_STORAGE_NOSYNC) ? UTIL_WRITE_NOSYNC : 0;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, SLOTS_DIR);
    if (n <= 0 || (size_t)n >= sizeof(path) || adev_host_make_dir(dir) != 0 ||
        adev_host_make_dir(path) != 0 || (s->dir = strdup(path)) == NULL)
        goto out;
    adev_host_remove_stale_temps(s->dir);
    for (int i = 0; i < ADEV_SLOT_COUNT; i++) {
        n = snprintf(path, sizeof(path), "%s/%d", s->dir, i);
        if (n <= 0 || (size_t)n >= sizeof(path) ||
            (s->st[i] = adev_host_storage_open_flags(path, flags)) == NULL)
            goto out;
    }
    res = s;
    s = NULL;
out:
    adev_slots_free(s);
    return res;
}

void
adev_slots_free(adev_slots *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < ADEV_SLOT_COUNT; i++)
        adev_storage_free(s->st[i]);
    free(s->dir);
    free(s);
}

adev_storage *
adev_slots_storage(adev_slots *s, int i)
{
    return s != NULL && i >= 0 && i < ADEV_SLOT_COUNT ? s->st[i] : NULL;
}

/* --- the two files --------------------------------------------------------------------------- */

static int
file_path(const adev_slots *s, const char *name, char *path)
{
    int n = snprintf(path, PATH_BUF, "%s/%s", s->dir, name);
    return n > 0 && n < PATH_BUF ? 0 : -1;
}

/* Parses the file name of s as a JSON object into *root (a new reference). 0, -1 (unreadable,
 * malformed, too large), -2 (missing). */
static int
load_json(adev_slots *s, const char *name, size_t max, json_t **root)
{
    char path[PATH_BUF];
    uint8_t *text = NULL;
    size_t len = 0;
    json_error_t jerr;

    *root = NULL;
    if (s == NULL || file_path(s, name, path) != 0)
        return -1;
    int rc = adev_host_read_file(path, max, &text, &len);
    if (rc != 0)
        return rc == -2 ? -2 : -1;
    *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (*root == NULL || !json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

/* Writes root to the file name of s atomically; steals the reference. 0 or -1. */
static int
store_json(adev_slots *s, const char *name, json_t *root)
{
    char path[PATH_BUF];
    char *text = NULL;
    int rc = -1;

    if (root == NULL || file_path(s, name, path) != 0)
        goto out;
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        goto out;
    adev_host_hook(path, text, strlen(text));
    rc = util_write_file_flags(path, text, strlen(text), 0644, s->wflags);
out:
    free(text);
    json_decref(root);
    return rc;
}

static int
reason_ok(const char *r)
{
    size_t n = strlen(r);
    if (n >= ADEV_BOOTCTL_REASON_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i] < 0x20 || r[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* A block that names slots that exist, a trial slot other than the active one, and tries a
 * bootloader can count down. */
static int
bootctl_ok(const struct adev_bootctl *c)
{
    return c->active >= 0 && c->active < ADEV_SLOT_COUNT && c->trial >= -1 &&
           c->trial < ADEV_SLOT_COUNT && c->trial != c->active && c->tries <= TRIES_MAX &&
           c->booted >= 0 && c->booted < ADEV_SLOT_COUNT &&
           (c->booted_trial == 0 || c->booted_trial == 1) && reason_ok(c->rollback_reason);
}

int
adev_bootctl_read(adev_slots *s, struct adev_bootctl *out)
{
    json_t *root = NULL;
    json_int_t active = 0, trial = 0, tries = 0, booted = 0, seq = 0;
    int booted_trial = 0;
    const char *reason = NULL;
    json_error_t jerr;
    struct adev_bootctl c;

    if (out == NULL)
        return -1;
    int rc = load_json(s, BOOTCTL_FILE, BOOTCTL_MAX, &root);
    if (rc != 0)
        return rc;
    rc = -1;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:I, s:I, s:I, s:I, s:b, s:s, s:I}", "active",
                       &active, "trial", &trial, "tries", &tries, "booted", &booted, "booted_trial",
                       &booted_trial, "rollback_reason", &reason, "seq", &seq) != 0 ||
        active < 0 || active > 1 || trial < -1 || trial > 1 || tries < 0 || tries > TRIES_MAX ||
        booted < 0 || booted > 1 || seq < 0 || strlen(reason) >= ADEV_BOOTCTL_REASON_MAX)
        goto out;
    memset(&c, 0, sizeof(c));
    c.active = (int)active;
    c.trial = (int)trial;
    c.tries = (unsigned)tries;
    c.booted = (int)booted;
    c.booted_trial = booted_trial;
    snprintf(c.rollback_reason, sizeof(c.rollback_reason), "%s", reason);
    c.seq = (uint64_t)seq;
    if (!bootctl_ok(&c))
        goto out;
    *out = c;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int
adev_bootctl_write(adev_slots *s, const struct adev_bootctl *c)
{
    if (s == NULL || c == NULL || !bootctl_ok(c) || c->seq > (uint64_t)INT64_MAX)
        return -1;
    return store_json(s, BOOTCTL_FILE,
                      json_pack("{s:i, s:i, s:I, s:i, s:b, s:s, s:I}", "active", c->active, "trial",
                                c->trial, "tries", (json_int_t)c->tries, "booted", c->booted,
                                "booted_trial", c->booted_trial, "rollback_reason",
                                c->rollback_reason, "seq", (json_int_t)c->seq));
}

/* --- counters -------------------------------------------------------------------------------- */

/* Loads svn.json ({component: svn}) validated: *root is a new reference (an empty object when
 * there is no file yet). */
static int
svn_load(adev_slots *s, json_t **root)
{
    int rc = load_json(s, SVN_FILE, SVN_FILE_MAX, root);
    if (rc == -2) {
        *root = json_object();
        return *root != NULL ? 0 : -1;
    }
    if (rc != 0)
        return -1;
    const char *k;
    json_t *v;
    if (json_object_size(*root) > SVN_COMPONENTS_MAX)
        goto bad;
    json_object_foreach(*root, k, v)
    {
        if (!proto_component_ok(k, strlen(k)) || !json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t)PROTO_SVN_MAX)
            goto bad;
    }
    return 0;
bad:
    json_decref(*root);
    *root = NULL;
    return -1;
}

int
adev_svn_read(adev_slots *s, const char *component, uint32_t *svn)
{
    json_t *root = NULL;
    if (component == NULL || svn == NULL || !proto_component_ok(component, strlen(component)) ||
        svn_load(s, &root) != 0)
        return -1;
    json_t *v = json_object_get(root, component);
    *svn = v != NULL ? (uint32_t)json_integer_value(v) : 0;
    json_decref(root);
    return 0;
}

int
adev_svn_raise(adev_slots *s, const char *component, uint32_t svn)
{
    json_t *root = NULL;
    int rc = -1;

    if (component == NULL || !proto_component_ok(component, strlen(component)) ||
        svn_load(s, &root) != 0)
        goto out;
    json_t *v = json_object_get(root, component);
    if (json_integer_value(v) >= (json_int_t)svn) { /* 0 when v is NULL: never raised */
        rc = 0;                                     /* never lowered; nothing to write */
        goto out;
    }
    if ((v == NULL && json_object_size(root) >= SVN_COMPONENTS_MAX) ||
        json_object_set_new(root, component, json_integer((json_int_t)svn)) != 0)
        goto out;
    rc = store_json(s, SVN_FILE, root);
    root = NULL; /* stolen */
out:
    json_decref(root);
    return rc;
}
