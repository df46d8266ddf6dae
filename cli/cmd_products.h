/* cmd_products: products and their device groups (products ..., groups ...). */
#ifndef AEGIS_CMD_PRODUCTS_H
#define AEGIS_CMD_PRODUCTS_H

#include "ctl.h"

extern const struct ctl_cmd cmd_products_cmds[];

#endif
