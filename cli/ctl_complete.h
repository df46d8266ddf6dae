/* ctl_complete: shell completion scripts made from the command tables (commands, subcommands, the
 * options named in each command's usage line, the global options). */
#ifndef AEGIS_CTL_COMPLETE_H
#define AEGIS_CTL_COMPLETE_H

#include "ctl.h"

#include <stddef.h>
#include <stdio.h>

enum ctl_shell { CTL_SHELL_BASH, CTL_SHELL_ZSH };

/* Prints the script for shell to f: a bash function registered with `complete -F`; for zsh the same
 * through zsh's bashcompinit. tables are the command tables (each ended by group NULL). */
void ctl_complete_print(FILE *f, enum ctl_shell shell, const struct ctl_cmd *const *tables,
                        size_t ntables);

/* Calls fn for each option ("--name") named in a usage line, in order, once each; returns how
 * many. */
size_t ctl_usage_options(const char *usage, void (*fn)(void *arg, const char *opt, size_t len),
                         void *arg);

#endif
