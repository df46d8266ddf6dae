#include "ctl_complete.h"

#include "ctl_args.h"

#include <assert.h>
#include <string.h>

/* Characters of an option name in a usage line. */
#define OPT_CHARS "abcdefghijklmnopqrstuvwxyz0123456789-"

size_t
ctl_usage_options(const char *usage, void (*fn)(void *arg, const char *opt, size_t len), void *arg)
{
    size_t n = 0;
    for (const char *p = usage; (p = strstr(p, "--")) != NULL;) {
        size_t len = 2 + strspn(p + 2, OPT_CHARS);
        int first = len > 2 && (p == usage || strchr(" [|(", p[-1]) != NULL);
        /* once each: an option may appear twice ("--group ID|none") */
        for (const char *q = usage; first && (q = strstr(q, "--")) != NULL && q < p; q += 2)
            if (strncmp(q, p, len) == 0 && strspn(q + 2, OPT_CHARS) + 2 == len)
                first = 0;
        if (first) {
            fn(arg, p, len);
            n++;
        }
        p += len;
    }
    return n;
}

static void
print_word(void *arg, const char *opt, size_t len)
{
    fprintf((FILE *)arg, " %.*s", (int)len, opt);
}

static void
print_globals(FILE *f)
{
    for (const struct ctl_gopt *g = ctl_global_opts; g->name != NULL; g++)
        fprintf(f, " %s", g->name);
    fprintf(f, " --help");
}

/* The command tables as one sequence. */
struct walk {
    const struct ctl_cmd *const *tables;
    size_t ntables, t;
    const struct ctl_cmd *cmd;
};

/* The first command (w->cmd NULL) or the next one; NULL after the last. */
static const struct ctl_cmd *
walk_next(struct walk *w)
{
    if (w->cmd == NULL) {
        w->t = 0;
        w->cmd = w->tables[0];
    } else {
        w->cmd++;
    }
    while (w->cmd->group == NULL) {
        if (++w->t >= w->ntables)
            return w->cmd = NULL;
        w->cmd = w->tables[w->t];
    }
    return w->cmd;
}

/* 1 when no command before cmd (in table order) has cmd's group. */
static int
first_of_group(const struct ctl_cmd *const *tables, size_t ntables, const struct ctl_cmd *cmd)
{
    struct walk w = {tables, ntables, 0, NULL};
    for (const struct ctl_cmd *x = walk_next(&w); x != cmd; x = walk_next(&w)) {
        assert(x != NULL);
        if (strcmp(x->group, cmd->group) == 0)
            return 0;
    }
    return 1;
}

/* The case branch of group: its subcommands and each one's options, or the options of a one-word
 * command. */
static void
print_group(FILE *f, const struct ctl_cmd *const *tables, size_t ntables, const char *group)
{
    struct walk w = {tables, ntables, 0, NULL};
    const struct ctl_cmd *cmd;
    fprintf(f, "    %s)\n", group);
    fprintf(f, "        subs=\"");
    while ((cmd = walk_next(&w)) != NULL)
        if (strcmp(cmd->group, group) == 0)
            fprintf(f, " %s", cmd->name != NULL ? cmd->name : "-");
    fprintf(f, "\"\n        case \"$name\" in\n");
    w.cmd = NULL;
    while ((cmd = walk_next(&w)) != NULL) {
        if (strcmp(cmd->group, group) != 0)
            continue;
        /* a one-word command's options apply whatever its arguments are */
        fprintf(f, "        %s) opts=\"", cmd->name != NULL ? cmd->name : "*");
        ctl_usage_options(cmd->usage, print_word, f);
        fprintf(f, "\" ;;\n");
    }
    fprintf(f, "        esac ;;\n");
}

static const char script_head[] =
    "_aegisctl() {\n"
    "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
    "    local i w group=\"\" name=\"\" subs=\"\" opts=\"\"\n"
    "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "        w=\"${COMP_WORDS[i]}\"\n"
    "        case \"$w\" in\n"
    "        %s) ((i++)) ;;\n"
    "        -*) ;;\n"
    "        *) if [[ -z \"$group\" ]]; then group=\"$w\"; elif [[ -z \"$name\" ]]; then "
    "name=\"$w\"; "
    "fi ;;\n"
    "        esac\n"
    "    done\n"
    "    case \"$prev\" in\n"
    "    --token-file|--cacert|--config|--data-dir) COMPREPLY=($(compgen -f -- \"$cur\")); return "
    ";;\n"
    "    -o|--output) COMPREPLY=($(compgen -W \"table wide json name jsonpath=\" -- \"$cur\")); "
    "return ;;\n"
    "    esac\n";

static const char script_tail[] =
    "    if [[ -n \"$subs\" && \"$subs\" != \" -\" && -z \"$name\" && \"$cur\" != -* ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
    "    elif [[ \"$cur\" == -* ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$opts $globals\" -- \"$cur\"))\n"
    "    else\n"
    "        COMPREPLY=() # arguments: file names (complete -o default)\n"
    "    fi\n"
    "}\n"
    "complete -o default -F _aegisctl aegisctl\n";

void
ctl_complete_print(FILE *f, enum ctl_shell shell, const struct ctl_cmd *const *tables,
                   size_t ntables)
{
    char valued[256] = "";
    struct walk w = {tables, ntables, 0, NULL};
    const struct ctl_cmd *cmd;
    for (const struct ctl_gopt *g = ctl_global_opts; g->name != NULL; g++)
        if (g->has_value) {
            size_t l = strlen(valued);
            assert(l + strlen(g->name) + 2 < sizeof(valued));
            snprintf(valued + l, sizeof(valued) - l, "%s%s", l > 0 ? "|" : "", g->name);
        }
    if (shell == CTL_SHELL_ZSH)
        fprintf(f, "#compdef aegisctl\n# zsh completion for aegisctl (aegisctl completion zsh): "
                   "the bash completion through bashcompinit\n"
                   "autoload -U +X compinit && compinit\n"
                   "autoload -U +X bashcompinit && bashcompinit\n");
    else
        fprintf(f, "# bash completion for aegisctl (aegisctl completion bash)\n");
    fprintf(f, script_head, valued);
    fprintf(f, "    local globals=\"");
    print_globals(f);
    fprintf(f, "\"\n    case \"$group\" in\n    \"\")\n        subs=\"");
    while ((cmd = walk_next(&w)) != NULL)
        if (first_of_group(tables, ntables, cmd))
            fprintf(f, " %s", cmd->group);
    fprintf(f, "\" ;;\n");
    w.cmd = NULL;
    while ((cmd = walk_next(&w)) != NULL)
        if (first_of_group(tables, ntables, cmd))
            print_group(f, tables, ntables, cmd->group);
    fprintf(f, "    esac\n%s", script_tail);
}
