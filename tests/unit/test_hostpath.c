/* test_hostpath.c - host:path arguments as oned writes them (protocol §1.6,
 * traps 1-3), and the path helpers. */
#include "testlib.h"

#include "hostpath.h"
#include "strvec.h"

TestSuite(hostpath, .timeout = 30);

/* Reads a fixture's lines (the argv files hold one argument a line). */
static void fixture_lines(const char *rel, struct strvec *out)
{
    char *path = test_fixture(rel);
    struct sbuf sb = SBUF_INIT;
    const char *p;

    cr_assert_eq(sbuf_read_file(&sb, path, 0), 0, "cannot read fixture %s: %s", path,
                 strerror(errno));
    for (p = sb.buf; *p;) {
        size_t n = strcspn(p, "\n");

        char *line = xstrndup(p, n);
        strvec_push(out, line);
        free(line);
        p += n;
        if (*p)
            p++;
    }
    sbuf_release(&sb);
    free(path);
}

/* What arg_host/arg_path + fix_dir_slashes give, computed independently. */
static char *expected_path(const char *arg)
{
    const char *colon = strchr(arg, ':');
    const char *p = colon ? colon + 1 : arg;
    struct sbuf sb = SBUF_INIT;

    for (; *p; p++)
        if (!(*p == '/' && sb.len && sb.buf[sb.len - 1] == '/'))
            sbuf_addch(&sb, *p);
    if (sb.len > 1 && sb.buf[sb.len - 1] == '/')
        sbuf_setlen(&sb, sb.len - 1);
    return sbuf_detach(&sb);
}

/* Every host:path and bare path oned gave a TM action in the captures. */
Test(hostpath, every_captured_tm_argument)
{
    static const char *const files[] = {
        "tm/clone/1/argv",       "tm/clone/2/argv",       "tm/cpds/1/argv",
        "tm/delete/1/argv",      "tm/delete/2/argv",      "tm/delete/3/argv",
        "tm/ln/1/argv",          "tm/ln/2/argv",          "tm/mkimage/1/argv",
        "tm/mkimage/2/argv",     "tm/mkswap/1/argv",      "tm/mkswap/2/argv",
        "tm/mv/1/argv",          "tm/mv/2/argv",          "tm/mv/3/argv",
        "tm/mvds/1/argv",        "tm/mvds/2/argv",        "tm/resize/1/argv",
        "tm/snap_create/1/argv", "tm/snap_create/2/argv", "tm/snap_delete/1/argv",
        "tm/snap_revert/1/argv",
    };
    unsigned with_host = 0, bare = 0;

    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        struct strvec args = STRVEC_INIT;

        fixture_lines(files[i], &args);
        cr_assert_gt(args.nr, 0, "%s is empty", files[i]);
        for (size_t j = 0; j < args.nr; j++) {
            const char *a = args.v[j];
            struct hostpath hp = { NULL, NULL };
            char *want;

            if (!strchr(a, '/'))
                continue; /* ids, sizes, formats */
            fail_reset();
            cr_assert_eq(hostpath_parse(a, "argument", &hp), 0, "%s: '%s' refused: %s", files[i], a,
                         fail_reason());
            want = expected_path(a);
            cr_assert_str_eq(hp.path, want, "%s: '%s'", files[i], a);
            cr_assert_null(strstr(hp.path, "//"));
            if (strchr(a, ':')) {
                cr_assert_not_null(hp.host);
                cr_assert(streq(hp.host, "node1") || streq(hp.host, "node2") ||
                              streq(hp.host, "frontend"),
                          "%s: host '%s'", a, hp.host);
                with_host++;
            } else {
                cr_assert_null(hp.host, "bare '%s' got host '%s'", a, hp.host);
                bare++;
            }
            free(want);
            hostpath_release(&hp);
        }
        strvec_clear(&args);
    }
    cr_assert_gt(with_host, 20);
    cr_assert_eq(bare, 3, "cpds/1, mvds/1, mvds/2 have bare destinations");
}

struct ok_case {
    const char *arg;
    const char *host; /* NULL: bare */
    const char *path;
};

