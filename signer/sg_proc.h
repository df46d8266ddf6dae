/* sg_proc: the signer's processes (docs/architecture.md "The signer process"). aegisd forks the
 * supervisor ("aegis-sigsup": single-threaded, never loads a key), which forks the worker
 * ("aegis-signer": the keys, the policy, the issuance log, a seccomp filter, no network) and
 * restarts it whenever it dies, writing a RESTARTED frame (sg_wire.h) on every socket so that a
 * caller waiting for an answer fails at once. Both exit when aegisd goes: PR_SET_PDEATHSIG, and
 * the supervisor on EOF of the lifeline pipe, the worker when every socket is closed. */
#ifndef AEGIS_SG_PROC_H
#define AEGIS_SG_PROC_H

#include "signer.h"

#include <stddef.h>
#include <sys/types.h>

/* The longest and first wait before the supervisor starts a worker again (doubling from the
 * first, back to the first after a worker that ran SG_PROC_STABLE_MS). */
#define SG_PROC_BACKOFF_MIN_MS 100
#define SG_PROC_BACKOFF_MAX_MS 5000
#define SG_PROC_STABLE_MS 10000

/* Forks the supervisor: call with no other thread running, from the thread that lives as long as
 * the process (PR_SET_PDEATHSIG follows the thread that forked). fds are the signer's ends of the n
 * sockets (it answers on each), lifeline the read end of a pipe whose write end aegisd holds (and
 * no other process: make it O_CLOEXEC). The supervisor keeps only those, stdin/out/err and the
 * log's file, and closes every other descriptor it inherited. The caller still owns its copies of
 * fds and lifeline (close them after). Returns the supervisor's pid, or -1 (message in err). */
pid_t sg_proc_spawn(const struct signer_opts *o, const int *fds, size_t n, int lifeline, char *err,
                    size_t errlen);

/* Sends one frame of len bytes on fd without blocking (MSG_DONTWAIT | MSG_NOSIGNAL). Returns
 * 0 / -1. */
int sg_proc_send(int fd, const unsigned char *frame, size_t len);

#endif
