/* aegisctl images: upload (the file streamed, never read whole into memory), list, show, delete. */
#include "cmd_images.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const struct ctl_col image_cols[] = {{"SHA256", "sha256", 0, CTL_COL_HASH},
                                            {"SIZE", "size", 0, 0},
                                            {"PRODUCT_ID", "product_id", 0, 0},
                                            {"COMPONENT", "component", 24, CTL_COL_CUT},
                                            {"KIND", "kind", 0, 0},
                                            {"VERSION", "version", 20, CTL_COL_CUT},
                                            {"SVN", "svn", 0, 0},
                                            {"HARDWARE", "hardware", 20, CTL_COL_CUT},
                                            {"CREATED_AT", "created_at", 0, 0},
                                            {NULL, NULL, 0, 0}};
static const struct ctl_resource images_res = {"/v1/images", image_cols, NULL, CTL_ID_DIGEST, NULL};

/* The upload's query string from the options; -1 (usage error printed) when one is missing. */
static int
upload_query(struct ctl *c, const char *const vals[6], struct ctl_query *q)
{
    static const char *const keys[] = {"product_id", "component", "kind",
                                       "version",    "svn",       "hardware"};
    static const char *const opts[] = {"--product",       "--component", "--kind",
                                       "--image-version", "--svn",       "--hardware"};
    for (size_t i = 0; i < 6; i++) {
        if (vals[i] == NULL || vals[i][0] == '\0') {
            ctl_usage_error(c, "%s is required", opts[i]);
            return -1;
        }
        ctl_query_add(q, keys[i], vals[i]);
    }
    if (q->bad) {
        ctl_usage_error(c, "the options are too long");
        return -1;
    }
    return 0;
}

static int
ctl_images_upload(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *v[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    int register_refval = 0;
    const struct ctl_opt opts[] = {{"--register-refval", CTL_OPT_FLAG, NULL, &register_refval},
                                   {"--product", CTL_OPT_STR, &v[0], NULL},
                                   {"--component", CTL_OPT_STR, &v[1], NULL},
                                   {"--kind", CTL_OPT_STR, &v[2], NULL},
                                   {"--image-version", CTL_OPT_STR, &v[3], NULL},
                                   {"--svn", CTL_OPT_STR, &v[4], NULL},
                                   {"--hardware", CTL_OPT_STR, &v[5], NULL},
                                   {NULL, 0, NULL, NULL}};
    struct ctl_query q;
    char path[sizeof(q.s) + 16];
    struct stat st;
    json_t *o = NULL;
    FILE *in = NULL;
    int rc;

    memset(&q, 0, sizeof(q));
    int pr = ctl_parse(c, argc, argv, opts, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (upload_query(c, v, &q) != 0)
        return CTL_EXIT_USAGE;
    if (register_refval)
        ctl_query_add(&q, "register_refval", "true");
    if ((in = fopen(pos[0], "rb")) == NULL || fstat(fileno(in), &st) != 0 || !S_ISREG(st.st_mode)) {
        ctl_err("%s: %s", pos[0], in == NULL ? strerror(errno) : "not a regular file");
        rc = CTL_EXIT_LOCAL;
        goto out;
    }
    snprintf(path, sizeof(path), "/v1/images%s", q.s);
    rc = ctl_upload(c, path, in, (uint64_t)st.st_size, &o);
    if (rc == CTL_EXIT_OK)
        rc = ctl_print_result(c, o, image_cols);
out:
    json_decref(o);
    if (in != NULL)
        fclose(in);
    return rc;
}

static int
ctl_images_delete(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    char sha[65], path[96];
    int pr = ctl_parse(c, argc, argv, NULL, pos, 1, 1, NULL);
    if (pr != 0)
        return ctl_parse_exit(pr);
    if (ctl_parse_device_id(c, pos[0], sha) != 0)
        return CTL_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/images/%s", sha);
    return ctl_delete_and_say(c, path, "image deleted");
}

const struct ctl_cmd cmd_images_cmds[] = {
    {"images", "upload", ctl_images_upload, 1,
     "FILE --product ID --component C --kind os|app --image-version V --svn N --hardware H "
     "[--register-refval]",
     "upload an update image",
     "Uploads FILE as an update image (streamed; at most the server's image_max_bytes) and prints\n"
     "the image, named by its SHA-256. Uploading the same file with the same fields again is\n"
     "harmless (the same image); with other fields it is refused (409 conflict).\n"
     "\n"
     "Options (all required but the last):\n"
     "  --product ID          one of the tenant's products\n"
     "  --component C         1-64 of [a-z0-9._-]\n"
     "  --kind os|app\n"
     "  --image-version V     1-32 printable characters\n"
     "  --svn N               security version, 0-4294967295\n"
     "  --hardware H          hardware class, 1-64 of [a-z0-9._-]\n"
     "  --register-refval     (app images) also make the image the tenant's reference value of\n"
     "                        its component and version, so devices that install it still attest\n",
     NULL},
    {"images", "list", ctl_res_list, 1, "", "list update images",
     "Lists every update image of the tenant (all pages).\n", &images_res},
    {"images", "show", ctl_res_show, 1, "SHA256", "show an update image",
     "Shows the image named SHA256.\n", &images_res},
    {"images", "delete", ctl_images_delete, 1, "SHA256", "delete an update image",
     "Deletes the image named SHA256 (its record, then its file).\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
