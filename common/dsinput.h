/*
 * dsinput.h - the message a DS action receives from oned (protocol §5.1-5.2).
 *
 * oned's datastore driver runs `datastore/<DS_MAD>/<action> <id>` and writes
 * on its stdin the base64 encoding of
 *   <DS_DRIVER_ACTION_DATA><IMAGE>...</IMAGE><DATASTORE>...</DATASTORE>
 *   [extra]</DS_DRIVER_ACTION_DATA>
 * without a newline. TM `monitor` receives the same kind of message.
 */
#ifndef QCOW2C_DSINPUT_H
#define QCOW2C_DSINPUT_H

#include "xml.h"

/* Reads fd to EOF (at most 64 MiB), decodes and parses it. NULL with one
 * reason recorded ("...on stdin is not valid base64: ..."). */
struct xml *ds_input_read(int fd);
/* The same from a buffer (tests). */
struct xml *ds_input_parse(const char *b64, size_t len);

#endif
