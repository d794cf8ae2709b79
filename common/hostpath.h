/*
 * hostpath.h - "host:path" arguments exactly as oned writes them.
 *
 * oned's own helpers (protocol §1.6, traps 1-3) split at the FIRST colon
 * (arg_host/arg_path), accept a bare path without colon (MVDS and CPDS
 * destinations), and normalise the path: runs of '/' collapse, a trailing '/'
 * goes. Datastore paths really contain '//' (/var/lib/one//datastores).
 *
 * Beyond oned, qcow2c refuses what it cannot handle safely instead of guessing:
 * a relative path, a '.' or '..' component, an empty host, a host name ssh
 * would take for an option, and therefore "host:port:/path" and IPv6 literals
 * (their second part is not an absolute path). Each refusal is one clear
 * reason. Ports belong in ~oneadmin/.ssh/config.
 */
#ifndef QCOW2C_HOSTPATH_H
#define QCOW2C_HOSTPATH_H

#include "util.h"

struct hostpath {
    char *host; /* NULL for a bare path */
    char *path; /* normalised, absolute */
};

/* Parses `arg`; -1 with the reason recorded when it is not acceptable.
 * `what` names the argument in messages ("destination"). */
int hostpath_parse(const char *arg, const char *what, struct hostpath *hp);
/* Like hostpath_parse but a host is mandatory. */
int hostpath_parse_remote(const char *arg, const char *what, struct hostpath *hp);
void hostpath_release(struct hostpath *hp);

/* Collapses '//' runs and drops a trailing '/' (keeps "/"). New string. */
char *path_normalize(const char *path);
/* True when `path` is absolute and has no "." or ".." component. */
bool path_is_clean(const char *path);
/* Parent directory of a normalised path ("/a/b" -> "/a", "/a" -> "/"). */
char *path_dirname(const char *path);
/* Last component (pointer into `path`). */
const char *path_basename(const char *path);
/* Joins with one '/'. */
char *path_join(const char *dir, const char *name);

#endif
