#include "cmd_products.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"

#include <stdio.h>

static const struct ctl_col product_cols[] = {{"ID", "id", 0, 0},
                                              {"NAME", "name", 40, CTL_COL_CUT},
                                              {"CREATED_AT", "created_at", 0, 0},
                                              {"UPDATED_AT", "updated_at", 0, 0},
                                              {"DESCRIPTION", "description", 50, CTL_COL_CUT},
                                              {NULL, NULL, 0, 0}};
static const struct ctl_resource products_res = {"/v1/products", product_cols, NULL, CTL_ID_INT,
                                                 NULL};

static const struct ctl_col group_cols[] = {{"ID", "id", 0, 0},
                                            {"PRODUCT_ID", "product_id", 0, 0},
                                            {"NAME", "name", 40, CTL_COL_CUT},
                                            {"CREATED_AT", "created_at", 0, 0},
                                            {"UPDATED_AT", "updated_at", 0, CTL_COL_WIDE},
                                            {"DESCRIPTION", "description", 50, CTL_COL_CUT},
                                            {NULL, NULL, 0, 0}};
static const struct ctl_filter group_filters[] = {
    {"--product", CTL_F_ID, "product_id", NULL, NULL, NULL}, {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource groups_res = {"/v1/device-groups", group_cols, group_filters,
                                               CTL_ID_INT, NULL};

static int
ctl_products_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *desc = NULL;
    const struct ctl_opt opts[] = {{"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    json_t *body = json_object();
    int rc = CTL_EXIT_USAGE;
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if (ctl_set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        (desc != NULL && ctl_set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    rc = ctl_show(c, "POST", "/v1/products", body);
out:
    json_decref(body);
    return rc;
}

/* PATCH <base>/<id> {"name"?, "description"?}. */
static int
update_by_id(struct ctl *c, int argc, char **argv, const char *base)
{
    const char *name = NULL, *desc = NULL;
    const struct ctl_opt opts[] = {{"--name", CTL_OPT_STR, &name, NULL},
                                   {"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int64_t id;
    int ec, rc = CTL_EXIT_USAGE;
    char path[96];
    if (ctl_args_id(c, argc, argv, opts, &id, &ec) != 0)
        return ec;
    if (name == NULL && desc == NULL)
        return ctl_usage_error(c, "nothing to change: give --name and/or --description");
    json_t *body = json_object();
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if ((name != NULL && ctl_set_str(c, body, "--name", "name", name) != 0) ||
        (desc != NULL && ctl_set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    snprintf(path, sizeof(path), "%s/%lld", base, (long long)id);
    rc = ctl_show(c, "PATCH", path, body);
out:
    json_decref(body);
    return rc;
}

/* DELETE <base>/<id>. */
static int
delete_by_id(struct ctl *c, int argc, char **argv, const char *base, const char *what)
{
    int64_t id;
    int ec;
    char path[96], done[96];
    if (ctl_args_id(c, argc, argv, NULL, &id, &ec) != 0)
        return ec;
    snprintf(path, sizeof(path), "%s/%lld", base, (long long)id);
    snprintf(done, sizeof(done), "%s %lld deleted", what, (long long)id);
    return ctl_delete_and_say(c, path, done);
}

static int
ctl_products_update(struct ctl *c, int argc, char **argv)
{
    return update_by_id(c, argc, argv, "/v1/products");
}

static int
ctl_products_delete(struct ctl *c, int argc, char **argv)
{
    return delete_by_id(c, argc, argv, "/v1/products", "product");
}

static int
ctl_groups_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *desc = NULL, *product = NULL;
    const struct ctl_opt opts[] = {{"--product", CTL_OPT_STR, &product, NULL},
                                   {"--description", CTL_OPT_STR, &desc, NULL},
                                   {NULL, 0, NULL, NULL}};
    int64_t pid;
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (product == NULL)
        return ctl_usage_error(c, "--product is required");
    if (ctl_parse_id(c, "--product", product, &pid) != 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_object();
    int rc = CTL_EXIT_USAGE;
    if (body == NULL) {
        ctl_err("out of memory");
        return CTL_EXIT_LOCAL;
    }
    if (ctl_set_int(body, "product_id", pid) != 0 ||
        ctl_set_str(c, body, "NAME", "name", pos[0]) != 0 ||
        (desc != NULL && ctl_set_str(c, body, "--description", "description", desc) != 0))
        goto out;
    rc = ctl_show(c, "POST", "/v1/device-groups", body);
out:
    json_decref(body);
    return rc;
}

static int
ctl_groups_update(struct ctl *c, int argc, char **argv)
{
    return update_by_id(c, argc, argv, "/v1/device-groups");
}

static int
ctl_groups_delete(struct ctl *c, int argc, char **argv)
{
    return delete_by_id(c, argc, argv, "/v1/device-groups", "group");
}

const struct ctl_cmd cmd_products_cmds[] = {
    {"products", "create", ctl_products_create, 1, "NAME [--description D]", "create a product",
     "Creates a product. NAME is 1-128 bytes, unique in the tenant.\n"
     "\n"
     "Options:\n"
     "  --description D   0-1024 bytes\n",
     NULL},
    {"products", "list", ctl_res_list, 1, "", "list products",
     "Lists every product of the tenant (all pages).\n", &products_res},
    {"products", "show", ctl_res_show, 1, "ID", "show a product", "Shows the product ID.\n",
     &products_res},
    {"products", "update", ctl_products_update, 1, "ID [--name N] [--description D]",
     "rename a product or change its description",
     "Changes the name and/or the description of the product ID (at least one option).\n", NULL},
    {"products", "delete", ctl_products_delete, 1, "ID", "delete a product",
     "Deletes the product ID. Refused (409 conflict) while it has device groups or images.\n",
     NULL},
    {"groups", "create", ctl_groups_create, 1, "NAME --product ID [--description D]",
     "create a device group in a product",
     "Creates a device group. NAME is unique within the product.\n"
     "\n"
     "Options:\n"
     "  --product ID       the product (required)\n"
     "  --description D    0-1024 bytes\n",
     NULL},
    {"groups", "list", ctl_res_list, 1, "[--product ID]", "list device groups",
     "Lists the tenant's device groups (all pages), or those of one product.\n", &groups_res},
    {"groups", "show", ctl_res_show, 1, "ID", "show a device group", "Shows the group ID.\n",
     &groups_res},
    {"groups", "update", ctl_groups_update, 1, "ID [--name N] [--description D]",
     "rename a device group or change its description",
     "Changes the name and/or the description of the group ID (at least one option).\n", NULL},
    {"groups", "delete", ctl_groups_delete, 1, "ID", "delete a device group",
     "Deletes the group ID. Refused (409 conflict) while devices are in it.\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
