/* quote.c - POSIX shell single-quoting; see quote.h for why it is safe. */
#include "quote.h"

void sq_quote(struct sbuf *out, const char *word)
{
    sbuf_addch(out, '\'');
    for (; *word; word++) {
        if (*word == '\'')
            sbuf_adds(out, "'\\''");
        else
            sbuf_addch(out, *word);
    }
    sbuf_addch(out, '\'');
}

void sq_quote_argv(struct sbuf *out, const char *const *argv)
{
    for (size_t i = 0; argv[i]; i++) {
        if (i)
            sbuf_addch(out, ' ');
        sq_quote(out, argv[i]);
    }
}
