/*
 * b64.h - base64 decoding of the message oned's datastore driver writes on
 * a DS action's stdin (protocol §5.1): RFC 4648 alphabet with '=' padding,
 * on one line. Line breaks are tolerated (a human pasting a message);
 * anything else outside the alphabet is an error, never skipped.
 */
#ifndef QCOW2C_B64_H
#define QCOW2C_B64_H

#include "sbuf.h"

/* Appends the decoded bytes to `out`. 0, or -1 (reason recorded). */
int b64_decode(const char *in, size_t len, struct sbuf *out);
/* Appends the encoding of `in` to `out` (for tests and the harness). */
void b64_encode(const void *in, size_t len, struct sbuf *out);

#endif
