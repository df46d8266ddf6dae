/* aegisctl ota: the manufacturer's side of the TUF repositories (docs/update.md 2): offline root
 * and targets keys made and kept in a local directory, roots and targets signed here and
 * uploaded, never a private key sent (ctl_ota.h). The server is not trusted: roots come from the
 * directory's trusted roots (ctl_ota_trust.h), and what a targets proposal changes is computed
 * here against targets verified with the trusted keys (ctl_ota_targets.h). */
#include "cmd_ota.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_ota.h"
#include "ctl_ota_targets.h"
#include "ctl_ota_trust.h"
#include "ota_meta.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_EXPIRES_DAYS 365

/* The options shared by keys init and root rotate (--expect: keys init only). */
struct key_opts {
    const char *dir, *root_keys, *root_thr, *targets_keys, *targets_thr, *days, *expect;
    int64_t nroot, kroot, ntargets, ktargets, ndays;
    int yes;
};

/* How a targets version is signed: confirmation given (--yes), what it must add (a parsed
 * --expect, ctl_ota_expect_parse; may be NULL), its lifetime in days, and whether it must change
 * nothing (a rotation's re-sign). */
struct sign_opts {
    int yes;
    json_t *expect;
    int64_t days;
    int unchanged;
};

/* A targets proposal checked here, and what it changes from the verified current targets. */
struct proposal {
    json_t *cur, *p;        /* the current targets map (NULL: none verified), the answer */
    const json_t *s, *next; /* in p: the proposal's "signed" and its targets map */
    struct ctl_ota_diff d;
    int64_t version; /* of the proposal */
};

static void
proposal_free(struct proposal *pr)
{
    ctl_ota_diff_free(&pr->d);
    json_decref(pr->cur);
    json_decref(pr->p);
    memset(pr, 0, sizeof(*pr));
}

/* The tenant's online keys (GET /v1/ota/keys) as three one-key sets: snapshot, timestamp,
 * director. */
static int
fetch_online(struct ctl *c, struct ctl_ota_keys online[3])
{
    static const char *const names[] = {"snapshot", "timestamp", "director"};
    json_t *o = NULL;
    char err[256];
    int rc = ctl_request_object(c, "GET", "/v1/ota/keys", NULL, &o);
    for (int i = 0; rc == CTL_EXIT_OK && i < 3; i++) {
        ctl_ota_keys_wipe(&online[i]);
        if (ota_key_from_public_json(json_object_get(json_object_get(o, names[i]), "key"),
                                     &online[i].k[0], err, sizeof(err)) != 0) {
            ctl_err("bad_response: the online %s key: %s", names[i], err);
            rc = CTL_EXIT_API;
        }
        online[i].n = 1;
    }
    json_decref(o);
    return rc;
}

static int
put_root(struct ctl *c, const char *repo, const json_t *env)
{
    char path[64];
    json_t *o = NULL;
    snprintf(path, sizeof(path), "/v1/ota/root?repo=%s", repo);
    int rc = ctl_request_object(c, "PUT", path, env, &o);
    if (rc == CTL_EXIT_OK && !c->json)
        printf("%s root version %lld published\n", repo,
               (long long)json_integer_value(json_object_get(o, "version")));
    json_decref(o);
    return rc;
}

/* Asks before signing unless yes: only on a terminal, and only "yes" goes on. 0 to go on, else
 * the exit code. */
static int
confirm(struct ctl *c, int yes, int64_t version)
{
    char answer[16];
    if (yes)
        return CTL_EXIT_OK;
    if (!isatty(STDIN_FILENO))
        return ctl_usage_error(c, "not a terminal: confirm with --yes");
    fprintf(stderr, "sign and publish targets version %lld? type yes: ", (long long)version);
    if (fgets(answer, sizeof(answer), stdin) == NULL || strcmp(answer, "yes\n") != 0) {
        ctl_err("not signed");
        return CTL_EXIT_API;
    }
    return CTL_EXIT_OK;
}

