/* aegisctl images: update images (docs/cli.md "images"). */
#ifndef AEGIS_CMD_IMAGES_H
#define AEGIS_CMD_IMAGES_H

#include "ctl.h"

extern const struct ctl_cmd cmd_images_cmds[];

#endif
