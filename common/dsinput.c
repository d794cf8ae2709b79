/* dsinput.c - decode the DS_DRIVER_ACTION_DATA message; see dsinput.h. */
#include "dsinput.h"

#include "b64.h"
#include "log.h"

#define MAX_DS_INPUT (64u << 20)

struct xml *ds_input_parse(const char *b64, size_t len)
{
    struct sbuf raw = SBUF_INIT;
    struct xml *x = NULL;

    while (len && b64[len - 1] && strchr(" \t\r\n", b64[len - 1]))
        len--;
    if (!len) {
        fail("no driver message on stdin (expected base64 DS_DRIVER_ACTION_DATA)");
        goto out;
    }
    if (b64_decode(b64, len, &raw) < 0) {
        fail_context("the driver message on stdin is not valid base64");
        goto out;
    }
    x = xml_doc_parse(raw.buf, raw.len, "DS_DRIVER_ACTION_DATA");
    if (!x)
        fail_context("the driver message on stdin is not a DS_DRIVER_ACTION_DATA document");
out:
    sbuf_release(&raw);
    return x;
}

struct xml *ds_input_read(int fd)
{
    struct sbuf in = SBUF_INIT;
    struct xml *x = NULL;

    if (sbuf_read_fd(&in, fd, MAX_DS_INPUT) < 0) {
        if (errno == E2BIG)
            fail("the driver message on stdin is larger than %u MiB", MAX_DS_INPUT >> 20);
        else
            fail_errno("cannot read the driver message on stdin");
    } else {
        x = ds_input_parse(in.buf, in.len);
    }
    sbuf_release(&in);
    return x;
}
