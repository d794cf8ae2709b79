/* b64.c - strict base64; see b64.h. */
#include "b64.h"

#include "log.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int b64_decode(const char *in, size_t len, struct sbuf *out)
{
    unsigned acc = 0;
    int bits = 0, quad = 0, pad = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;

        if (c == '\n' || c == '\r')
            continue;
        if (c == '=') {
            pad++;
            quad++;
            if (pad > 2)
                return fail("too much padding");
            continue;
        }
        if (pad)
            return fail("data after padding");
        v = value(c);
        if (v < 0)
            return fail("unexpected character 0x%02x at offset %zu", c, i);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        quad++;
        if (bits >= 8) {
            bits -= 8;
            sbuf_addch(out, (int)((acc >> bits) & 0xff));
        }
        if (quad == 4) {
            quad = 0;
            bits = 0;
            acc = 0;
        }
    }
    if (quad % 4)
        return fail("truncated input");
    return 0;
}

void b64_encode(const void *in, size_t len, struct sbuf *out)
{
    const unsigned char *p = in;
    size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

        sbuf_addch(out, alphabet[v >> 18]);
        sbuf_addch(out, alphabet[(v >> 12) & 63]);
        sbuf_addch(out, alphabet[(v >> 6) & 63]);
        sbuf_addch(out, alphabet[v & 63]);
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);

        sbuf_addch(out, alphabet[v >> 18]);
        sbuf_addch(out, alphabet[(v >> 12) & 63]);
        sbuf_addch(out, i + 1 < len ? alphabet[(v >> 6) & 63] : '=');
        sbuf_addch(out, '=');
    }
}
