#include "cmd_devices.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#define IMPORT_FILE_MAX ((size_t)256 * 1024 * 1024)
/* What one import request may hold: the API takes 1-10000 entries (server/api/api_devices.c
 * IMPORT_MAX, docs/api.md) in a body of at most import_max_bytes (8 MiB by default); a batch's
 * entries stay under half of that default. */
#define IMPORT_BATCH_MAX 10000
#define IMPORT_BATCH_BYTES ((size_t)4 * 1024 * 1024)

static const struct ctl_col device_cols[] = {{"ID", "id", 0, CTL_COL_HASH},
                                             {"STATE", "state", 0, 0},
                                             {"GROUP_ID", "group_id", 0, 0},
                                             {"PRODUCT_ID", "product_id", 0, 0},
                                             {"CLAIMED_AT", "claimed_at", 0, 0},
                                             {"UPDATED_AT", "updated_at", 0, CTL_COL_WIDE},
                                             {"ATTESTATION", "attestation", 0, CTL_COL_WIDE},
                                             {NULL, NULL, 0, 0}};
static const struct ctl_filter device_filters[] = {
    {"--limit", CTL_F_LIMIT, NULL, NULL, NULL, NULL},
    {"--group", CTL_F_ID, "group_id", NULL, NULL, NULL},
    {"--state", CTL_F_ENUM, "state", "unclaimed|active|blocked",
     "--state: expected unclaimed, active or blocked", NULL},
    {"--tag", CTL_F_LIST, "tag", NULL, "--tag: expected KEY=VALUE", NULL},
    {"--cursor", CTL_F_CURSOR, NULL, NULL, NULL, NULL},
    {"--all", CTL_F_ALL, NULL, NULL, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource devices_res = {"/v1/devices", device_cols, device_filters,
                                                CTL_ID_DEVICE, NULL};

/* Appends {"public_key": pem} to devices. */
static int
append_entry(json_t *devices, json_t *pem)
{
    json_t *o = json_pack("{s:O}", "public_key", pem);
    if (o == NULL)
        return -1;
    return json_array_append_new(devices, o);
}

/* Turns the import file's JSON into the API body. Returns 0, or -1 with "file: reason" printed. */
static int
import_body(const char *file, json_t *doc, json_t **body)
{
    json_t *devices = NULL;
    *body = NULL;
    if (json_is_object(doc)) {
        /* already the API body: {"devices": [...], "claim"?, "group_id"?} */
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v)
        {
            if (strcmp(key, "devices") != 0 && strcmp(key, "claim") != 0 &&
                strcmp(key, "group_id") != 0) {
                ctl_err("%s: unknown key '%.64s' (expected devices, claim, group_id)", file, key);
                return -1;
            }
        }
        json_t *claim = json_object_get(doc, "claim");
        json_t *gid = json_object_get(doc, "group_id");
        if (!json_is_array(json_object_get(doc, "devices"))) {
            ctl_err("%s: \"devices\" must be an array", file);
            return -1;
        }
        if (claim != NULL && !json_is_boolean(claim)) {
            ctl_err("%s: \"claim\" must be true or false", file);
            return -1;
        }
        if (gid != NULL && !json_is_null(gid) &&
            !(json_is_integer(gid) && json_integer_value(gid) > 0)) {
            ctl_err("%s: \"group_id\" must be a positive integer", file);
            return -1;
        }
        *body = json_deep_copy(doc);
    } else if (json_is_array(doc)) {
        /* [PEM, ...] or [{"public_key": PEM}, ...] */
        size_t i;
        json_t *e;
        devices = json_array();
        if (devices == NULL)
            goto oom;
        json_array_foreach(doc, i, e)
        {
            json_t *pem = NULL;
            if (json_is_string(e)) {
                pem = e;
            } else if (json_is_object(e) && json_object_size(e) == 1 &&
                       json_is_string(json_object_get(e, "public_key"))) {
                pem = json_object_get(e, "public_key");
            } else {
                ctl_err("%s: entry %zu: expected a PEM string or {\"public_key\": PEM}", file, i);
                json_decref(devices);
                return -1;
            }
            if (append_entry(devices, pem) != 0)
                goto oom;
        }
        *body = json_pack("{s:o}", "devices", devices);
        devices = NULL;
    } else {
        ctl_err("%s: expected a JSON array of public keys or an object {\"devices\": [...]}", file);
        return -1;
    }
    if (*body == NULL)
        goto oom;
    if (json_array_size(json_object_get(*body, "devices")) == 0) {
        ctl_err("%s: no devices in the file", file);
        json_decref(*body);
        *body = NULL;
        return -1;
    }
    return 0;
oom:
    json_decref(devices);
    ctl_err("out of memory");
    return -1;
}

/* The end (exclusive) of the batch of devs that starts at start: at most max entries and
 * IMPORT_BATCH_BYTES of JSON, and at least one entry. */
static size_t
batch_end(const json_t *devs, size_t start, size_t max)
{
    size_t n = json_array_size(devs), bytes = 0, end = start;
    while (end < n && end - start < max) {
        size_t b = json_dumpb(json_array_get(devs, end), NULL, 0, JSON_COMPACT) + 1;
        if (end > start && bytes + b > IMPORT_BATCH_BYTES)
            break;
        bytes += b;
        end++;
    }
    return end;
}

/* The results of the batches so far. */
struct import_run {
    const char *file;
    size_t nbatches, batch; /* batch: 0-based, the one being sent */
    size_t start, end;      /* its entries [start, end) */
    int64_t imported, created;
    json_t *devices; /* every batch's "devices" entries, indexes in the file */
    json_t *claimed;
};

/* Adds one batch's answer o to run; prints it when there are several. */
static int
import_add(struct ctl *c, struct import_run *run, const json_t *o)
{
    json_t *imp = json_object_get(o, "imported"), *cre = json_object_get(o, "created");
    if (!json_is_integer(imp) || !json_is_integer(cre)) {
        ctl_err("bad_response: expected \"imported\" and \"created\" counts");
        return CTL_EXIT_API;
    }
    run->imported += json_integer_value(imp);
    run->created += json_integer_value(cre);
    run->claimed = json_object_get(o, "claimed");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "devices"), i, e)
    {
        json_t *idx = json_object_get(e, "index");
        json_t *id = json_object_get(e, "device_id");
        if (!json_is_integer(idx) || !json_is_string(id) ||
            json_array_append_new(run->devices,
                                  json_pack("{s:I, s:O}", "index",
                                            json_integer_value(idx) + (json_int_t)run->start,
                                            "device_id", id)) != 0) {
            ctl_err("bad_response: malformed \"devices\" entry");
            return CTL_EXIT_API;
        }
    }
    if (run->nbatches > 1 && !c->json)
        printf("batch %zu/%zu (entries %zu-%zu): imported %lld (%lld new)\n", run->batch + 1,
               run->nbatches, run->start, run->end - 1, (long long)json_integer_value(imp),
               (long long)json_integer_value(cre));
    return CTL_EXIT_OK;
}

