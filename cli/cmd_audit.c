#include "cmd_audit.h"

#include "ctl_res.h"

static const struct ctl_col audit_cols[] = {{"ID", "id", 0, 0},
                                            {"CREATED_AT", "created_at", 0, 0},
                                            {"ACTOR", "actor", 0, CTL_COL_CUT},
                                            {"ACTION", "action", 0, 0},
                                            {"OBJECT_TYPE", "object_type", 0, CTL_COL_DROP},
                                            {"OBJECT_ID", "object_id", 0, CTL_COL_HASH},
                                            {"DETAIL", "detail", 60, CTL_COL_CUT},
                                            {NULL, NULL, 0, 0}};
static const struct ctl_filter audit_filters[] = {
    {"--limit", CTL_F_LIMIT, NULL, NULL, NULL, NULL},
    {"--cursor", CTL_F_CURSOR, NULL, NULL, NULL, NULL},
    {"--all", CTL_F_ALL, NULL, NULL, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL}};
static const struct ctl_resource audit_res = {"/v1/audit", audit_cols, audit_filters, CTL_ID_NONE,
                                              NULL};

const struct ctl_cmd cmd_audit_cmds[] = {
    {"audit", "list", ctl_res_list, 1, "[--limit N] [--cursor C] [--all]",
     "list the audit log, newest first (admin)",
     "Lists audit entries, newest first, one page (default 100) unless --all.\n"
     "\n"
     "Options:\n"
     "  --limit N     page size, 1-1000\n"
     "  --cursor C    start at this cursor\n"
     "  --all         follow next_cursor to the last page\n",
     &audit_res},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
