/*
 * testlib.h - small helpers shared by the Criterion unit tests.
 *
 * Each test runs in its own process (Criterion forks), so helpers may change
 * global state (configuration, cwd) freely.
 */
#ifndef QCOW2C_TESTLIB_H
#define QCOW2C_TESTLIB_H

#include <criterion/criterion.h>
#include <libgen.h>

#include "util.h"

#include "config.h"
#include "log.h"
#include "sbuf.h"

/* A fresh private directory under $TMPDIR (or /tmp); removed by the OS
 * tmp cleaning only, so failing tests leave evidence behind. */
static inline char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = xasprintf("%s/qcow2c-unit-XXXXXX", base && *base ? base : "/tmp");

    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
    return tmpl;
}

static inline void test_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

/* A file of tests/fixtures/oned (copies of the real oned's captures), found
 * from the working directory (make runs the tests from the top of the tree)
 * or from the test binary (<O>/tests/<name>); QCOW2C_FIXTURES overrides. */
static inline char *test_fixture(const char *rel)
{
    const char *env = getenv("QCOW2C_FIXTURES");
    char *exe, *path;

    if (env && *env)
        return xasprintf("%s/%s", env, rel);
    if (access("tests/fixtures/oned/README.md", R_OK) == 0)
        return xasprintf("tests/fixtures/oned/%s", rel);
    exe = realpath("/proc/self/exe", NULL);
    cr_assert_not_null(exe);
    path = xasprintf("%s/../tests/fixtures/oned/%s", dirname(dirname(exe)), rel);
    free(exe);
    return path;
}

static inline void test_read_fixture(const char *rel, struct sbuf *out)
{
    char *path = test_fixture(rel);

    cr_assert_eq(sbuf_read_file(out, path, 0), 0, "cannot read fixture %s: %s", path,
                 strerror(errno));
    free(path);
}

/* The directory of the test sshd started by tests/run-unit.sh. Tests that
 * need it fail (not skip) when it is missing. */
static inline const char *test_sshd_dir(void)
{
    const char *d = getenv("QCOW2C_TEST_SSHD");

    cr_assert(d && *d, "QCOW2C_TEST_SSHD is not set: run the unit tests with make check");
    return d;
}

/* Loads a configuration that points ssh at the test sshd and keeps locks in
 * a private directory. `extra` is appended verbatim (may be NULL). */
static inline void test_config(const char *extra)
{
    char *dir = test_tmpdir();
    char *conf = xasprintf("%s/qcow2c.conf", dir);
    const char *sshd = getenv("QCOW2C_TEST_SSHD");
    char *text = xasprintf("LOCK_DIR=\"%s/locks\"\n%s%s%s\n%s\n", dir,
                           sshd ? "SSH_OPTIONS=\"-F " : "", sshd ? sshd : "",
                           sshd ? "/ssh_config\"" : "", extra ? extra : "");

    test_write_file(conf, text);
    cr_assert_eq(config_load_file(conf), 0, "config: %s", fail_reason());
    free(text);
    free(conf);
    free(dir);
}

#endif