/* Signs env with a threshold of the targets keys of the trusted image root s found in dir. */
static int
sign_as_targets(const char *dir, const json_t *s, json_t *env)
{
    struct ctl_ota_keys ks;
    const json_t *role = json_object_get(json_object_get(s, "roles"), "targets");
    json_int_t thr = json_integer_value(json_object_get(role, "threshold"));
    int rc = CTL_EXIT_LOCAL;
    if (ctl_ota_keys_load(dir, "targets", json_object_get(role, "keyids"), &ks) != 0)
        goto out;
    if (thr < 1 || ks.n < (size_t)thr) {
        ctl_err("%s holds %zu of the %lld targets keys needed", dir, ks.n, (long long)thr);
        goto out;
    }
    if (ctl_ota_sign(env, &ks, (size_t)thr) == thr)
        rc = CTL_EXIT_OK;
out:
    ctl_ota_keys_wipe(&ks);
    return rc;
}

/* The server's current targets map, verified with the trusted root's targets keys or prev's (the
 * root before a rotation that changed them; may be NULL): *cur a new reference, NULL when there
 * is none, or when it does not verify (a warning says so: every proposed target then counts as
 * added, so nothing goes unshown). *version the server's current targets version. trusted NULL:
 * no root yet (keys init), when a server that lists targets is refused. */
static int
verified_targets(struct ctl *c, const ota_root *trusted, const ota_root *prev, json_t **cur,
                 int64_t *version)
{
    json_t *st = NULL, *env = NULL;
    char path[64], err[512], err2[512];
    *cur = NULL;
    int rc = ctl_request_object(c, "GET", "/v1/ota/status", NULL, &st);
    *version = json_integer_value(
        json_object_get(json_object_get(json_object_get(st, "image"), "targets"), "version"));
    json_decref(st);
    if (rc != CTL_EXIT_OK || *version < 1)
        return rc;
    if (trusted == NULL) {
        ctl_err("refused: the server lists targets version %lld before any root",
                (long long)*version);
        return CTL_EXIT_API;
    }
    snprintf(path, sizeof(path), "/v1/ota/repo/%lld.targets.json", (long long)*version);
    if ((rc = ctl_request_object(c, "GET", path, NULL, &env)) != CTL_EXIT_OK)
        return rc;
    const struct ota_want w = {OTA_ROLE_TARGETS, -1, *version, 0};
    if (ota_verify_meta(trusted, env, &w, NULL, err, sizeof(err)) == 0 ||
        (prev != NULL && ota_verify_meta(prev, env, &w, NULL, err2, sizeof(err2)) == 0))
        *cur = json_incref(json_object_get(json_object_get(env, "signed"), "targets"));
    else
        fprintf(stderr,
                "warning: the current targets version %lld is not signed by the trusted targets "
                "keys (%s): every proposed target counts as added\n",
                (long long)*version, err);
    json_decref(env);
    return CTL_EXIT_OK;
}

/* Fetches the proposal of targets expiring in days and checks it (ctl_ota_check_proposal,
 * ctl_ota_check_added) and computes what it changes from the current targets verified with
 * trusted (or prev, as verified_targets). *pr filled (proposal_free) whatever the result. */
static int
propose(struct ctl *c, const ota_root *trusted, const ota_root *prev, int64_t days,
        struct proposal *pr)
{
    char path[80];
    int64_t version = 0;
    memset(pr, 0, sizeof(*pr));
    int rc = verified_targets(c, trusted, prev, &pr->cur, &version);
    snprintf(path, sizeof(path), "/v1/ota/targets/proposal?expires_days=%lld", (long long)days);
    if (rc != CTL_EXIT_OK || (rc = ctl_request_object(c, "GET", path, NULL, &pr->p)) != CTL_EXIT_OK)
        return rc;
    pr->version = version + 1;
    pr->s = json_object_get(json_object_get(pr->p, "proposal"), "signed");
    pr->next = json_object_get(pr->s, "targets");
    if (ctl_ota_check_proposal(pr->s, pr->version, util_now(), days) != 0 ||
        ctl_ota_diff_make(pr->cur, pr->next, &pr->d) != 0 ||
        ctl_ota_check_added(&pr->d, pr->next) != 0)
        return CTL_EXIT_API;
    return CTL_EXIT_OK;
}

