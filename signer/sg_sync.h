/* sg_sync: the issuance log's syncer, a child process of the signer's worker ("aegis-sigsync")
 * that does nothing but flush the log when the worker asks. Meanwhile the worker goes on answering
 * (TLS handshake signatures above all, which used to wait behind the disk), and the issuances
 * appended during one flush all join the next one: group commit, without the worker ever blocking
 * in fdatasync.
 *
 * A process and not a thread: the supervisor's seccomp filter, which the worker inherits, forbids
 * clone with CLONE_THREAD or CLONE_VM (sg_seccomp.c), and a process shares nothing with the worker
 * but the log's file. It is forked before the worker installs its own filter (which allows no
 * fork), keeps only the log and its socket, frees the keys it inherited, installs the worker's
 * filter and reads one byte at a time.
 *
 * Protocol, on a SOCK_SEQPACKET socketpair: the worker sends one byte (its value is not read), the
 * syncer fdatasyncs the log and answers one byte, 0 when that succeeded and 1 when it failed. The
 * worker has at most one request outstanding. */
#ifndef AEGIS_SG_SYNC_H
#define AEGIS_SG_SYNC_H

#include "sg_serve.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct sg_sync {
    int fd;    /* the worker's end of the socketpair */
    pid_t pid; /* the syncer's */
} sg_sync;

/* Forks the syncer of sv's issuance log. close_fds[0..n) are descriptors the child must not keep
 * (the worker's request sockets). Call from the worker before its seccomp filter. Returns 0, or -1
 * (message in err). The child dies with the worker (PR_SET_PDEATHSIG) and when its socket closes.
 */
int sg_sync_spawn(sg_serve *sv, const int *close_fds, size_t n, sg_sync *out, char *err,
                  size_t errlen);

/* Asks for one flush. Returns 0, or -1 when the syncer is gone. */
int sg_sync_request(const sg_sync *s);

/* Reads the answer to the request (call when s->fd is readable). Returns 1 when the flush
 * succeeded, 0 when it failed, -1 when the syncer is gone. */
int sg_sync_answer(const sg_sync *s);

#endif
