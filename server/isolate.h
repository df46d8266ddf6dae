/* isolate: keeps aegisd away from the key files once the signer process holds them
 * (docs/architecture.md "Key isolation"). Landlock: after isolate_apply, this process (and any
 * child it forks later) can open only what the daemon serves with: the database files, the images
 * and SQLite temporary directories, the log and ready files, and read-only system directories. No
 * rule names the PKI directory, the TLS key or the issuance log, so opening them fails with EACCES
 * whatever the file modes say, and isolate_apply proves it before returning (it tries to open each
 * probe). Landlock applies to the calling thread and what it starts afterwards: call it before any
 * thread exists. */
#ifndef AEGIS_ISOLATE_H
#define AEGIS_ISOLATE_H

#include <stddef.h>

enum isolate_mode {
    ISOLATE_OFF,      /* nothing (key_isolation = off) */
    ISOLATE_AUTO,     /* Landlock when the kernel has it, else a warning */
    ISOLATE_REQUIRED, /* Landlock, or refuse to start */
};

struct isolate_paths {
    const char *const *keys; /* what aegisd must not open: PKI directory, TLS key, issuance log */
    size_t nkeys;
    const char *const *probes; /* key files that exist now, opened after the restriction to prove
                                * it (each must fail) */
    size_t nprobes;
    const char *database;   /* the database file; "-wal", "-shm" and "-devgen" beside it */
    const char *data_dir;   /* images/ and sqlite-tmp/ under it (created when missing) */
    const char *log_file;   /* NULL or "": stderr */
    const char *ready_file; /* NULL: none */
    /* NULL: none; read again on SIGHUP: its directory's files, or only the file itself (an edit in
     * place, not a file renamed over it) when that directory holds a key */
    const char *config_file;
};

/* Parses "off", "auto", "required". Returns 0 / -1. */
int isolate_parse_mode(const char *s, enum isolate_mode *out);

/* Restricts this process as above. *abi gets the Landlock ABI used (0: not isolated, possible only
 * with ISOLATE_OFF or with ISOLATE_AUTO on a kernel without Landlock). Returns 0, or -1 (message in
 * err): Landlock required but missing, a rule that cannot be made (e.g. the ready file's directory
 * holds the PKI directory), or a probe that could still be opened. */
int isolate_apply(const struct isolate_paths *p, enum isolate_mode mode, int *abi, char *err,
                  size_t errlen);

#endif