/* What pr changes, shown before anything is signed: on stdout, or on stderr with --json (whose
 * stdout is the one JSON answer). */
static void
show(const struct ctl *c, const struct proposal *pr)
{
    ctl_ota_diff_print(c->json ? stderr : stdout, &pr->d, pr->cur, pr->next, pr->version);
}

/* What the options require of the changes pr makes: none at all for a rotation's re-sign (it
 * signs the current targets again, nothing else), exactly the --expect entries if given. 0, or
 * CTL_EXIT_API with the reason printed. */
static int
judge(const struct proposal *pr, const struct sign_opts *so)
{
    if (so->unchanged && !ctl_ota_diff_empty(&pr->d)) {
        ctl_err("refused: a rotation re-signs the current targets unchanged, and the proposal "
                "changes them (sign those changes with ota sign first)");
        return CTL_EXIT_API;
    }
    if (so->expect != NULL && ctl_ota_diff_expect(&pr->d, pr->next, so->expect) != 0)
        return CTL_EXIT_API;
    return CTL_EXIT_OK;
}

/* Before keys init or a rotation publishes roots: the proposal judged as sign_targets will judge
 * it after them (against the current targets verified with trusted, NULL before any root), so
 * that a refusal publishes nothing. The changes are shown only when refused. */
static int
judge_before(struct ctl *c, const ota_root *trusted, const struct sign_opts *so)
{
    struct proposal pr;
    int rc = propose(c, trusted, NULL, so->days, &pr);
    if (rc == CTL_EXIT_OK && (rc = judge(&pr, so)) != CTL_EXIT_OK)
        show(c, &pr);
    proposal_free(&pr);
    return rc;
}

/* Fetches the proposal, checks it and what it changes against the verified current targets,
 * shows that, asks, signs it with the trusted root's targets keys in dir and uploads it. prev as
 * verified_targets. */
static int
sign_targets(struct ctl *c, const char *dir, const struct ctl_ota_trusted *t, const ota_root *prev,
             const struct sign_opts *so)
{
    struct proposal pr;
    json_t *env = NULL, *out = NULL;
    int rc = propose(c, t->root, prev, so->days, &pr);
    if (rc != CTL_EXIT_OK)
        goto out;
    show(c, &pr);
    if ((rc = judge(&pr, so)) != CTL_EXIT_OK ||
        (rc = confirm(c, so->yes, pr.version)) != CTL_EXIT_OK)
        goto out;
    /* only the checked "signed" is signed and sent, never the server's envelope as it came */
    rc = (env = ota_meta_envelope(json_deep_copy(pr.s))) != NULL ? CTL_EXIT_OK : CTL_EXIT_LOCAL;
    if (rc != CTL_EXIT_OK || (rc = sign_as_targets(dir, ctl_ota_trusted_signed(t), env)) != 0 ||
        (rc = ctl_request_object(c, "PUT", "/v1/ota/targets", env, &out)) != CTL_EXIT_OK)
        goto out;
    if (c->json)
        ctl_print_json(out);
    else
        printf("targets version %lld published (snapshot %lld, timestamp %lld)\n",
               (long long)json_integer_value(json_object_get(out, "targets")),
               (long long)json_integer_value(json_object_get(out, "snapshot")),
               (long long)json_integer_value(json_object_get(out, "timestamp")));
out:
    proposal_free(&pr);
    json_decref(env);
    json_decref(out);
    return rc;
}

/* Parses the key options (counts and thresholds default to 0: "not given"). */
#define KEY_OPTS_HELP (-1) /* key_options: --help was asked and answered */

