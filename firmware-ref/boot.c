/* boot: a measured-boot chain over device storage. */
#include "boot.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAX 65536

/* Parses one manifest entry strictly (no unknown keys). */
static int
parse_entry(json_t *o, struct adev_manifest_entry *e)
{
    const char *stage = NULL, *component = NULL, *version = NULL, *image = NULL;
    json_int_t svn = -1;
    json_error_t jerr;

    if (json_unpack_ex(o, &jerr, JSON_STRICT, "{s:s, s:s, s:s, s:I, s:s}", "stage", &stage,
                       "component", &component, "version", &version, "svn", &svn, "image",
                       &image) != 0)
        return -1;
    e->stage = proto_stage_parse(stage, strlen(stage));
    if (e->stage < 0 || svn < 0 || svn > (json_int_t)PROTO_SVN_MAX ||
        strlen(component) > PROTO_COMPONENT_MAX || strlen(version) > PROTO_VERSION_MAX ||
        strlen(image) > ADEV_STORAGE_NAME_MAX)
        return -1;
    snprintf(e->component, sizeof(e->component), "%s", component);
    snprintf(e->version, sizeof(e->version), "%s", version);
    snprintf(e->image, sizeof(e->image), "%s", image);
    e->svn = (uint32_t)svn;
    return 0;
}

int
adev_manifest_read(adev_storage *st, struct adev_manifest *m)
{
    int rc = -1;
    uint8_t *text = NULL;
    size_t len = 0;
    json_t *root = NULL, *stages = NULL, *previous = NULL;
    json_int_t version = 0;
    json_error_t jerr;

    memset(m, 0, sizeof(*m));
    int r = adev_storage_read(st, ADEV_MANIFEST, MANIFEST_MAX, &text, &len);
    if (r != 0) {
        rc = r == -2 ? -2 : -1;
        goto out;
    }
    root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || json_unpack_ex(root, &jerr, JSON_STRICT, "{s:I, s:o, s?o}", "version",
                                       &version, "stages", &stages, "previous", &previous) != 0)
        goto out;
    if (version != 1 || !json_is_array(stages) || json_array_size(stages) > PROTO_EVENTS_MAX ||
        (previous != NULL &&
         (!json_is_array(previous) || json_array_size(previous) > ADEV_PREVIOUS_MAX)))
        goto out;
    for (size_t i = 0; i < json_array_size(stages); i++) {
        if (parse_entry(json_array_get(stages, i), &m->stages[i]) != 0)
            goto out;
        m->n++;
    }
    for (size_t i = 0; previous != NULL && i < json_array_size(previous); i++) {
        if (parse_entry(json_array_get(previous, i), &m->previous[i]) != 0)
            goto out;
        m->nprev++;
    }
    rc = 0;
out:
    json_decref(root);
    free(text);
    return rc;
}

/* One stage measuring the next: reads the image, hashes it, fills the event. tamper flips a byte
 * of the loaded bytes first (simulated modified flash). */
static int
measure(adev_storage *st, const struct adev_manifest_entry *e, int tamper, struct proto_event *ev)
{
    int rc = -1;
    uint8_t *img = NULL;
    size_t len = 0;

    if (adev_storage_read(st, e->image, ADEV_IMAGE_MAX, &img, &len) != 0 || len == 0)
        goto out;
    if (tamper)
        img[len / 2] ^= 0x5a;
    memset(ev, 0, sizeof(*ev));
    ev->stage = (uint8_t)e->stage;
    snprintf(ev->component, sizeof(ev->component), "%s", e->component);
    snprintf(ev->version, sizeof(ev->version), "%s", e->version);
    ev->svn = e->svn;
    if (proto_sha256(img, len, ev->digest) != 0 || proto_event_check(ev) != 0)
        goto out;
    rc = 0;
out:
    free(img);
    return rc;
}

