/* hotsave_dom.c - the hot save's view of the domain: what the host says
 * of the disk's chain, its block job, disk.N and the overlays (hotsave_int.h). */
#include "hotsave_int.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "transfer.h"
#include "xml.h"

static void layer_release(struct dom_state *s)
{
    for (size_t i = 0; i < s->nl; i++) {
        free(s->l[i].path);
        free(s->l[i].index);
    }
    free(s->l);
    s->l = NULL;
    s->nl = 0;
}

void hot_state_release(struct dom_state *s)
{
    layer_release(s);
    strvec_clear(&s->targets);
    strvec_clear(&s->leftovers);
    free(s->job);
    free(s->link);
    s->job = NULL;
    s->link = NULL;
}

/* $1 virsh, $2 URI, $3 domain, $4 disk target, $5 snapshot directory, $6
 * time limit, $7 disk.N: the domain's XML, NUL, the disk's block job
 * (--raw), NUL, "L<target>" or "N" for disk.N, NUL, D/E/N for the
 * directory, NUL, then every hotsave.* name in it. */
static const char inspect_script[] =
    "v=$1 u=$2 d=$3 t=$4 dir=$5 l=$6 k=$7; "
    "timeout -k 5 \"$l\" \"$v\" -q -c \"$u\" dumpxml \"$d\" || exit 1; printf '\\0'; "
    "timeout -k 5 \"$l\" \"$v\" -q -c \"$u\" blockjob \"$d\" \"$t\" --raw || exit 1; "
    "printf '\\0'; if [ -L \"$k\" ]; then printf 'L%s\\0' \"$(readlink -- \"$k\")\" || exit 1; "
    "else printf 'N\\0'; fi; "
    "if [ ! -d \"$dir\" ]; then printf 'N\\0'; "
    "elif [ -z \"$(ls -A -- \"$dir\")\" ]; then printf 'E\\0'; else printf 'D\\0'; fi; "
    "for p in \"$dir\"/" HOTSAVE_PREFIX "*; do [ -e \"$p\" ] || [ -L \"$p\" ] || continue; "
    "printf '%s\\0' \"${p##*/}\"; done";

static void add_layer(struct dom_state *s, const char *path, const char *index)
{
    struct layer *l;

    s->l = xrealloc(s->l, (s->nl + 1) * sizeof(*s->l));
    l = &s->l[s->nl++];
    l->path = path[0] == '/' ? path_normalize(path) : xstrdup(path);
    l->index = str_empty(index) ? NULL : xstrdup(index);
}

static int parse_domain(struct hot *h, const char *text, struct dom_state *s)
{
    struct xml *x = xml_doc_parse(text, strlen(text), "domain");
    struct strvec files = STRVEC_INIT, idx = STRVEC_INIT;
    int n, found = -1, rc = -1;

    if (!x)
        return fail_context("the definition of domain %s", h->deploy);
    n = xml_count(x, "/domain/devices/disk");
    for (int i = 1; i <= n; i++) {
        _cleanup_free_ char *dev = xml_get(x, "/domain/devices/disk[%d]/target/@dev", i);

        if (str_empty(dev))
            continue;
        strvec_push(&s->targets, dev);
        if (streq(dev, h->target))
            found = i;
    }
    if (found < 0) {
        fail("domain %s has no disk %s", h->deploy, h->target);
        goto out;
    }
    {
        _cleanup_free_ char *top = xml_get(x, "/domain/devices/disk[%d]/source/@file", found);
        _cleanup_free_ char *ti = xml_get(x, "/domain/devices/disk[%d]/source/@index", found);
        _cleanup_free_ char *mirror = xml_get(x, "/domain/devices/disk[%d]/mirror/@job", found);
        _cleanup_free_ char *ready = xml_get(x, "/domain/devices/disk[%d]/mirror/@ready", found);

        if (str_empty(top)) {
            fail("disk %s of domain %s is not a file", h->target, h->deploy);
            goto out;
        }
        add_layer(s, top, ti);
        if (mirror) {
            free(s->job);
            s->job = xstrdup(str_empty(mirror) ? "mirror" : mirror);
            s->ready = streq(ready, "yes");
        }
    }
    /* the chain only: a <mirror> names files too */
    if (xml_get_all(x, &files,
                    "/domain/devices/disk[%d]/backingStore/descendant-or-self::backingStore"
                    "[source]/source/@file",
                    found) < 0 ||
        xml_get_all(x, &idx,
                    "/domain/devices/disk[%d]/backingStore/descendant-or-self::backingStore"
                    "[source]/@index",
                    found) < 0)
        goto out;
    for (size_t i = 0; i < files.nr; i++)
        add_layer(s, files.v[i], idx.nr == files.nr ? idx.v[i] : NULL);
    rc = 0;
out:
    strvec_clear(&files);
    strvec_clear(&idx);
    xml_free(x);
    return rc;
}

/* " type=Active Block Commit\n bandwidth=0\n cur=..\n end=..": the type. */
static void parse_job(const char *raw, struct dom_state *s)
{
    const char *p = strstr(raw, "type=");
    size_t n;

    if (!p)
        return;
    p += 5;
    n = strcspn(p, "\r\n");
    if (!s->job)
        s->job = xstrndup(p, n);
}

int hot_inspect(struct hot *h, struct dom_state *s)
{
    _cleanup_free_ char *what = xasprintf("reading domain %s", h->deploy);
    struct sbuf out = SBUF_INIT;
    struct strvec r = STRVEC_INIT;
    char lim[16];
    int rc;

    memset(s, 0, sizeof(*s));
    strvec_init(&s->targets);
    strvec_init(&s->leftovers);
    snprintf(lim, sizeof(lim), "%u", VIRSH_QUICK);
    rc = xfer_sh(h->c->h, what, VIRSH_QUICK * 2 + 30, &out, inspect_script, config_str("VIRSH"),
                 config_str("LIBVIRT_URI"), h->deploy, h->target, h->snap_dir, lim, h->c->vp.path,
                 NULL);
    xfer_split0(&out, &r);
    if (rc == 0 && r.nr < 4)
        rc = fail("unexpected answer from %s while %s", host_name(h->c->h), what);
    if (rc == 0)
        rc = parse_domain(h, r.v[0], s);
    if (rc == 0) {
        parse_job(r.v[1], s);
        if (r.v[2][0] == 'L')
            s->link = xstrdup(r.v[2] + 1);
        s->dir = r.v[3][0];
        for (size_t i = 4; i < r.nr; i++)
            strvec_push(&s->leftovers, r.v[i]);
    }
    strvec_clear(&r);
    sbuf_release(&out);
    if (rc < 0)
        hot_state_release(s);
    return rc;
}
