/*
 * strvec.h - NULL-terminated vectors of owned strings, for argv and
 * environment arrays. `v` is never NULL and `v[nr]` is always NULL.
 */
#ifndef QCOW2C_STRVEC_H
#define QCOW2C_STRVEC_H

#include "util.h"

struct strvec {
    const char **v;
    size_t nr;
    size_t alloc;
};

extern const char *strvec_empty[1];
#define STRVEC_INIT { .v = strvec_empty, .nr = 0, .alloc = 0 }

void strvec_init(struct strvec *sv);
void strvec_clear(struct strvec *sv);

const char *strvec_push(struct strvec *sv, const char *s);
const char *strvec_pushf(struct strvec *sv, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Pushes every argument up to a terminating NULL. */
void strvec_pushl(struct strvec *sv, ...) __attribute__((sentinel));
void strvec_pushv(struct strvec *sv, const char *const *v);
/* Splits `s` on runs of blanks and pushes each word. */
void strvec_split(struct strvec *sv, const char *s);

#endif
