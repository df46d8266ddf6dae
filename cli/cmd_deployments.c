/* aegisctl deployments: create, list, show, and the operator's transitions (pause, resume, abort,
 * advance), in the style of cmd_images.c. */
#include "cmd_deployments.h"

#include "ctl_args.h"
#include "ctl_client.h"
#include "ctl_res.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct ctl_col deployment_cols[] = {{"ID", "id", 0, 0},
                                                 {"GROUP_ID", "group_id", 0, 0},
                                                 {"NAME", "name", 24, CTL_COL_CUT},
                                                 {"STATE", "state", 0, 0},
                                                 {"WAVE", "current_wave", 0, 0},
                                                 {"SOAK_LEFT_S", "soak_remaining_s", 0, 0},
                                                 {"UPDATED_AT", "updated_at", 0, 0},
                                                 {"REASON", "reason", 60, CTL_COL_CUT},
                                                 {NULL, NULL, 0, 0}};
static const struct ctl_resource deployments_res = {"/v1/deployments", deployment_cols, NULL,
                                                    CTL_ID_INT, NULL};

/* Appends each comma-separated item of list to the new array *out, as a digest (ints 0) or an
 * integer in [1, 100]. -1 with a usage error printed and *out NULL; else *out is the caller's. */
static int
split(struct ctl *c, const char *what, const char *list, int ints, json_t **out)
{
    char buf[2048], *save = NULL;
    if (list == NULL || strlen(list) >= sizeof(buf)) {
        ctl_usage_error(c, "%s is required (comma-separated, at most 2047 bytes)", what);
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    *out = json_array();
    for (char *t = strtok_r(buf, ",", &save); t != NULL && *out != NULL;
         t = strtok_r(NULL, ",", &save)) {
        char sha[65];
        int64_t v;
        if (ints ? ctl_int(c, what, t, 1, 100, &v) != 0 : ctl_parse_digest(c, t, sha) != 0) {
            json_decref(*out); /* the caller owns *out only on success */
            *out = NULL;
            return -1;
        }
        json_array_append_new(*out, ints ? json_integer(v) : json_string(sha));
    }
    return *out != NULL ? 0 : -1;
}

static int
ctl_deployments_create(struct ctl *c, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    const char *images = NULL, *waves = "100", *soak = "3600", *pct = "20", *min = "10";
    const struct ctl_opt opts[] = {
        {"--images", CTL_OPT_STR, &images, NULL},    {"--waves", CTL_OPT_STR, &waves, NULL},
        {"--soak", CTL_OPT_STR, &soak, NULL},        {"--threshold", CTL_OPT_STR, &pct, NULL},
        {"--min-attempts", CTL_OPT_STR, &min, NULL}, {NULL, 0, NULL, NULL}};
    json_t *body = json_object(), *imgs = NULL, *wv = NULL;
    int64_t group, soak_s, pct_v, min_v;
    int rc = CTL_EXIT_USAGE;
    int pr = ctl_parse(c, argc, argv, opts, pos, 2, 2, NULL);
    if (pr != 0) {
        json_decref(body);
        return ctl_parse_exit(pr);
    }
    if (body == NULL || ctl_parse_id(c, "GROUP_ID", pos[0], &group) != 0 ||
        ctl_int(c, "--soak", soak, 0, 31536000, &soak_s) != 0 ||
        ctl_int(c, "--threshold", pct, 1, 100, &pct_v) != 0 ||
        ctl_int(c, "--min-attempts", min, 1, 1000000, &min_v) != 0 ||
        split(c, "--images", images, 0, &imgs) != 0 || split(c, "--waves", waves, 1, &wv) != 0 ||
        ctl_set_str(c, body, "NAME", "name", pos[1]) != 0)
        goto out;
    ctl_set_int(body, "group_id", group);
    ctl_set_int(body, "soak_seconds", soak_s);
    ctl_set_int(body, "failure_threshold_pct", pct_v);
    ctl_set_int(body, "min_attempts", min_v);
    json_object_set(body, "images", imgs);
    json_object_set(body, "waves", wv);
    rc = ctl_show(c, "POST", "/v1/deployments", body);
out:
    json_decref(imgs);
    json_decref(wv);
    json_decref(body);
    return rc;
}

/* POST /v1/deployments/ID/<action> with the optional --reason. */
static int
transition(struct ctl *c, int argc, char **argv, const char *action)
{
    const char *reason = NULL;
    const struct ctl_opt opts[] = {{"--reason", CTL_OPT_STR, &reason, NULL}, {NULL, 0, NULL, NULL}};
    int64_t id;
    int ec, rc = CTL_EXIT_USAGE;
    json_t *body = json_object();
    if (body == NULL)
        return CTL_EXIT_LOCAL;
    if (ctl_args_id(c, argc, argv, opts, &id, &ec) != 0) {
        json_decref(body);
        return ec;
    }
    if (reason == NULL || ctl_set_str(c, body, "--reason", "reason", reason) == 0) {
        char path[96];
        snprintf(path, sizeof(path), "/v1/deployments/%lld/%s", (long long)id, action);
        rc = ctl_show(c, "POST", path, body);
    }
    json_decref(body);
    return rc;
}

static int
ctl_deployments_pause(struct ctl *c, int argc, char **argv)
{
    return transition(c, argc, argv, "pause");
}

static int
ctl_deployments_resume(struct ctl *c, int argc, char **argv)
{
    return transition(c, argc, argv, "resume");
}

static int
ctl_deployments_abort(struct ctl *c, int argc, char **argv)
{
    return transition(c, argc, argv, "abort");
}

static int
ctl_deployments_advance(struct ctl *c, int argc, char **argv)
{
    return transition(c, argc, argv, "advance");
}

#define REASON_HELP "  --reason R   kept with the audit row and the deployment's reason\n"

const struct ctl_cmd cmd_deployments_cmds[] = {
    {"deployments", "create", ctl_deployments_create, 1,
     "GROUP_ID NAME --images SHA256[,SHA256...] [--waves 1,10,50,100] [--soak S] [--threshold PCT] "
     "[--min-attempts N]",
     "start a staged rollout of images to a device group",
     "Creates a running deployment of the images (at most one per component) to the group, in\n"
     "wave 1, and prints it with its per-wave progress. Refused (409 conflict) while the group "
     "has\n"
     "a running, paused or halted deployment.\n"
     "\n"
     "Options:\n"
     "  --images LIST       the images' SHA-256s, comma-separated (required)\n"
     "  --waves LIST        cumulative percents of the group, increasing, ending at 100\n"
     "                      (default 100: one wave)\n"
     "  --soak S            seconds each wave runs before the next starts (default 3600)\n"
     "  --threshold PCT     halt when this percent of the wave's finished attempts failed or\n"
     "                      rolled back (default 20)\n"
     "  --min-attempts N    ... with at least N finished attempts (default 10)\n",
     NULL},
    {"deployments", "list", ctl_res_list, 1, "", "list deployments",
     "Lists every deployment of the tenant, newest first (all pages).\n", &deployments_res},
    {"deployments", "show", ctl_res_show, 1, "ID", "show a deployment and its progress",
     "Shows the deployment ID with its per-wave progress and the reason of its last change.\n",
     &deployments_res},
    {"deployments", "pause", ctl_deployments_pause, 1, "ID [--reason R]", "pause a rollout",
     "Pauses the running deployment ID: devices are offered nothing until it "
     "resumes.\n" REASON_HELP,
     NULL},
    {"deployments", "resume", ctl_deployments_resume, 1, "ID [--reason R]",
     "resume a paused or halted rollout",
     "Resumes the paused or halted deployment ID; its current wave soaks again, and the halt\n"
     "checks count only attempts and flags from now on.\n" REASON_HELP,
     NULL},
    {"deployments", "abort", ctl_deployments_abort, 1, "ID [--reason R]", "abort a rollout",
     "Aborts the deployment ID for good (its group is then free for another).\n" REASON_HELP, NULL},
    {"deployments", "advance", ctl_deployments_advance, 1, "ID [--reason R]",
     "move a rollout to its next wave",
     "Moves the running or paused deployment ID to its next wave (after the last: "
     "completed).\n" REASON_HELP,
     NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
