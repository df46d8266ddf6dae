/* sg_seccomp: the signer's system-call filters (libseccomp): an allow-list of what the worker needs
 * to read key files, sign, append to its log and answer on the sockets it inherited; no socket(),
 * connect(), bind(), execve(), ptrace() or the like: it has no network and cannot start programs.
 * Anything else kills the process (SECCOMP_RET_KILL_PROCESS), which the supervisor logs and
 * restarts. Installed with no_new_privs, for every way the signer is started (under systemd,
 * SystemCallFilter= adds its own filter on top). */
#ifndef AEGIS_SG_SECCOMP_H
#define AEGIS_SG_SECCOMP_H

#include <stddef.h>

/* The worker's filter. Returns 0, or -1 (message in err). */
int sg_seccomp_worker(char *err, size_t errlen);
/* The supervisor's filter: the worker's allow-list (filters stack, and the worker it forks runs
 * under this one too) plus fork (clone without namespace, thread or shared-memory flags; clone3
 * fails with ENOSYS), wait4/waitid, kill, timers, and seccomp(2) so the worker can add its own.
 * Returns 0, or -1 (message in err). */
int sg_seccomp_supervisor(char *err, size_t errlen);

#endif
