/* ctl_ota_trust: trusted roots in the key directory, synced through the root chain
 * (ctl_ota_trust.h). */
#include "ctl_ota_trust.h"

#include "ctl_client.h"
#include "ota_meta.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_FILE_MAX (64 * 1024) /* docs/update.md 2.1 */

void
ctl_ota_trusted_free(struct ctl_ota_trusted *t)
{
    json_decref(t->env);
    ota_root_free(t->root);
    t->env = NULL;
    t->root = NULL;
}

const json_t *
ctl_ota_trusted_signed(const struct ctl_ota_trusted *t)
{
    return json_object_get(t->env, "signed");
}

static int
trust_path(char *buf, size_t len, const char *dir, const char *repo)
{
    int n = snprintf(buf, len, "%s/trusted/%s-root.json", dir, repo);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int
ctl_ota_trust_save(const char *dir, const char *repo, const json_t *env)
{
    char path[PATH_MAX], sub[PATH_MAX], err[256];
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    if (trust_path(path, sizeof(path), dir, repo) != 0 ||
        snprintf(sub, sizeof(sub), "%s/trusted", dir) >= (int)sizeof(sub)) {
        ctl_err("%s: path too long", dir);
        return -1;
    }
    if (util_mkdirs(sub, 0700) != 0) {
        ctl_err("%s: %s", sub, strerror(errno));
        goto out;
    }
    if (ota_meta_dump(env, &text, &len, err, sizeof(err)) != 0) {
        ctl_err("cannot save the trusted %s root: %s", repo, err);
        goto out;
    }
    if (util_write_file(path, text, len, 0644) != 0) {
        ctl_err("%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* The trusted root of repo saved in dir (self-signed; it was verified before it was saved). */
static int
load_trusted(const char *dir, const char *repo, struct ctl_ota_trusted *t)
{
    char path[PATH_MAX], err[256];
    size_t len = 0;
    json_error_t je;
    char *text = trust_path(path, sizeof(path), dir, repo) == 0
                     ? util_read_file(path, ROOT_FILE_MAX, &len)
                     : NULL;
    if (text == NULL) {
        ctl_err("%s: no trusted %s root (aegisctl ota keys init saves it; copy it from the machine "
                "that made the keys)",
                path, repo);
        return CTL_EXIT_LOCAL;
    }
    t->env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (t->env == NULL || ota_root_load(t->env, &t->root, err, sizeof(err)) != 0) {
        ctl_err("%s: not a usable root: %s", path, t->env == NULL ? je.text : err);
        ctl_ota_trusted_free(t);
        return CTL_EXIT_LOCAL;
    }
    return CTL_EXIT_OK;
}

/* The server's root of repo at version into *env. */
static int
fetch_root(struct ctl *c, const char *repo, int64_t version, json_t **env)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/ota/%s/%lld.root.json",
             strcmp(repo, "image") == 0 ? "repo" : "director", (long long)version);
    return ctl_request_object(c, "GET", path, NULL, env);
}

/* The server's newest root version of repo (0: none). */
static int
server_version(struct ctl *c, const char *repo, int64_t *v)
{
    json_t *st = NULL;
    int rc = ctl_request_object(c, "GET", "/v1/ota/status", NULL, &st);
    *v = json_integer_value(
        json_object_get(json_object_get(json_object_get(st, repo), "root"), "version"));
    json_decref(st);
    return rc;
}

/* Walks the server's chain from t's version + 1 to newest; t becomes the newest verified. */
static int
walk_chain(struct ctl *c, const char *repo, int64_t newest, struct ctl_ota_trusted *t)
{
    char err[512];
    for (int64_t n = ota_root_version(t->root) + 1; n <= newest; n++) {
        json_t *env = NULL;
        ota_root *next = NULL;
        int rc = fetch_root(c, repo, n, &env);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (ota_verify_root_update(t->root, env, &next, err, sizeof(err)) != 0) {
            ctl_err("refused: the server's %s root %lld does not follow the trusted root %lld "
                    "(%s); it is not the manufacturer's",
                    repo, (long long)n, (long long)(n - 1), err);
            json_decref(env);
            return CTL_EXIT_API;
        }
        ctl_ota_trusted_free(t);
        t->env = env;
        t->root = next;
    }
    return CTL_EXIT_OK;
}

int
ctl_ota_trust_sync(struct ctl *c, const char *dir, const char *repo, struct ctl_ota_trusted *t)
{
    json_t *same = NULL;
    int64_t newest = 0;
    memset(t, 0, sizeof(*t));
    int rc = load_trusted(dir, repo, t);
    if (rc != CTL_EXIT_OK || (rc = server_version(c, repo, &newest)) != CTL_EXIT_OK)
        goto out;
    int64_t have = ota_root_version(t->root);
    rc = CTL_EXIT_API;
    if (newest < have || newest - have > CTL_OTA_MAX_CHAIN) {
        ctl_err("refused: the server's newest %s root is version %lld, the trusted one %lld", repo,
                (long long)newest, (long long)have);
        goto out;
    }
    if ((rc = fetch_root(c, repo, have, &same)) != CTL_EXIT_OK)
        goto out;
    if (!json_equal(json_object_get(same, "signed"), (json_t *)ctl_ota_trusted_signed(t))) {
        ctl_err("refused: the server's %s root version %lld is not the trusted one", repo,
                (long long)have);
        rc = CTL_EXIT_API;
        goto out;
    }
    if ((rc = walk_chain(c, repo, newest, t)) == CTL_EXIT_OK && newest > have &&
        ctl_ota_trust_save(dir, repo, t->env) != 0)
        rc = CTL_EXIT_LOCAL;
out:
    json_decref(same);
    if (rc != CTL_EXIT_OK)
        ctl_ota_trusted_free(t);
    return rc;
}
