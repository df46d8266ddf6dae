/* ctl_res: the list and show commands of the API's resources, from one declaration per resource
 * (its path, its table's columns, its list options) and one generic list and one generic show. */
#ifndef AEGIS_CTL_RES_H
#define AEGIS_CTL_RES_H

#include "ctl.h"
#include "ctl_print.h"

/* What a list option is and how it becomes a query parameter. */
enum ctl_filter_kind {
    CTL_F_ID,        /* a positive integer ID -> key=<id> */
    CTL_F_ENUM,      /* one of the '|'-separated words of arg -> key=<word> */
    CTL_F_COMPONENT, /* a component name -> key=<name> */
    CTL_F_VERSION,   /* an image version -> key=<version> */
    CTL_F_TIME,      /* an RFC 3339 UTC time -> key=<time> */
    CTL_F_DEVICE,    /* a device ID: the list's path becomes arg ("...%s...") with the ID */
    CTL_F_LIMIT,     /* --limit N: the page size */
    CTL_F_CURSOR,    /* --cursor C: the first page's cursor */
    CTL_F_ALL,       /* --all: every page (a list without paging options always gets every page) */
    CTL_F_LIST, /* repeatable, K=V: key=<value> once per occurrence (at most one per resource) */
};

/* One list option, checked in the order of the resource's filters (which is the order of the
 * checks, and so of the messages, of each command). */
struct ctl_filter {
    const char *opt; /* "--state" */
    enum ctl_filter_kind kind;
    const char *key;      /* query parameter */
    const char *arg;      /* CTL_F_ENUM: "a|b|c"; CTL_F_DEVICE: the path format */
    const char *message;  /* CTL_F_ENUM, CTL_F_COMPONENT, CTL_F_VERSION: the usage error */
    const char *excludes; /* an option this one cannot be given with, or NULL */
};

/* A resource: its collection path, its table, its list options (ended by an entry with opt NULL;
 * NULL for none), and for show what its ID is. */
enum ctl_id_kind {
    CTL_ID_NONE,
    CTL_ID_INT,
    CTL_ID_DEVICE, /* a device ID or a unique prefix of it (ctl_device_arg) */
    CTL_ID_DIGEST, /* a SHA-256 in hex, 64 characters */
};
struct ctl_resource {
    const char *path;
    const struct ctl_col *cols;
    const struct ctl_filter *filters;
    enum ctl_id_kind id;
    /* A list that works on the data directory in local mode (CTL_BOTH), else NULL. */
    int (*list_local)(struct ctl *c);
};

/* The generic list and show of c->cmd->res: "aegisctl GROUP list [options]" prints the table (or
 * the JSON page); "aegisctl GROUP show [ID]" prints the object. */
int ctl_res_list(struct ctl *c, int argc, char **argv);
int ctl_res_show(struct ctl *c, int argc, char **argv);

#endif
