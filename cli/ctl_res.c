#include "ctl_res.h"

#include "ctl_args.h"
#include "ctl_client.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

#define FILTERS_MAX 16
#define PATH_LEN 192

/* A list request being built from the options. */
struct list_req {
    char path[PATH_LEN];
    struct ctl_query q;
    int64_t limit;
    const char *cursor;
    int all;
};

/* The options given, by filter index; the values of the (one) CTL_F_LIST filter in list. */
struct given {
    const char *val[FILTERS_MAX];
    int flag[FILTERS_MAX];
    const char *list[CTL_OPT_MULTI_MAX];
    int nlist;
};

static int
is_given(const struct ctl_filter *filters, const struct given *g, const char *opt)
{
    for (size_t i = 0; filters[i].opt != NULL; i++)
        if (strcmp(filters[i].opt, opt) == 0)
            return g->val[i] != NULL || g->flag[i];
    return 0;
}

/* 1 when v is one of the '|'-separated words of words. */
static int
enum_ok(const char *words, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = words; *p != '\0';) {
        size_t w = strcspn(p, "|");
        if (w == n && strncmp(p, v, n) == 0)
            return 1;
        p += w + (p[w] == '|');
    }
    return 0;
}

/* Checks one given option and applies it to lr. Returns 0, -1 (usage error printed), or an exit
 * code (a device prefix that did not resolve, printed). */
static int
apply(struct ctl *c, const struct ctl_filter *filters, const struct given *g, size_t i,
      struct list_req *lr)
{
    const struct ctl_filter *f = &filters[i];
    const char *v = g->val[i];
    int64_t id;
    char dev[65], t[CTL_TIME_LEN];
    int rc;
    if (f->kind == CTL_F_LIMIT)
        return ctl_parse_limit(c, v, &lr->limit);
    if (f->kind == CTL_F_ALL) {
        lr->all = g->flag[i];
        return 0;
    }
    if (f->kind == CTL_F_LIST) {
        /* each occurrence is one K=V as typed: a value may hold commas */
        for (int k = 0; k < g->nlist; k++) {
            const char *eq = strchr(g->list[k], '=');
            if (eq == NULL || eq == g->list[k]) {
                ctl_usage_error(c, "%s", f->message);
                return -1;
            }
            ctl_query_add(&lr->q, f->key, g->list[k]);
        }
        return 0;
    }
    if (v == NULL)
        return 0;
    switch (f->kind) {
    case CTL_F_ID:
        if (ctl_parse_id(c, f->opt, v, &id) != 0)
            return -1;
        ctl_query_add_i64(&lr->q, f->key, id);
        return 0;
    case CTL_F_ENUM:
    case CTL_F_COMPONENT:
    case CTL_F_VERSION:
        if ((f->kind == CTL_F_ENUM && !enum_ok(f->arg, v)) ||
            (f->kind == CTL_F_COMPONENT && !ctl_component_ok(v)) ||
            (f->kind == CTL_F_VERSION && !ctl_version_ok(v))) {
            ctl_usage_error(c, "%s", f->message);
            return -1;
        }
        break;
    case CTL_F_TIME:
        if (ctl_parse_time(c, f->opt, v, t) != 0)
            return -1;
        ctl_query_add(&lr->q, f->key, t);
        return 0;
    case CTL_F_CURSOR:
        if (ctl_cursor_ok(c, v) != 0)
            return -1;
        lr->cursor = v;
        return 0;
    case CTL_F_DEVICE:
        if (f->excludes != NULL && is_given(filters, g, f->excludes)) {
            ctl_usage_error(c, "%s and %s exclude each other", f->opt, f->excludes);
            return -1;
        }
        if ((rc = ctl_device_arg(c, v, dev)) != CTL_EXIT_OK)
            return rc;
        snprintf(lr->path, sizeof(lr->path), f->arg, dev);
        return 0;
    default:
        assert(0 && "filter kind handled above");
        return -1;
    }
    ctl_query_add(&lr->q, f->key, v);
    return 0;
}