static const struct ok_case ok_cases[] = {
    { "node1:/var/lib/one//datastores/106/9/disk.0", "node1",
      "/var/lib/one/datastores/106/9/disk.0" },
    { "frontend:/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121", "frontend",
      "/var/lib/one/datastores/107/7884294dec91169f7f22cacffae86121" },
    { "/var/lib/one//datastores/107/e5214f0e1cf89c730f911a643be2f4dc", NULL,
      "/var/lib/one/datastores/107/e5214f0e1cf89c730f911a643be2f4dc" },
    { "node1:/var/lib/one//datastores/106/9/", "node1", "/var/lib/one/datastores/106/9" },
    { "node1:/var/lib/one//datastores/106/9//", "node1", "/var/lib/one/datastores/106/9" },
    { "node1:////a////b", "node1", "/a/b" },
    { "node1:/", "node1", "/" },
    { "node1://", "node1", "/" },
    { "/", NULL, "/" },
    { "///", NULL, "/" },
    /* first colon: the rest, colons included, is the path */
    { "host:/a:b", "host", "/a:b" },
    { "node1:/var/lib/one//datastores/0/42/disk.0:snap", "node1",
      "/var/lib/one/datastores/0/42/disk.0:snap" },
    /* legal host names */
    { "node-2.example.com:/x", "node-2.example.com", "/x" },
    { "NODE_3:/x", "NODE_3", "/x" },
    { "10.0.0.7:/x", "10.0.0.7", "/x" },
    /* names that only look like '.' and '..' */
    { "node1:/a/.hidden/..b/.../b.", "node1", "/a/.hidden/..b/.../b." },
    /* hostile but legal: accepted verbatim, quoting happens later */
    { "node1:/tmp/$(touch x)/disk.0", "node1", "/tmp/$(touch x)/disk.0" },
    { "node1:/tmp/`id`;rm -rf ~ &/'q'\"/disk", "node1", "/tmp/`id`;rm -rf ~ &/'q'\"/disk" },
    { "node1:/tmp/a b\tc/-rf", "node1", "/tmp/a b\tc/-rf" },
    { "/tmp/\xc3\xa9t\xc3\xa9/disk.0", NULL, "/tmp/\xc3\xa9t\xc3\xa9/disk.0" },
};

Test(hostpath, accepted_shapes)
{
    for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
        const struct ok_case *c = &ok_cases[i];
        struct hostpath hp = { NULL, NULL };

        fail_reset();
        cr_assert_eq(hostpath_parse(c->arg, "source", &hp), 0, "'%s' refused: %s", c->arg,
                     fail_reason());
        cr_assert(!failed(), "'%s' recorded a reason: %s", c->arg, fail_reason());
        if (c->host)
            cr_assert_str_eq(hp.host ? hp.host : "(null)", c->host, "host of '%s'", c->arg);
        else
            cr_assert_null(hp.host, "'%s' has host '%s'", c->arg, hp.host);
        cr_assert_str_eq(hp.path, c->path, "path of '%s'", c->arg);
        hostpath_release(&hp);
        cr_assert_null(hp.host);
        cr_assert_null(hp.path);
    }
}

struct bad_case {
    const char *arg;
    const char *reason; /* the whole reason, with what = "destination" */
};

