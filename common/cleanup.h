/*
 * cleanup.h - scope-bound release of memory, descriptors and library objects.
 *
 * GCC and Clang run the function named in __attribute__((cleanup)) when the
 * variable goes out of scope, so error paths need no goto ladders. Every
 * release function accepts the "empty" value (NULL, -1). TAKE_PTR/TAKE_FD hand
 * ownership out of a scope on success.
 */
#ifndef QCOW2C_CLEANUP_H
#define QCOW2C_CLEANUP_H

#include "util.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
    free(*(void **)p);
}

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

#define TAKE_PTR(p)                                                                     \
    ({                                                                                  \
        __typeof__(p) taken_ = (p);                                                     \
        (p) = NULL;                                                                     \
        taken_;                                                                         \
    })

#define TAKE_FD(fd)                                                                     \
    ({                                                                                  \
        int taken_ = (fd);                                                              \
        (fd) = -1;                                                                      \
        taken_;                                                                         \
    })

#endif