static int
key_options(struct ctl *c, int argc, char **argv, const char *sub, struct key_opts *o)
{
    const char *pos[1] = {NULL};
    const struct ctl_opt opts[] = {{"--dir", CTL_OPT_STR, &o->dir, NULL},
                                   {"--root-keys", CTL_OPT_STR, &o->root_keys, NULL},
                                   {"--new-root-keys", CTL_OPT_STR, &o->root_keys, NULL},
                                   {"--root-threshold", CTL_OPT_STR, &o->root_thr, NULL},
                                   {"--targets-keys", CTL_OPT_STR, &o->targets_keys, NULL},
                                   {"--targets-threshold", CTL_OPT_STR, &o->targets_thr, NULL},
                                   {"--expires-days", CTL_OPT_STR, &o->days, NULL},
                                   {"--expect", CTL_OPT_STR, &o->expect, NULL},
                                   {"--yes", CTL_OPT_FLAG, NULL, &o->yes},
                                   {NULL, 0, NULL, NULL}};
    memset(o, 0, sizeof(*o));
    o->ndays = DEFAULT_EXPIRES_DAYS;
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return pr > 0 ? KEY_OPTS_HELP : CTL_EXIT_USAGE;
    if (strcmp(pos[0], sub) != 0)
        return ctl_usage_error(c, "unknown subcommand '%s'", pos[0]);
    if (o->dir == NULL || o->dir[0] == '\0')
        return ctl_usage_error(c, "--dir is required");
    if (o->expect != NULL && strcmp(sub, "init") != 0)
        return ctl_usage_error(c, "--expect: a rotation re-signs the current targets unchanged");
    const struct {
        const char *s, *what;
        int64_t max, *out;
    } ints[] = {{o->root_keys, "root keys", CTL_OTA_MAX_KEYS, &o->nroot},
                {o->root_thr, "root threshold", CTL_OTA_MAX_KEYS, &o->kroot},
                {o->targets_keys, "targets keys", CTL_OTA_MAX_KEYS, &o->ntargets},
                {o->targets_thr, "targets threshold", CTL_OTA_MAX_KEYS, &o->ktargets},
                {o->days, "expires days", 3650, &o->ndays}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (ints[i].s != NULL && ctl_int(c, ints[i].what, ints[i].s, 1, ints[i].max, ints[i].out))
            return CTL_EXIT_USAGE;
    return CTL_EXIT_OK;
}

/* Builds root version of repo from the spec, signs it with each of the key sets, uploads it and
 * keeps it as the trusted root of repo in dir. */
static int
publish_root(struct ctl *c, const char *dir, const char *repo, int64_t version, int64_t days,
             const struct ctl_ota_root_spec *spec, const struct ctl_ota_keys *signers[2])
{
    json_t *env = ctl_ota_build_root(version, util_now() + days * 86400, spec);
    int rc = env != NULL ? CTL_EXIT_OK : CTL_EXIT_LOCAL;
    for (int i = 0; rc == CTL_EXIT_OK && i < 2; i++)
        if (signers[i] != NULL && ctl_ota_sign(env, signers[i], 0) < 0)
            rc = CTL_EXIT_LOCAL;
    if (rc == CTL_EXIT_OK && (rc = put_root(c, repo, env)) == CTL_EXIT_OK &&
        ctl_ota_trust_save(dir, repo, env) != 0)
        rc = CTL_EXIT_LOCAL;
    json_decref(env);
    return rc;
}

/* Without a terminal to ask on, a command that will sign targets needs --yes up front (before it
 * changes anything). */
static int
needs_yes(struct ctl *c, int yes)
{
    if (yes || isatty(STDIN_FILENO))
        return CTL_EXIT_OK;
    return ctl_usage_error(c, "not a terminal: confirm the targets version it signs with --yes");
}

/* Signs and publishes a new targets version against the trusted image root in dir. */
static int
sign_with_trusted(struct ctl *c, const char *dir, const struct sign_opts *so)
{
    struct ctl_ota_trusted t;
    int rc = ctl_ota_trust_sync(c, dir, "image", &t);
    if (rc == CTL_EXIT_OK)
        rc = sign_targets(c, dir, &t, NULL, so);
    ctl_ota_trusted_free(&t);
    return rc;
}

static int
ctl_ota_keys_init(struct ctl *c, int argc, char **argv)
{
    struct key_opts o;
    struct ctl_ota_keys online[3], root, targets;
    struct sign_opts so = {0, NULL, DEFAULT_EXPIRES_DAYS, 0};
    int rc = key_options(c, argc, argv, "init", &o);
    if (rc != CTL_EXIT_OK)
        return rc == KEY_OPTS_HELP ? CTL_EXIT_OK : rc;
    o.nroot = o.nroot ? o.nroot : 1;
    o.kroot = o.kroot ? o.kroot : 1;
    o.ntargets = o.ntargets ? o.ntargets : 1;
    o.ktargets = o.ktargets ? o.ktargets : 1;
    if (o.kroot > o.nroot || o.ktargets > o.ntargets)
        return ctl_usage_error(c, "a threshold cannot exceed its number of keys");
    if ((rc = needs_yes(c, o.yes)) != CTL_EXIT_OK)
        return rc;
    so.yes = o.yes;
    if (o.expect != NULL && (so.expect = ctl_ota_expect_parse(c, o.expect)) == NULL)
        return CTL_EXIT_USAGE;
    memset(&root, 0, sizeof(root));
    memset(&targets, 0, sizeof(targets));
    /* A directory that does not exist yet holds no keys (and is made below). */
    if (access(o.dir, F_OK) == 0 && ctl_ota_keys_load(o.dir, "root", NULL, &root) == 0 &&
        root.n > 0) {
        ctl_err("%s holds root keys already (aegisctl ota root rotate changes them)", o.dir);
        rc = CTL_EXIT_LOCAL;
        goto out;
    }
    if ((so.expect != NULL && (rc = judge_before(c, NULL, &so)) != CTL_EXIT_OK) ||
        (rc = fetch_online(c, online)) != CTL_EXIT_OK)
        goto out;
    rc = CTL_EXIT_LOCAL;
    if (ctl_ota_keys_make(o.dir, "root", (size_t)o.nroot, &root) != 0 ||
        ctl_ota_keys_make(o.dir, "targets", (size_t)o.ntargets, &targets) != 0)
        goto out;
    const struct ctl_ota_keys *signers[2] = {&root, NULL};
    struct ctl_ota_root_spec image = {{&root, &targets, &online[0], &online[1]},
                                      {o.kroot, o.ktargets, 1, 1}};
    struct ctl_ota_root_spec director = {{&root, &online[2], &online[2], &online[2]},
                                         {o.kroot, 1, 1, 1}};
    if ((rc = publish_root(c, o.dir, "image", 1, o.ndays, &image, signers)) != CTL_EXIT_OK ||
        (rc = publish_root(c, o.dir, "director", 1, o.ndays, &director, signers)) != CTL_EXIT_OK)
        goto out;
    /* The repository serves timestamp, snapshot and targets from its first targets version. */
    rc = sign_with_trusted(c, o.dir, &so);
out:
    ctl_ota_keys_wipe(&root);
    ctl_ota_keys_wipe(&targets);
    json_decref(so.expect);
    return rc;
}

static int
ctl_ota_sign_cmd(struct ctl *c, int argc, char **argv)
{
    const char *dir = NULL, *days = NULL, *expect = NULL;
    struct sign_opts so = {0, NULL, DEFAULT_EXPIRES_DAYS, 0};
    const struct ctl_opt opts[] = {{"--dir", CTL_OPT_STR, &dir, NULL},
                                   {"--yes", CTL_OPT_FLAG, NULL, &so.yes},
                                   {"--expect", CTL_OPT_STR, &expect, NULL},
                                   {"--expires-days", CTL_OPT_STR, &days, NULL},
                                   {NULL, 0, NULL, NULL}};
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (dir == NULL || dir[0] == '\0')
        return ctl_usage_error(c, "--dir is required");
    if (days != NULL && ctl_int(c, "expires days", days, 1, 3650, &so.days))
        return CTL_EXIT_USAGE;
    if (expect != NULL && (so.expect = ctl_ota_expect_parse(c, expect)) == NULL)
        return CTL_EXIT_USAGE;
    int rc = sign_with_trusted(c, dir, &so);
    json_decref(so.expect);
    return rc;
}

/* One role of the rotated roots: the new keys made in dir (n > 0) or the current ones kept, and
 * the threshold (k > 0, or the current one). */
static int
rotated_role(const char *dir, const json_t *cur, const char *role, int64_t n, int64_t k,
             struct ctl_ota_keys *ks, int64_t *thr)
{
    const json_t *r = json_object_get(json_object_get(cur, "roles"), role);
    if ((n > 0 ? ctl_ota_keys_make(dir, role, (size_t)n, ks) : ctl_ota_root_keys(cur, role, ks)) !=
        0)
        return -1;
    *thr = k > 0 ? k : json_integer_value(json_object_get(r, "threshold"));
    if (*thr > (int64_t)ks->n) {
        ctl_err("the %s threshold %lld exceeds its %zu keys", role, (long long)*thr, ks->n);
        return -1;
    }
    return 0;
}

/* The root keys of the current root cur found in dir, at least its threshold. */
static int
old_signers(const char *dir, const json_t *cur, struct ctl_ota_keys *ks)
{
    const json_t *r = json_object_get(json_object_get(cur, "roles"), "root");
    json_int_t thr = json_integer_value(json_object_get(r, "threshold"));
    if (ctl_ota_keys_load(dir, "root", json_object_get(r, "keyids"), ks) != 0)
        return -1;
    if (ks->n < (size_t)thr) {
        ctl_err("%s holds %zu of the %lld current root keys needed", dir, ks->n, (long long)thr);
        return -1;
    }
    return 0;
}

/* The rotation itself, from the trusted roots img and dir_root ("signed" of each). */
static int
rotate(struct ctl *c, const struct key_opts *o, const json_t *img, const json_t *dir_root)
{
    struct ctl_ota_keys online[3], root, targets, old_img, old_dir;
    int64_t kroot = 0, ktargets = 0;
    int rc = CTL_EXIT_LOCAL;
    memset(&root, 0, sizeof(root));
    memset(&targets, 0, sizeof(targets));
    memset(&old_dir, 0, sizeof(old_dir));
    if (old_signers(o->dir, img, &old_img) != 0 || old_signers(o->dir, dir_root, &old_dir) != 0)
        goto out;
    if ((rc = fetch_online(c, online)) != CTL_EXIT_OK)
        goto out;
    rc = CTL_EXIT_LOCAL;
    if (rotated_role(o->dir, img, "root", o->nroot, o->kroot, &root, &kroot) != 0 ||
        rotated_role(o->dir, img, "targets", o->ntargets, o->ktargets, &targets, &ktargets) != 0)
        goto out;
    /* Without new root keys, the old ones in dir sign for the new root too. */
    const struct ctl_ota_keys *si[2] = {&old_img, o->nroot > 0 ? &root : NULL};
    const struct ctl_ota_keys *sd[2] = {&old_dir, o->nroot > 0 ? &root : NULL};
    struct ctl_ota_root_spec image = {{&root, &targets, &online[0], &online[1]},
                                      {kroot, ktargets, 1, 1}};
    struct ctl_ota_root_spec director = {{&root, &online[2], &online[2], &online[2]},
                                         {kroot, 1, 1, 1}};
    int64_t vi = json_integer_value(json_object_get(img, "version")) + 1;
    int64_t vd = json_integer_value(json_object_get(dir_root, "version")) + 1;
    if ((rc = publish_root(c, o->dir, "image", vi, o->ndays, &image, si)) != CTL_EXIT_OK) {
        /* not in effect: the new key files go */
        const json_t *roles = json_object_get(img, "roles");
        ctl_ota_keys_prune(o->dir, "root",
                           json_object_get(json_object_get(roles, "root"), "keyids"));
        ctl_ota_keys_prune(o->dir, "targets",
                           json_object_get(json_object_get(roles, "targets"), "keyids"));
        goto out;
    }
    if ((rc = publish_root(c, o->dir, "director", vd, o->ndays, &director, sd)) != CTL_EXIT_OK)
        goto out; /* the image root changed: every key file stays */
    rc = CTL_EXIT_OK;
out:
    ctl_ota_keys_wipe(&old_img);
    ctl_ota_keys_wipe(&old_dir);
    ctl_ota_keys_wipe(&root);
    ctl_ota_keys_wipe(&targets);
    return rc;
}

static int
ctl_ota_root_rotate(struct ctl *c, int argc, char **argv)
{
    struct key_opts o;
    struct ctl_ota_trusted img = {NULL, NULL}, dir_root = {NULL, NULL};
    int rc = key_options(c, argc, argv, "rotate", &o);
    int resign = o.ntargets > 0 || o.ktargets > 0;
    const struct sign_opts so = {o.yes, NULL, DEFAULT_EXPIRES_DAYS, 1};
    if (rc == KEY_OPTS_HELP)
        return CTL_EXIT_OK;
    if (rc != CTL_EXIT_OK || (resign && (rc = needs_yes(c, o.yes)) != CTL_EXIT_OK))
        return rc;
    /* the kept keys and thresholds come from the trusted roots, brought up to the server's; a
     * re-sign that would change the targets is refused before anything is published */
    if ((rc = ctl_ota_trust_sync(c, o.dir, "image", &img)) != CTL_EXIT_OK ||
        (rc = ctl_ota_trust_sync(c, o.dir, "director", &dir_root)) != CTL_EXIT_OK ||
        (resign && (rc = judge_before(c, img.root, &so)) != CTL_EXIT_OK) ||
        (rc = rotate(c, &o, ctl_ota_trusted_signed(&img), ctl_ota_trusted_signed(&dir_root))) !=
            CTL_EXIT_OK)
        goto out;
    /* Published: the retired key files go, and new targets keys sign a new targets version (the
     * current one is signed by keys the new root no longer trusts: it is verified with the old). */
    struct ctl_ota_trusted now = {NULL, NULL};
    if ((rc = ctl_ota_trust_sync(c, o.dir, "image", &now)) == CTL_EXIT_OK) {
        const json_t *roles = json_object_get(ctl_ota_trusted_signed(&now), "roles");
        ctl_ota_keys_prune(o.dir, "root",
                           json_object_get(json_object_get(roles, "root"), "keyids"));
        ctl_ota_keys_prune(o.dir, "targets",
                           json_object_get(json_object_get(roles, "targets"), "keyids"));
        if (resign)
            rc = sign_targets(c, o.dir, &now, img.root, &so);
    }
    ctl_ota_trusted_free(&now);
out:
    ctl_ota_trusted_free(&img);
    ctl_ota_trusted_free(&dir_root);
    return rc;
}

static int
ctl_ota_status(struct ctl *c, int argc, char **argv)
{
    static const char *const roles[] = {"root", "targets", "snapshot", "timestamp"};
    json_t *o = NULL;
    int pr = ctl_parse(c, argc, argv, NULL, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    int rc = ctl_request_object(c, "GET", "/v1/ota/status", NULL, &o);
    if (rc != CTL_EXIT_OK || c->json) {
        if (rc == CTL_EXIT_OK)
            ctl_print_json(o);
        json_decref(o);
        return rc;
    }
    printf("%-9s %-10s %-8s %s\n", "REPO", "ROLE", "VERSION", "EXPIRES");
    for (int r = 0; r < 2; r++) {
        const char *repo = r == 0 ? "image" : "director";
        for (int i = 0; i < (r == 0 ? 4 : 1); i++) {
            const json_t *e = json_object_get(json_object_get(o, repo), roles[i]);
            if (!json_is_object(e))
                printf("%-9s %-10s %-8s %s\n", repo, roles[i], "-", "-");
            else
                printf("%-9s %-10s %-8lld %s\n", repo, roles[i],
                       (long long)json_integer_value(json_object_get(e, "version")),
                       json_string_value(json_object_get(e, "expires")) ?: "-");
        }
    }
    json_decref(o);
    return CTL_EXIT_OK;
}

const struct ctl_cmd cmd_ota_cmds[] = {
    {"ota", "keys", ctl_ota_keys_init, 1,
     "init --dir DIR [--root-keys N] [--root-threshold K] [--targets-keys N] "
     "[--targets-threshold K] [--expires-days D] [--expect ENTRY[,ENTRY...]] [--yes]",
     "make the offline TUF keys and publish the first roots",
     "On the manufacturer's machine: makes N root and N targets ed25519 keys (default 1 each,\n"
     "threshold K, default 1) as 0600 files in DIR (created 0700), fetches the tenant's online\n"
     "keys, signs image root 1 and director root 1 (expiring in D days, default 365) with the\n"
     "root keys, publishes them and keeps them as the trusted roots in DIR/trusted, then signs\n"
     "and publishes the first targets version as ota sign does, printing the list it signs\n"
     "(without a terminal --yes is required). --expect as ota sign's, checked before any key is\n"
     "made or root published. Private keys never leave DIR: keep it offline and backed up.\n"
     "Refused when DIR already holds root keys.\n",
     NULL},
    {"ota", "sign", ctl_ota_sign_cmd, 1,
     "--dir DIR [--yes] [--expect ENTRY[,ENTRY...]] [--expires-days D]",
     "sign and publish a new targets version",
     "Brings the trusted roots in DIR up to the server's through the verified root chain, "
     "verifies\n"
     "the current targets with the trusted targets keys, fetches the proposal (every image of the\n"
     "tenant, expiring in D days, default 365), checks it (the image field rules, one target per\n"
     "SHA-256) and prints what it adds, removes and changes, computed here (component, kind,\n"
     "version, svn, hardware, SHA-256, length). --expect refuses unless exactly its entries are\n"
     "added, each with its fields, and nothing is changed; an ENTRY is SHA256 or\n"
     "SHA256:COMPONENT:VERSION:SVN[:KIND[:HARDWARE]] (in VERSION, %2C %3A %25 for , : %). Asks\n"
     "(type yes; --yes instead; without a terminal --yes is required), signs with a threshold of\n"
     "the trusted targets keys in DIR and publishes it.\n",
     NULL},
    {"ota", "root", ctl_ota_root_rotate, 1,
     "rotate --dir DIR [--new-root-keys N] [--root-threshold K] [--targets-keys N] "
     "[--targets-threshold K] [--expires-days D] [--yes]",
     "publish the next root of both repositories",
     "Publishes N+1.root.json of the image and of the director repository (N the trusted root,\n"
     "which must be the server's newest), signed by a threshold of the trusted root keys in DIR\n"
     "and by every new root key. --new-root-keys N makes N new root keys (which replace the\n"
     "current ones), --targets-keys N new targets keys; kept keys and default thresholds come "
     "from\n"
     "the trusted root; the roots expire in D days (default 365). The retired key files are\n"
     "deleted only once both roots are published; with new targets keys or threshold a new\n"
     "targets version is then signed as ota sign does (without a terminal --yes is required),\n"
     "and only if it equals the verified current targets: checked before anything is\n"
     "published, refused otherwise (sign pending changes with ota sign first).\n",
     NULL},
    {"ota", "status", ctl_ota_status, 1, "", "show the TUF repositories' versions",
     "Prints the version and expiry of every role of the image and director repositories.\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