int
adev_boot_run(adev_storage *st, const struct adev_boot_opts *opts, struct adev_boot_log *out)
{
    struct adev_manifest m;
    struct adev_manifest_entry *chain = m.stages;
    struct adev_boot_opts none = {0, 0};

    if (st == NULL || out == NULL)
        return -1;
    if (opts == NULL)
        opts = &none;
    memset(out, 0, sizeof(*out));
    if (adev_manifest_read(st, &m) != 0)
        return -1;
    size_t n = m.n;
    assert(n <= PROTO_EVENTS_MAX); /* out->events has room for the whole chain */
    if (opts->boot_previous_os) {
        const struct adev_manifest_entry *prev = NULL;
        for (size_t i = 0; i < m.nprev && prev == NULL; i++)
            prev = m.previous[i].stage == PROTO_STAGE_OS ? &m.previous[i] : NULL;
        if (prev == NULL || n < 2 || chain[1].stage != PROTO_STAGE_OS)
            return -1;
        chain[1] = *prev; /* the bootloader picks the other slot */
    }
    /* ROM measures the bootloader, the bootloader the OS, the OS each app: every stage measures
     * and extends before it hands over control, so a stage cannot hide itself from the log. */
    for (size_t i = 0; i < n; i++) {
        int tamper = opts->tamper_os && chain[i].stage == PROTO_STAGE_OS;
        if (measure(st, &chain[i], tamper, &out->events[i]) != 0 ||
            proto_composite_extend(out->composite, &out->events[i]) != 0)
            return -1;
        out->n = i + 1;
        /* "run" stage i: nothing to do in the simulation */
    }
    return proto_event_log_check(out->events, out->n) == 0 ? 0 : -1;
}

static json_t *
entry_json(const struct adev_image *im, const char *blob)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "stage", proto_stage_name(im->stage), "component",
                     im->component, "version", im->version, "svn", (json_int_t)im->svn, "image",
                     blob);
}

int
adev_boot_install(adev_storage *st, const struct adev_image *boot, size_t n,
                  const struct adev_image *previous, size_t nprev)
{
    int rc = -1;
    json_t *root = NULL, *stages = NULL, *prev = NULL;
    char *text = NULL;
    char blob[ADEV_STORAGE_NAME_MAX + 1];
    struct proto_event check[PROTO_EVENTS_MAX];
    size_t apps = 0;

    if (st == NULL || boot == NULL || n > PROTO_EVENTS_MAX || nprev > ADEV_PREVIOUS_MAX ||
        (nprev > 0 && previous == NULL))
        goto out;
    for (size_t i = 0; i < n; i++) {
        memset(&check[i], 0, sizeof(check[i]));
        check[i].stage = (uint8_t)boot[i].stage;
        if (boot[i].component == NULL || boot[i].version == NULL || boot[i].data == NULL ||
            strlen(boot[i].component) > PROTO_COMPONENT_MAX ||
            strlen(boot[i].version) > PROTO_VERSION_MAX)
            goto out;
        snprintf(check[i].component, sizeof(check[i].component), "%s", boot[i].component);
        snprintf(check[i].version, sizeof(check[i].version), "%s", boot[i].version);
    }
    if (proto_event_log_check(check, n) != 0)
        goto out;
    stages = json_array();
    prev = json_array();
    if (stages == NULL || prev == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (boot[i].stage == PROTO_STAGE_APP)
            snprintf(blob, sizeof(blob), "app%zu.img", ++apps);
        else
            snprintf(blob, sizeof(blob), "%s.img", proto_stage_name(boot[i].stage));
        if (adev_storage_write(st, blob, boot[i].data, boot[i].len, 0) != 0 ||
            json_array_append_new(stages, entry_json(&boot[i], blob)) != 0)
            goto out;
    }
    for (size_t i = 0; i < nprev; i++) {
        if (proto_stage_name(previous[i].stage) == NULL || previous[i].data == NULL ||
            previous[i].component == NULL || previous[i].version == NULL)
            goto out;
        snprintf(blob, sizeof(blob), "%s.prev%zu.img", proto_stage_name(previous[i].stage), i);
        if (adev_storage_write(st, blob, previous[i].data, previous[i].len, 0) != 0 ||
            json_array_append_new(prev, entry_json(&previous[i], blob)) != 0)
            goto out;
    }
    root = json_pack("{s:i, s:O, s:O}", "version", 1, "stages", stages, "previous", prev);
    if (root == NULL || (text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) == NULL)
        goto out;
    if (adev_storage_write(st, ADEV_MANIFEST, text, strlen(text), 0) != 0)
        goto out;
    rc = 0;
out:
    free(text);
    json_decref(root);
    json_decref(stages);
    json_decref(prev);
    return rc;
}