/* What was stored when batch run->batch failed (its error is already printed). */
static void
import_failed(const struct import_run *run)
{
    if (run->batch == 0) {
        ctl_err("nothing was imported%s", run->nbatches > 1 ? " (the first batch failed)" : "");
        return;
    }
    ctl_err("batch %zu/%zu (entries %zu-%zu of %s) failed, and the batches after it were not sent; "
            "batches 1-%zu (entries 0-%zu: %lld devices, %lld new) ARE imported. Importing a "
            "device again is harmless: fix the file and run the import again",
            run->batch + 1, run->nbatches, run->start, run->end - 1, run->file, run->batch,
            run->start - 1, (long long)run->imported, (long long)run->created);
}

/* Sends body's devices in batches of at most max entries, stopping at the first that fails, and
 * prints the result. */
static int
import_batches(struct ctl *c, const char *file, const json_t *body, size_t max)
{
    const json_t *devs = json_object_get(body, "devices");
    struct import_run run = {file, 0, 0, 0, 0, 0, 0, json_array(), NULL};
    json_t *batch = NULL, *o = NULL;
    int rc = CTL_EXIT_LOCAL;
    if (run.devices == NULL)
        goto oom;
    for (size_t at = 0; at < json_array_size(devs); at = batch_end(devs, at, max))
        run.nbatches++;
    for (; run.start < json_array_size(devs); run.start = run.end, run.batch++) {
        run.end = batch_end(devs, run.start, max);
        json_t *part = json_array();
        batch = json_copy((json_t *)body); /* claim, group_id; devices replaced */
        if (part == NULL || batch == NULL || json_object_set_new(batch, "devices", part) != 0)
            goto oom;
        for (size_t i = run.start; i < run.end; i++)
            if (json_array_append(part, json_array_get(devs, i)) != 0)
                goto oom;
        rc = ctl_request_entries(c, "POST", "/v1/devices/import", batch, (int64_t)run.start, &o);
        if (rc == CTL_EXIT_OK)
            rc = import_add(c, &run, o);
        if (rc != CTL_EXIT_OK) {
            import_failed(&run);
            goto out;
        }
        if (run.nbatches == 1 && c->json)
            ctl_print_json(o);
        json_decref(batch);
        json_decref(o);
        batch = o = NULL;
    }
    if (c->json && run.nbatches > 1) {
        o = json_pack("{s:I, s:I, s:O?, s:O, s:I}", "imported", (json_int_t)run.imported, "created",
                      (json_int_t)run.created, "claimed", run.claimed, "devices", run.devices,
                      "batches", (json_int_t)run.nbatches);
        if (o == NULL)
            goto oom;
        ctl_print_json(o);
    } else if (!c->json) {
        printf("imported %lld devices (%lld new)", (long long)run.imported, (long long)run.created);
        if (run.nbatches > 1)
            printf(" in %zu batches", run.nbatches);
        printf("\n");
    }
    rc = CTL_EXIT_OK;
    goto out;
oom:
    ctl_err("out of memory");
    rc = CTL_EXIT_LOCAL;
out:
    json_decref(batch);
    json_decref(o);
    json_decref(run.devices);
    return rc;
}