int
ctl_res_list(struct ctl *c, int argc, char **argv)
{
    assert(c->cmd != NULL && c->cmd->res != NULL);
    const struct ctl_resource *res = c->cmd->res;
    static const struct ctl_filter none[] = {{NULL, 0, NULL, NULL, NULL, NULL}};
    const struct ctl_filter *filters = res->filters != NULL ? res->filters : none;
    struct ctl_opt opts[FILTERS_MAX + 1];
    struct given g;
    struct list_req lr;
    size_t n = 0;
    int paged = 0, lists = 0;

    memset(&g, 0, sizeof(g));
    memset(&lr, 0, sizeof(lr));
    for (; filters[n].opt != NULL; n++) {
        assert(n < FILTERS_MAX);
        const struct ctl_filter *f = &filters[n];
        int flag = f->kind == CTL_F_ALL;
        opts[n] = (struct ctl_opt){f->opt, flag ? CTL_OPT_FLAG : CTL_OPT_STR,
                                   flag ? NULL : &g.val[n], flag ? &g.flag[n] : NULL};
        if (f->kind == CTL_F_LIST) {
            lists++;
            assert(lists == 1 && "one CTL_F_LIST filter per resource (one struct given.list)");
            opts[n] = (struct ctl_opt){f->opt, CTL_OPT_MULTI, g.list, &g.nlist};
        }
        paged |= f->kind == CTL_F_LIMIT || f->kind == CTL_F_CURSOR || f->kind == CTL_F_ALL;
    }
    opts[n] = (struct ctl_opt){NULL, 0, NULL, NULL};
    int pr = ctl_parse(c, argc, argv, opts, NULL, 0, 0, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (res->list_local != NULL && ctl_local_mode(c))
        return res->list_local(c);
    snprintf(lr.path, sizeof(lr.path), "%s", res->path);
    lr.all = !paged;
    for (size_t i = 0; i < n; i++) {
        int rc = apply(c, filters, &g, i, &lr);
        if (rc != 0)
            return rc < 0 ? CTL_EXIT_USAGE : rc;
    }
    return ctl_list_print(c, lr.path, &lr.q, lr.limit, lr.cursor, lr.all, res->cols);
}

int
ctl_res_show(struct ctl *c, int argc, char **argv)
{
    assert(c->cmd != NULL && c->cmd->res != NULL);
    const struct ctl_resource *res = c->cmd->res;
    const char *pos[1] = {NULL};
    char path[PATH_LEN], dev[65];
    int64_t id;
    int want = res->id != CTL_ID_NONE;
    int pr = ctl_parse(c, argc, argv, NULL, pos, want, want, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (res->id == CTL_ID_INT) {
        if (ctl_parse_id(c, "ID", pos[0], &id) != 0)
            return CTL_EXIT_USAGE;
        snprintf(path, sizeof(path), "%s/%lld", res->path, (long long)id);
    } else if (res->id == CTL_ID_DEVICE) {
        int rc = ctl_device_arg(c, pos[0], dev);
        if (rc != CTL_EXIT_OK)
            return rc;
        snprintf(path, sizeof(path), "%s/%s", res->path, dev);
    } else if (res->id == CTL_ID_DIGEST) {
        if (ctl_parse_device_id(c, pos[0], dev) != 0)
            return CTL_EXIT_USAGE;
        snprintf(path, sizeof(path), "%s/%s", res->path, dev);
    } else {
        snprintf(path, sizeof(path), "%s", res->path);
    }
    json_t *o = NULL;
    int rc = ctl_request_object(c, "GET", path, NULL, &o);
    if (rc == CTL_EXIT_OK)
        rc = ctl_print_result(c, o, res->cols); /* the resource's ID for -o name */
    json_decref(o);
    return rc;
}