static const struct bad_case bad_cases[] = {
    { "", "the destination argument is empty" },
    { "relative/disk.0", "the destination 'relative/disk.0' does not name an absolute path" },
    { "disk.0", "the destination 'disk.0' does not name an absolute path" },
    { "node1:relative/disk.0",
      "the destination 'node1:relative/disk.0' does not name an absolute path" },
    { "node1:", "the destination 'node1:' does not name an absolute path" },
    { "node1:~/x", "the destination 'node1:~/x' does not name an absolute path" },
    { "/a/./b", "the destination '/a/./b' contains '.' or '..' components" },
    { "/a/../b", "the destination '/a/../b' contains '.' or '..' components" },
    { "node1:/var/lib/one//datastores/../../../etc/shadow",
      "the destination 'node1:/var/lib/one//datastores/../../../etc/shadow' contains '.' or "
      "'..' components" },
    { "node1:/a/..", "the destination 'node1:/a/..' contains '.' or '..' components" },
    { "node1:/a/.", "the destination 'node1:/a/.' contains '.' or '..' components" },
    { "node1:/a/./", "the destination 'node1:/a/./' contains '.' or '..' components" },
    { "/..", "the destination '/..' contains '.' or '..' components" },
    { "/.", "the destination '/.' contains '.' or '..' components" },
    { "host:2222:/path",
      "the destination 'host:2222:/path' does not name an absolute path (host:port is not "
      "supported; use ~/.ssh/config)" },
    { "[::1]:/path",
      "the destination '[::1]:/path' has an invalid host name '[' (ports and IPv6 addresses "
      "belong in ~oneadmin/.ssh/config)" },
    { "-oProxyCommand=x:/p",
      "the destination '-oProxyCommand=x:/p' has an invalid host name '-oProxyCommand=x' "
      "(ports and IPv6 addresses belong in ~oneadmin/.ssh/config)" },
    { "-x:/p",
      "the destination '-x:/p' has an invalid host name '-x' (ports and IPv6 addresses belong "
      "in ~oneadmin/.ssh/config)" },
    { ":/path",
      "the destination ':/path' has an invalid host name '' (ports and IPv6 addresses belong "
      "in ~oneadmin/.ssh/config)" },
    { "user@node1:/p",
      "the destination 'user@node1:/p' has an invalid host name 'user@node1' (ports and IPv6 "
      "addresses belong in ~oneadmin/.ssh/config)" },
    { "node 1:/p", "the destination 'node 1:/p' has an invalid host name 'node 1' (ports and IPv6 "
                   "addresses belong in ~oneadmin/.ssh/config)" },
    { "$(reboot):/p",
      "the destination '$(reboot):/p' has an invalid host name '$(reboot)' (ports and IPv6 "
      "addresses belong in ~oneadmin/.ssh/config)" },
};

Test(hostpath, refusals_carry_one_clear_reason)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct hostpath hp = { (char *)"junk", (char *)"junk" };

        fail_reset();
        cr_assert_eq(hostpath_parse(c->arg, "destination", &hp), -1, "'%s' accepted", c->arg);
        cr_assert_null(hp.host, "'%s': host left set", c->arg);
        cr_assert_null(hp.path, "'%s': path left set", c->arg);
        cr_assert_str_eq(fail_reason(), c->reason, "reason for '%s'", c->arg);
    }
}

Test(hostpath, a_newline_in_the_argument_stays_out_of_the_reason)
{
    struct hostpath hp;

    cr_assert_eq(hostpath_parse("node1\nINFO: 1 x:/p", "source", &hp), -1);
    cr_assert_null(strchr(fail_reason(), '\n'), "%s", fail_reason());
    cr_assert_null(strchr(fail_reason(), '\r'));
}

Test(hostpath, remote_requires_a_host)
{
    struct hostpath hp;

    cr_assert_eq(hostpath_parse_remote("/var/lib/one//datastores/107/x", "source", &hp), -1);
    cr_assert_str_eq(fail_reason(),
                     "the source '/var/lib/one//datastores/107/x' is not of the form host:/path");
    cr_assert_null(hp.host);
    cr_assert_null(hp.path);

    fail_reset();
    cr_assert_eq(
        hostpath_parse_remote("node1:/var/lib/one//datastores/106/9/disk.0", "source", &hp), 0,
        "%s", fail_reason());
    cr_assert_str_eq(hp.host, "node1");
    cr_assert_str_eq(hp.path, "/var/lib/one/datastores/106/9/disk.0");
    hostpath_release(&hp);

    /* the remote variant refuses everything the plain one refuses */
    fail_reset();
    cr_assert_eq(hostpath_parse_remote("node1:/a/../b", "source", &hp), -1);
    cr_assert(strstr(fail_reason(), "'.' or '..'"), "%s", fail_reason());
    fail_reset();
    cr_assert_eq(hostpath_parse_remote("", "source", &hp), -1);
    cr_assert_str_eq(fail_reason(), "the source argument is empty");
}

Test(hostpath, host_name_length_limit)
{
    struct sbuf arg = SBUF_INIT;
    struct hostpath hp;

    for (int i = 0; i < 253; i++)
        sbuf_addch(&arg, 'a');
    sbuf_adds(&arg, ":/x");
    cr_assert_eq(hostpath_parse(arg.buf, "source", &hp), 0, "%s", fail_reason());
    cr_assert_eq(strlen(hp.host), 253);
    hostpath_release(&hp);

    sbuf_reset(&arg);
    for (int i = 0; i < 254; i++)
        sbuf_addch(&arg, 'a');
    sbuf_adds(&arg, ":/x");
    cr_assert_eq(hostpath_parse(arg.buf, "source", &hp), -1);
    cr_assert(strstr(fail_reason(), "invalid host name"), "%s", fail_reason());
    sbuf_release(&arg);
}

