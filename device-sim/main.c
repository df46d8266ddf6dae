/* aegis-sim: the device simulator. main() only dispatches to a subcommand. */
#include "sim.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define SIM_VERSION "1"

static void
usage(FILE *f)
{
    fprintf(f, "usage: aegis-sim COMMAND [OPTIONS]   (aegis-sim COMMAND --help for details)\n"
               "  provision --devices N --dir D [--tenant-app NAME]\n"
               "  run       --dir D --server URL --cacert FILE [--devices N] [--from I]\n"
               "            [--concurrency K] [--renew] [--fresh] [--fault NAME[=COUNT|@I,..]]...\n"
               "            [--skew S] [--json]\n"
               "            [--boots N] [--crash RATE[@COMPONENT[:VERSION]]]... [--drain]\n"
               "            [--power-loss P] [--offline P]\n"
               "  whoami    --dir D --server URL --cacert FILE [--devices N] [--from I] [--json]\n"
               "  d2d       --dir D --a I --b J\n"
               "  update    --dir D --server URL --cacert FILE --product-id P --image-root FILE\n"
               "            --director-root FILE [--time-scale X] [--fault NAME]... [--json]\n");
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"provision", sim_provision}, {"run", sim_run}, {"whoami", sim_whoami}, {"d2d", sim_d2d},
        {"update", sim_update},
    };

    if (argc < 2) {
        usage(stderr);
        return SIM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return SIM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("aegis-sim %s (device protocol 1)\n", SIM_VERSION);
        return SIM_EXIT_OK;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer closing a TLS connection must not kill the process */
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "aegis-sim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return SIM_EXIT_USAGE;
}