static int
ctl_devices_import(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *group = NULL, *batch_s = NULL;
    int no_claim = 0;
    const struct ctl_opt opts[] = {{"--no-claim", CTL_OPT_FLAG, NULL, &no_claim},
                                   {"--group", CTL_OPT_STR, &group, NULL},
                                   {"--batch-size", CTL_OPT_STR, &batch_s, NULL},
                                   {NULL, 0, NULL, NULL}};
    json_t *doc = NULL, *body = NULL;
    char *text = NULL;
    size_t len = 0;
    int64_t gid = 0, batch = IMPORT_BATCH_MAX;
    int rc;

    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (group != NULL && ctl_parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    if (batch_s != NULL && ctl_int(c, "--batch-size", batch_s, 1, IMPORT_BATCH_MAX, &batch) != 0)
        return CTL_EXIT_USAGE;
    if (group != NULL && no_claim)
        return ctl_usage_error(c, "--group needs the devices claimed (drop --no-claim)");

    rc = CTL_EXIT_LOCAL;
    text = util_read_file(pos[0], IMPORT_FILE_MAX, &len);
    if (text == NULL) {
        ctl_err("cannot read %s (missing, not a regular file, or larger than %zu MiB)", pos[0],
                IMPORT_FILE_MAX >> 20);
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        ctl_err("%s:%d:%d: %s", pos[0], jerr.line, jerr.column, jerr.text);
        goto out;
    }
    free(text);
    text = NULL;
    if (import_body(pos[0], doc, &body) != 0)
        goto out;
    json_decref(doc);
    doc = NULL;
    /* flags win over the file's own claim / group_id */
    if (no_claim && json_object_set_new(body, "claim", json_false()) != 0)
        goto oom;
    if (json_object_get(body, "claim") == NULL &&
        json_object_set_new(body, "claim", json_true()) != 0)
        goto oom;
    if (group != NULL && ctl_set_int(body, "group_id", gid) != 0)
        goto out;
    if (no_claim)
        json_object_del(body, "group_id");
    if (group != NULL && json_is_false(json_object_get(body, "claim"))) {
        rc = ctl_usage_error(c, "--group needs the devices claimed (%s has \"claim\": false)",
                             pos[0]);
        goto out;
    }

    rc = import_batches(c, pos[0], body, (size_t)batch);
    goto out;
oom:
    ctl_err("out of memory");
    rc = CTL_EXIT_LOCAL;
out:
    free(text);
    json_decref(doc);
    json_decref(body);
    return rc;
}

/* The one-time transfer code in file (its first line), into out. Returns 0, or an exit code. */
static int
read_transfer_code(const char *file, char *out, size_t outlen)
{
    size_t len = 0;
    char *text = util_read_file(file, 1024, &len);
    if (text == NULL) {
        ctl_err("--transfer-code-file: cannot read %s", file);
        return CTL_EXIT_LOCAL;
    }
    text[strcspn(text, "\r\n")] = '\0';
    int ok = text[0] != '\0' && strlen(text) < outlen;
    if (ok)
        snprintf(out, outlen, "%s", text);
    sodium_memzero(text, len);
    free(text);
    if (!ok) {
        ctl_err("--transfer-code-file: %s holds no transfer code", file);
        return CTL_EXIT_LOCAL;
    }
    return 0;
}

static int
ctl_devices_claim(struct ctl *c, int argc, char **argv)
{
    const char *group = NULL, *code_file = NULL;
    const struct ctl_opt opts[] = {{"--group", CTL_OPT_STR, &group, NULL},
                                   {"--transfer-code-file", CTL_OPT_STR, &code_file, NULL},
                                   {NULL, 0, NULL, NULL}};
    char path[128], code[128];
    int64_t gid = 0;
    int ec, rc;
    if (ctl_args_device(c, argc, argv, opts, "/claim", path, sizeof(path), &ec) != 0)
        return ec;
    if (group == NULL && code_file == NULL)
        return ctl_show(c, "POST", path, NULL); /* the body is optional */
    if (group != NULL && ctl_parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    if (code_file != NULL && (rc = read_transfer_code(code_file, code, sizeof(code))) != 0)
        return rc;
    json_t *body = json_object();
    if (body == NULL ||
        (gid > 0 && json_object_set_new(body, "group_id", json_integer(gid)) != 0) ||
        (code_file != NULL && json_object_set_new(body, "transfer_code", json_string(code)) != 0)) {
        json_decref(body);
        sodium_memzero(code, sizeof(code));
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    rc = ctl_show(c, "POST", path, body);
    json_decref(body);
    sodium_memzero(code, sizeof(code));
    return rc;
}

static int
ctl_devices_transfer(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (ctl_args_device(c, argc, argv, NULL, "/transfer", path, sizeof(path), &ec) != 0)
        return ec;
    return ctl_show(c, "POST", path, NULL);
}

static int
ctl_devices_move(struct ctl *c, int argc, char **argv)
{
    const char *group = NULL;
    const struct ctl_opt opts[] = {{"--group", CTL_OPT_STR, &group, NULL}, {NULL, 0, NULL, NULL}};
    char path[128];
    int64_t gid = 0;
    int ec;
    if (ctl_args_device(c, argc, argv, opts, "", path, sizeof(path), &ec) != 0)
        return ec;
    if (group == NULL)
        return ctl_usage_error(c, "--group is required (a group ID, or none)");
    if (strcmp(group, "none") != 0 && ctl_parse_id(c, "--group", group, &gid) != 0)
        return CTL_EXIT_USAGE;
    json_t *body =
        gid > 0 ? json_pack("{s:I}", "group_id", (json_int_t)gid) : json_pack("{s:n}", "group_id");
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    int rc = ctl_show(c, "PATCH", path, body);
    json_decref(body);
    return rc;
}

static int
ctl_devices_block(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (ctl_args_device(c, argc, argv, NULL, "/block", path, sizeof(path), &ec) != 0)
        return ec;
    return ctl_show(c, "POST", path, NULL);
}

static int
ctl_devices_unblock(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (ctl_args_device(c, argc, argv, NULL, "/unblock", path, sizeof(path), &ec) != 0)
        return ec;
    return ctl_show(c, "POST", path, NULL);
}

/* --- lifecycle: unclaim, delete, tag (docs/api.md "Devices") --- */

static int
ctl_devices_unclaim(struct ctl *c, int argc, char **argv)
{
    char path[128];
    int ec;
    if (ctl_args_device(c, argc, argv, NULL, "/unclaim", path, sizeof(path), &ec) != 0)
        return ec;
    return ctl_show(c, "POST", path, NULL);
}

static int
ctl_devices_delete(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    char id[65], path[128], done[160];
    int yes = 0;
    const struct ctl_opt opts[] = {{"--yes", CTL_OPT_FLAG, NULL, &yes}, {NULL, 0, NULL, NULL}};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    /* as tenant delete: it cannot be undone, so it is confirmed before the prefix is even looked
     * up */
    if (!yes)
        return ctl_usage_error(c, "this deletes device %.64s and its records, for good: add --yes",
                               pos[0]);
    int rc = ctl_device_arg(c, pos[0], id);
    if (rc != CTL_EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/v1/devices/%s", id);
    snprintf(done, sizeof(done), "device %s deleted", id);
    return ctl_delete_and_say(c, path, done);
}

#define TAG_ARGS_MAX 32 /* KEY=VALUE and KEY- words of one `devices tag` */

/* The tags patch of `devices tag`: KEY=VALUE sets, KEY- removes (as kubectl label). Returns the
 * object, or NULL with the error printed. */
static json_t *
tags_patch(struct ctl *c, const char **words, int n)
{
    json_t *tags = json_object();
    for (int i = 0; tags != NULL && i < n; i++) {
        const char *a = words[i], *eq = strchr(a, '=');
        size_t klen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        char key[65];
        int removal = eq == NULL && klen > 1 && a[klen - 1] == '-';
        if (eq == NULL && !removal)
            goto bad;
        klen -= (size_t)removal;
        if (klen == 0 || klen >= sizeof(key))
            goto bad;
        memcpy(key, a, klen);
        key[klen] = '\0';
        json_t *v = removal ? json_null() : json_string(eq + 1);
        if (v == NULL || json_object_set_new(tags, key, v) != 0)
            goto bad;
    }
    if (tags == NULL)
        ctl_err("out of memory");
    return tags;
bad:
    json_decref(tags);
    ctl_usage_error(c, "expected KEY=VALUE (set) or KEY- (remove): KEY 1-64 characters, VALUE "
                       "UTF-8");
    return NULL;
}

static int
ctl_devices_tag(struct ctl *c, int argc, char **argv)
{
    const char *pos[1 + TAG_ARGS_MAX] = {NULL};
    char id[65], path[128];
    int npos = 0;
    int pr = ctl_parse(c, argc, argv, NULL, pos, 2, 1 + TAG_ARGS_MAX, &npos);
    if (pr != 0)
        return ctl_parse_exit(pr);
    json_t *tags = tags_patch(c, pos + 1, npos - 1);
    if (tags == NULL)
        return CTL_EXIT_USAGE;
    /* after the tags are checked: a usage error needs no request to resolve the prefix */
    int rc = ctl_device_arg(c, pos[0], id);
    if (rc != CTL_EXIT_OK) {
        json_decref(tags);
        return rc;
    }
    json_t *body = json_pack("{s:o}", "tags", tags);
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    snprintf(path, sizeof(path), "/v1/devices/%s", id);
    rc = ctl_show(c, "PATCH", path, body);
    json_decref(body);
    return rc;
}

const struct ctl_cmd cmd_devices_cmds[] = {
    {"devices", "import", ctl_devices_import, 1, "FILE [--no-claim] [--group ID] [--batch-size N]",
     "import device public keys from manufacturing",
     "Imports devices from FILE, a JSON document that is one of:\n"
     "  [\"-----BEGIN PUBLIC KEY-----\\n...\", ...]            PEM strings\n"
     "  [{\"public_key\": \"-----BEGIN PUBLIC KEY-----...\"}, ...]\n"
     "  {\"devices\": [{\"public_key\": ...}, ...], \"claim\": true, \"group_id\": 1}   the API "
     "body\n"
     "Keys are EC P-256 SubjectPublicKeyInfo PEM. A file above the API's limit of one request\n"
     "(10000 devices, or about 4 MiB of keys: half the server's default import_max_bytes) is sent\n"
     "in batches, each reported. Each batch is atomic: on any bad entry nothing of it is stored "
     "and\n"
     "every bad entry is listed as \"index: error: message\" (indexes in the file). The import\n"
     "stops at the first batch that fails and says which batches were imported; importing a "
     "device\n"
     "again is harmless, so the fixed file can be imported again.\n"
     "\n"
     "Options:\n"
     "  --no-claim       only register the devices, do not claim them into the tenant\n"
     "  --group ID       put the claimed devices into group ID\n"
     "  --batch-size N   at most N devices per request (1-10000, default 10000)\n",
     NULL},
    {"devices", "list", ctl_res_list, 1,
     "[--group ID] [--state S] [--tag K=V]... [--limit N] [--cursor C] [--all]", "list devices",
     "Lists devices ordered by id, one page (default 100) unless --all.\n"
     "\n"
     "Options:\n"
     "  --group ID    only devices in group ID\n"
     "  --state S     unclaimed, active or blocked\n"
     "  --tag K=V     only devices with the tag K=V; repeat it (at most 8) for devices with\n"
     "                every one of the tags; V is taken as typed (commas included)\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor (next_cursor of a previous page)\n"
     "  --all         follow next_cursor to the last page\n",
     &devices_res},
    {"devices", "show", ctl_res_show, 1, "ID", "show a device",
     "Shows the device ID (64 hex characters: SHA-256 of its public key; or a unique prefix of "
     "it,\n"
     "at least 4 characters, as for every device argument).\n",
     &devices_res},
    {"devices", "claim", ctl_devices_claim, 1, "ID [--group ID] [--transfer-code-file F]",
     "claim an imported device into the tenant",
     "Claims the device ID (idempotent for the owner). Another tenant's device is claimed with "
     "the\n"
     "one-time code its holder made with `devices transfer` (docs/api.md \"Device ownership\").\n"
     "\n"
     "Options:\n"
     "  --group ID                 put it into group ID\n"
     "  --transfer-code-file F     read the transfer code from F (first line), not from the "
     "command "
     "line\n",
     NULL},
    {"devices", "transfer", ctl_devices_transfer, 1, "ID",
     "make a one-time code to hand a device over",
     "Makes a one-time transfer code for the device ID, valid 24 hours, shown only now; the "
     "receiving\n"
     "tenant claims the device with it (devices claim ID --transfer-code-file F). A new code\n"
     "replaces the previous one.\n",
     NULL},
    {"devices", "move", ctl_devices_move, 1, "ID --group ID|none", "move a device to another group",
     "Moves the claimed device ID into a group, or out of any group with --group none.\n", NULL},
    {"devices", "block", ctl_devices_block, 1, "ID", "block a device",
     "Blocks the device ID: it is denied attestation and device mTLS from its next request on.\n",
     NULL},
    {"devices", "unblock", ctl_devices_unblock, 1, "ID", "unblock a device",
     "Unblocks the device ID.\n", NULL},
    {"devices", "unclaim", ctl_devices_unclaim, 1, "ID", "return a device to unclaimed",
     "Unclaims the device ID: out of its group, unblocked, and its certificates stop working at "
     "once.\n"
     "It stays the tenant's (claim it again, transfer it or delete it).\n",
     NULL},
    {"devices", "delete", ctl_devices_delete, 1, "ID --yes", "delete a device and its records",
     "Deletes the device ID with its attestation records, telemetry reports and update status\n"
     "(docs/api.md \"Deleting a device\"); aggregates such as crash rates keep its share. Its\n"
     "certificates stop working at once. Cannot be undone: --yes is required.\n",
     NULL},
    {"devices", "tag", ctl_devices_tag, 1, "ID KEY=VALUE|KEY- ...", "set or remove device tags",
     "Sets tags (KEY=VALUE) and removes them (KEY-) on the device ID, at most 16 per device.\n"
     "KEY is 1-64 characters of [A-Za-z0-9._/-], VALUE 0-128 bytes. List by tag with\n"
     "`devices list --tag KEY=VALUE`.\n",
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