Test(hostpath, release_is_idempotent)
{
    struct hostpath hp;

    cr_assert_eq(hostpath_parse("n:/a", "x", &hp), 0);
    hostpath_release(&hp);
    hostpath_release(&hp);
    cr_assert_null(hp.host);
    cr_assert_null(hp.path);
}

Test(hostpath, normalize)
{
    static const char *const t[][2] = {
        { "", "" },
        { "/", "/" },
        { "//", "/" },
        { "////", "/" },
        { "/a", "/a" },
        { "/a/", "/a" },
        { "/a//", "/a" },
        { "/var/lib/one//datastores/107/", "/var/lib/one/datastores/107" },
        { "///a///b///c", "/a/b/c" },
        { "a//b/", "a/b" },
        { "a", "a" },
        { "/a/./b/../c", "/a/./b/../c" }, /* normalising is not resolving */
        { "/a b//c d/", "/a b/c d" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        char *n = path_normalize(t[i][0]);

        cr_assert_str_eq(n, t[i][1], "path_normalize('%s')", t[i][0]);
        free(n);
    }
}

Test(hostpath, is_clean)
{
    static const struct {
        const char *p;
        bool clean;
    } t[] = {
        { "/", true },     { "/a/b", true },     { "//a//b//", true },  { "/a/.b/..c/...", true },
        { "/a/b.", true }, { "", false },        { "a/b", false },      { "./a", false },
        { "/.", false },   { "/..", false },     { "/a/.", false },     { "/a/..", false },
        { "/./a", false }, { "/a/../b", false }, { "/a//.//b", false }, { "/a/./", false },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++)
        cr_assert_eq(path_is_clean(t[i].p), t[i].clean, "path_is_clean('%s')", t[i].p);
}

Test(hostpath, dirname)
{
    static const char *const t[][2] = {
        { "/a/b", "/a" },
        { "/a", "/" },
        { "/", "/" },
        { "a", "." },
        { "a/b", "a" },
        { "/var/lib/one/datastores/106/9/disk.0", "/var/lib/one/datastores/106/9" },
        { "/var/lib/one/datastores/107/x.snap/0", "/var/lib/one/datastores/107/x.snap" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        char *d = path_dirname(t[i][0]);

        cr_assert_str_eq(d, t[i][1], "path_dirname('%s')", t[i][0]);
        free(d);
    }
}

Test(hostpath, basename)
{
    static const char *const t[][2] = {
        { "/a/b", "b" },
        { "/a", "a" },
        { "b", "b" },
        { "/", "" },
        { "", "" },
        { "/var/lib/one/datastores/106/9/disk.0", "disk.0" },
        { "/x/clone.ssh", "clone.ssh" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        const char *b = path_basename(t[i][0]);

        cr_assert_str_eq(b, t[i][1], "path_basename('%s')", t[i][0]);
        /* a pointer into the argument, not a copy */
        cr_assert(b >= t[i][0] && b <= t[i][0] + strlen(t[i][0]));
    }
}

Test(hostpath, join)
{
    static const char *const t[][3] = {
        { "/a", "b", "/a/b" },
        { "/a/", "b", "/a/b" },
        { "/", "b", "/b" },
        { "/a/b", "c/d", "/a/b/c/d" },
        { "a", "b", "a/b" },
        { "/var/lib/one/datastores/106/9", "disk.0", "/var/lib/one/datastores/106/9/disk.0" },
        { "/a", "", "/a/" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        char *j = path_join(t[i][0], t[i][1]);

        cr_assert_str_eq(j, t[i][2], "path_join('%s', '%s')", t[i][0], t[i][1]);
        free(j);
    }
}

/* The helpers agree with each other on normalised paths. */
Test(hostpath, dirname_basename_join_roundtrip)
{
    static const char *const paths[] = {
        "/var/lib/one/datastores/106/9/disk.0",
        "/a",
        "/a/b/c.part",
        "/tmp/$(x)/d e",
    };

    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        char *d = path_dirname(paths[i]);
        char *j = path_join(d, path_basename(paths[i]));

        cr_assert_str_eq(j, paths[i]);
        free(d);
        free(j);
    }
}
