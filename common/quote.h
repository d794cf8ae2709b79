/*
 * quote.h - the one audited way to put arguments on a remote command line.
 *
 * ssh hands its command to the remote user's shell as a single string, so
 * every argument the driver sends to a host passes through sq_quote(): the
 * word is wrapped in single quotes and each single quote inside it becomes
 * '\'' (close, escaped quote, reopen). Inside single quotes a POSIX shell
 * gives no character a special meaning, so $(...), ;, `, \, newlines and
 * globs arrive as plain bytes. Nothing else in qcow2c builds shell text from
 * data.
 */
#ifndef QCOW2C_QUOTE_H
#define QCOW2C_QUOTE_H

#include "sbuf.h"

void sq_quote(struct sbuf *out, const char *word);
/* Quotes every word of argv, separated by single spaces. */
void sq_quote_argv(struct sbuf *out, const char *const *argv);

#endif
