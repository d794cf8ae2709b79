/* hotsave.c - the hot disk save-as of a running VM; see hotsave.h and the
 * contract at the top of cpds.c. */
#include "hotsave.h"

#include "cleanup.h"
#include "config.h"
#include "hostpath.h"
#include "log.h"
#include "num.h"
#include "quote.h"
#include "snapshot.h"
#include "transfer.h"
#include "xml.h"

/* Seconds a guest agent call (freeze, thaw) may take; TIMEOUT when lower. */
#define AGENT_LIMIT 60u
/* Seconds a virsh call that only asks libvirt may take. */
#define VIRSH_QUICK 60u
/* Attempts at bringing the domain back on its disk (pivot, abort, commit). */
#define MERGE_ROUNDS 3

struct layer {
    char *path;  /* normalised */
    char *index; /* libvirt's index attribute, or NULL */
};

/* What the host says about the disk: the domain's chain, its block job,
 * and the hotsave files of the snapshot directory. */
struct dom_state {
    struct layer *l; /* [0] the active layer, then its backing chain */
    size_t nl;
    struct strvec targets;   /* every <disk> target of the domain */
    char *job;               /* the block job on the disk (type), NULL when none */
    bool ready;              /* that job may pivot */
    char *link;              /* what disk.N points to (as stored), NULL when not a link */
    char dir;                /* the snapshot directory: 'D' holds entries, 'E' empty, 'N' none */
    struct strvec leftovers; /* hotsave.* names in it */
};

enum freeze { FREEZE_DONE, FREEZE_NO_AGENT, FREEZE_FAILED };

struct hot {
    struct cpds *c;
    char *deploy;
    char *target;
    char *snap_dir; /* where the overlay goes */
    char *overlay;  /* this attempt's overlay */
    char *relink;   /* disk.N's target while the domain writes it, or NULL */
    char *top;      /* the active layer before the overlay: the frozen state */
    int image_id;
    enum freeze freeze;
    char *freeze_why;
    char *instant;   /* UTC, when the overlay was in place */
    bool unanswered; /* snapshot-create-as gave no answer: libvirt may still make it */
};

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

static void state_release(struct dom_state *s)
{
    layer_release(s);
    strvec_clear(&s->targets);
    strvec_clear(&s->leftovers);
    free(s->job);
    free(s->link);
    s->job = NULL;
    s->link = NULL;
}

static void hot_release(struct hot *h)
{
    free(h->deploy);
    free(h->target);
    free(h->snap_dir);
    free(h->overlay);
    free(h->relink);
    free(h->top);
    free(h->freeze_why);
    free(h->instant);
}

/* One line of a command's stderr (or how it ended). */
static char *cmd_why(struct cmd *c)
{
    struct sbuf why = SBUF_INIT;

    if (failed()) {
        sbuf_adds(&why, fail_reason());
        fail_reset();
        return sbuf_detach(&why);
    }
    sbuf_rtrim(&c->err);
    sbuf_add_oneline(&why, c->err.buf, c->err.len);
    if (!why.len)
        sbuf_addf(&why, "exit status %d%s", c->status, c->timed_out ? ", timed out" : "");
    return sbuf_detach(&why);
}

static bool is_ours(const struct hot *h, const char *path)
{
    _cleanup_free_ char *dir = path_dirname(path);

    return streq(dir, h->snap_dir) && starts_with(path_basename(path), HOTSAVE_PREFIX);
}

/* disk.N's link target as an absolute normalised path. */
static char *link_path(const struct hot *h, const char *target)
{
    _cleanup_free_ char *j =
        target[0] == '/' ? xstrdup(target) : path_join(h->c->vp.vm_dir, target);

    return path_normalize(j);
}

/* Where disk.N points: K when it is "<snap dir>/hotsave.K.<pid>.<ms>" (the
 * overlay of a hot save, made while disk.N pointed to snapshot file K), -1
 * when it does not point to an overlay of ours, -2 for one with no K. */
static int linked_overlay(const struct hot *h, const char *target)
{
    _cleanup_free_ char *abs = NULL, *num = NULL;
    const char *name;
    int k;

    if (!target)
        return -1;
    abs = link_path(h, target);
    if (!is_ours(h, abs))
        return -1;
    name = path_basename(abs) + strlen(HOTSAVE_PREFIX);
    num = xstrndup(name, strcspn(name, "."));
    return parse_id(num, &k) == 0 ? k : -2;
}

/* `target` with its last component replaced by `name`, in the same form
 * (relative names stay relative). */
static char *sibling(const char *target, const char *name)
{
    const char *slash = strrchr(target, '/');

    return slash ? xasprintf("%.*s/%s", (int)(slash - target), target, name) : xstrdup(name);
}

/* $1 the link, $2 its new target: replaced by rename, directory flushed. */
#define RELINK_SH                                                                          \
    "rm -f -- \"$l.lnk\" && ln -s -- \"$t\" \"$l.lnk\" && mv -fT -- \"$l.lnk\" \"$l\" && " \
    "sync -- \"${l%/*}\""

static const char relink_script[] = "l=$1 t=$2; " RELINK_SH;

static int relink(struct hot *h, const char *target)
{
    _cleanup_free_ char *what = xasprintf("pointing %s to %s", h->c->vp.path, target);

    return xfer_sh(h->c->h, what, 0, NULL, relink_script, h->c->vp.path, target, NULL);
}

/* ---- reading the domain ---- */

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

static int inspect(struct hot *h, struct dom_state *s)
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
        state_release(s);
    return rc;
}

/* ---- bringing the domain back on its disk ---- */

/* The argument naming layer i for --base: "vda[3]", or its path. */
static char *layer_arg(const struct hot *h, const struct layer *l)
{
    return l->index ? xasprintf("%s[%s]", h->target, l->index) : xstrdup(l->path);
}

/* A virsh call on the disk; the reason of a failure in *why. */
static int virsh_disk(struct hot *h, const char *sub, unsigned limit, const char *const *extra,
                      char **why)
{
    struct cmd c = CMD_INIT;
    int rc;

    virsh_cmd(&c, limit, sub);
    strvec_pushl(&c.args, h->deploy, h->target, NULL);
    strvec_pushv(&c.args, extra);
    rc = host_run_status(h->c->h, &c) == 0 && c.status == 0 ? 0 : -1;
    if (rc < 0)
        *why = cmd_why(&c);
    cmd_release(&c);
    return rc;
}

/* $1 the link, $2 its target once the domain has left the overlay ("":
 * none), then the virsh command. Exit 3: pivoted, not relinked. In one
 * command on the host, so that a killed action cannot leave disk.N on an
 * overlay the domain left (a stale layer over newer data). */
static const char pivot_script[] =
    "l=$1 t=$2; shift 2; \"$@\" || exit 1; [ -n \"$t\" ] || exit 0; " RELINK_SH " || exit 3";

static int virsh_then_relink(struct hot *h, const char *sub, unsigned limit,
                             const char *const *extra, const char *restore, char **why)
{
    struct cmd c = CMD_INIT;
    int rc;

    strvec_pushl(&c.args, "sh", "-c", pivot_script, "sh", h->c->vp.path, restore ? restore : "",
                 NULL);
    virsh_cmd(&c, limit, sub);
    strvec_pushl(&c.args, h->deploy, h->target, NULL);
    strvec_pushv(&c.args, extra);
    rc = host_run_status(h->c->h, &c) == 0 && c.status == 0 ? 0 : -1;
    if (rc < 0)
        *why = cmd_why(&c);
    else if (restore)
        log_info("%s points to %s again", h->c->vp.path, restore);
    cmd_release(&c);
    return rc;
}

/* Commits the active layer (ours) into the layer right below it, and only
 * into that one: --shallow and --base name it (without them libvirt
 * commits into the bottom of the chain, the image other VMs share). */
static int commit(struct hot *h, const struct dom_state *s, const char *restore, char **why)
{
    _cleanup_free_ char *base = layer_arg(h, &s->l[1]);
    unsigned limit = config_uint("COPY_TIMEOUT");
    char secs[16];
    const char *extra[] = { "--active", "--shallow", "--base", base, "--pivot",
                            "--wait",   "--timeout", secs,     NULL };

    snprintf(secs, sizeof(secs), "%u", limit);
    log_info("merging %s back into %s (virsh blockcommit --active --shallow --pivot)", s->l[0].path,
             s->l[1].path);
    return virsh_then_relink(h, "blockcommit", limit + 30, extra, restore, why);
}

/* Removes the hotsave files the domain does not use, and the snapshot
 * directory when nothing else is in it (one made for the overlay). */
static const char remove_script[] =
    "dir=$1; shift; rm -f -- \"$@\" || exit 1; rmdir -- \"$dir\" 2>/dev/null; "
    "if [ -d \"$dir\" ]; then sync -- \"$dir\"; else sync -- \"${dir%/*}\"; fi";

static int remove_leftovers(struct hot *h, const struct dom_state *s)
{
    struct strvec args = STRVEC_INIT;
    int rc;

    if (!s->leftovers.nr && s->dir != 'E')
        return 0;
    strvec_push(&args, h->snap_dir);
    for (size_t i = 0; i < s->leftovers.nr; i++) {
        _cleanup_free_ char *p = path_join(h->snap_dir, s->leftovers.v[i]);

        if (h->unanswered && streq(p, h->overlay)) {
            /* a snapshot still under way in libvirt may be about to use it */
            log_warn("%s is left for the next save of the disk to remove", p);
            continue;
        }
        if (!h->overlay || !streq(p, h->overlay))
            log_info("removing %s, left by an interrupted hot save", p);
        strvec_push(&args, p);
    }
    if (args.nr == 1 && s->dir != 'E') {
        strvec_clear(&args);
        return 0;
    }
    rc = xfer_shv(h->c->h, "removing the temporary overlay", 0, NULL, remove_script, &args);
    strvec_clear(&args);
    return rc;
}

/*
 * Brings the domain back on its own disk: the overlay of this attempt, or
 * of an interrupted one, merged back (a commit job an earlier run left is
 * pivoted when ready, aborted and done again otherwise), then every hotsave
 * file removed. Refuses what it did not make: a hotsave layer below the
 * active one, a block job on a disk whose active layer is not ours. With
 * `final`, the state it ends with (the caller releases it).
 */
static int converge(struct hot *h, struct dom_state *final)
{
    struct dom_state s = { 0 };
    _cleanup_free_ char *why = NULL;
    int round, rc = -1;

    for (round = 0;; round++) {
        _cleanup_free_ char *restore = NULL;
        bool top_ours;
        int k;

        if (inspect(h, &s) < 0)
            return -1;
        top_ours = is_ours(h, s.l[0].path);
        k = linked_overlay(h, s.link);
        if (k == -2) {
            fail("%s points to %s, a temporary overlay whose name says no snapshot file: "
                 "point it back by hand",
                 h->c->vp.path, s.link);
            goto out;
        }
        if (k >= 0) {
            char num[16];

            snprintf(num, sizeof(num), "%d", k);
            restore = sibling(s.link, num);
        }
        for (size_t i = 1; i < s.nl; i++) {
            if (is_ours(h, s.l[i].path)) {
                fail("domain %s has the temporary overlay %s below its active layer %s "
                     "(a snapshot was taken on it): merge it by hand (virsh blockcommit)",
                     h->deploy, s.l[i].path, s.l[0].path);
                goto out;
            }
        }
        if (s.job && !top_ours) {
            fail("disk %s of domain %s has a block job (%s) that qcow2c's hot save did not "
                 "start: let it finish or abort it (virsh blockjob %s %s --abort)",
                 h->target, h->deploy, s.job, h->deploy, h->target);
            goto out;
        }
        if (!top_ours && restore) {
            /* merged by an action that died before it could relink */
            log_info("%s points to %s, which the domain no longer writes: back to %s",
                     h->c->vp.path, s.link, restore);
            if (relink(h, restore) < 0)
                goto out;
            free(s.link);
            s.link = TAKE_PTR(restore);
        }
        if (!top_ours)
            break;
        if (round == MERGE_ROUNDS) {
            fail("domain %s still writes the temporary overlay %s: %s", h->deploy, s.l[0].path,
                 why ? why : "it could not be merged back");
            goto out;
        }
        if (s.nl < 2) {
            fail("the temporary overlay %s of domain %s has no backing file", s.l[0].path,
                 h->deploy);
            goto out;
        }
        free(why);
        why = NULL;
        if (s.job && s.ready) {
            const char *pivot[] = { "--pivot", NULL };

            log_info("pivoting the finished merge of %s (block job %s)", s.l[0].path, s.job);
            virsh_then_relink(h, "blockjob", VIRSH_QUICK, pivot, restore, &why);
        } else if (s.job) {
            const char *abort_job[] = { "--abort", NULL };

            log_info("aborting the unfinished block job %s on %s: the merge starts again", s.job,
                     s.l[0].path);
            virsh_disk(h, "blockjob", VIRSH_QUICK, abort_job, &why);
        } else {
            commit(h, &s, restore, &why);
        }
        if (why)
            log_warn("%s", why);
        state_release(&s);
    }
    rc = remove_leftovers(h, &s);
    if (rc == 0 && final) {
        /* what the domain runs on now (the hotsave files are gone) */
        strvec_clear(&s.leftovers);
        *final = s;
        return 0;
    }
out:
    state_release(&s);
    return rc;
}

/* ---- the instant ---- */

/*
 * The instant, on the host: $1 virsh, $2 URI, $3 domain, $4 agent limit,
 * $5 snapshot limit, $6 yes: no snapshot without a freeze, $7 the
 * snapshot directory (made first), $8 disk.N and $9 its target once the
 * snapshot is taken ("": left alone), $10 the domain and $11 the snapshot's
 * arguments in virsh's own command syntax; then the same arguments as argv.
 * One virsh session is opened before the freeze (a coprocess on two FIFOs,
 * each command followed by "echo @@N@@" to find its end), so that the
 * snapshot and the thaw follow the freeze without a process start or a
 * connection in between: the guest is frozen for the snapshot only. Each
 * answer is awaited for its limit; a session that does not answer is
 * stopped and single virsh processes take over. The guest is thawed after
 * ANY freeze attempt but a refused one (an agent that timed out may freeze
 * later), also when the script is killed. All on the host, so that a thaw
 * does not depend on the front-end's connection. Prints, NUL-separated:
 * the freeze (frozen, none: no agent, failed) and its message, the
 * snapshot's status ("-" not tried, 124 no answer) and message, UTC when it
 * answered (the instant), the thaw (ok, none, failed) and its message,
 * "F S": the seconds from the freeze to the thaw, and those of the
 * snapshot alone, how the snapshot was asked for (session, processes), and
 * whether disk.N was pointed to the overlay (ok, failed, -).
 */
static const char instant_script[] =
    "v=$1 u=$2 d=$3 al=$4 sl=$5 req=$6 dir=$7 l=$8 nt=$9 qd=${10} qs=${11}\n"
    "shift 11\n"
    "trap '' PIPE\n"
    "vs() { vl=$1; shift; timeout -k 5 \"$vl\" \"$v\" -q -c \"$u\" \"$@\" 2>&1 </dev/null; }\n"
    "line() { printf '%s' \"$1\" | tr '\\n\\0' '  '; }\n"
    "now() { date +%s.%N; }\n"
    "utc() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }\n"
    "st=failed fm= sr=- sm= t1= th=none tm= a=0 b=0 s0=0 s1=0 vp= n=0 m=0 r= via=session\n"
    "t=$(mktemp -d) || exit 1\n"
    "stop() {\n"
    "  [ -n \"$vp\" ] || return 0\n"
    "  exec 3>&- 4<&-\n"
    "  kill \"$vp\" 2>/dev/null; wait \"$vp\" 2>/dev/null; vp=\n"
    "}\n"
    /* sends a command line and its end marker; m: the marker's number */
    "ask() {\n"
    "  [ -n \"$vp\" ] || return 1\n"
    "  n=$((n + 1)); m=$n\n"
    "  printf '%s\\necho @@%s@@\\n' \"$1\" \"$n\" >&3 2>/dev/null || { stop; return 1; }\n"
    "}\n"
    /* 0 answered, 1 answered with error lines (r), 2 no answer: stopped */
    "await() {\n"
    "  r=$(timeout -k 2 \"$1\" sh -c 'e=; while IFS= read -r l; do case $l in \"$1\") "
    "printf %s \"$e\"; exit 0 ;; error:*) e=\"$e${e:+ }$l\" ;; esac; done; exit 3' "
    "_ \"@@$2@@\" <&4)\n"
    "  case $? in 0) [ -z \"$r\" ] && return 0; return 1 ;; esac\n"
    "  stop; return 2\n"
    "}\n"
    /* with new processes: the session may be gone or stuck */
    "thaw() {\n"
    "  [ \"$st\" != none ] && [ \"$th\" != ok ] || return 0\n"
    "  i=0\n"
    "  while :; do\n"
    "    tm=$(vs \"$al\" domfsthaw \"$d\") && { th=ok; return 0; }\n"
    "    i=$((i + 1)); [ $i -lt 3 ] || break; sleep 1\n"
    "  done\n"
    "  th=failed\n"
    "}\n"
    "trap 'thaw; stop; rm -rf -- \"$t\"; exit 1' HUP INT TERM\n"
    "if mkfifo \"$t/i\" \"$t/o\"; then\n"
    "  timeout -k 5 $((al * 4 + sl + 30)) \"$v\" -c \"$u\" <\"$t/i\" >\"$t/o\" 2>&1 &\n"
    "  vp=$!\n"
    "  exec 3>\"$t/i\" 4<\"$t/o\"\n"
    "  { ask \"domstate $qd\" && await \"$al\" \"$m\"; } || stop\n"
    "fi\n"
    "mkdir -p -- \"$dir\" || sr=1 sm=\"cannot make the directory $dir\"\n"
    "if [ \"$sr\" = - ]; then\n"
    "  a=$(now)\n"
    "  if ask \"domfsfreeze $qd\"; then await \"$al\" \"$m\"; rc=$? fm=$r\n"
    "  else fm=$(vs \"$al\" domfsfreeze \"$d\"); rc=$?\n"
    "    case $rc in 0) ;; 124 | 137) rc=2 ;; *) rc=1 ;; esac\n"
    "  fi\n"
    "  case $rc in\n"
    "    0) st=frozen ;;\n"
    "    1) case $fm in *'not configured'* | *'not connected'*) st=none ;; esac ;;\n"
    "    *) fm=\"timed out after $al s${fm:+ ($fm)}\" ;;\n"
    "  esac\n"
    "  if [ \"$req\" != yes ] || [ $st = frozen ]; then\n"
    "    s0=$(now)\n"
    "    if ask \"snapshot-create-as $qd $qs\"; then\n"
    "      ms=$m mt=\n"
    "      [ $st = none ] || { ask \"domfsthaw $qd\" && mt=$m; }\n"
    "      await \"$sl\" \"$ms\"; rc=$? sm=$r\n"
    "      s1=$(now); t1=$(utc)\n"
    "      case $rc in 0) sr=0 ;; 1) sr=1 ;;\n"
    "        *) sr=124 sm=\"no answer in $sl s${sm:+ ($sm)}\" ;; esac\n"
    "      if [ -n \"$mt\" ]; then\n"
    "        if [ -n \"$vp\" ] && await \"$al\" \"$mt\"; then th=ok; else tm=$r; fi\n"
    "      fi\n"
    "    else\n"
    "      sm=$(vs \"$sl\" snapshot-create-as \"$d\" \"$@\"); sr=$? via=processes\n"
    "      s1=$(now); t1=$(utc)\n"
    "    fi\n"
    "  fi\n"
    "  thaw\n"
    "  b=$(now)\n"
    "fi\n"
    "stop; rm -rf -- \"$t\"\n"
    "lk=-\n"
    "if [ \"$sr\" = 0 ] && [ -n \"$nt\" ]; then\n"
    "  t=$nt\n"
    "  if " RELINK_SH "; then lk=ok; else lk=failed; fi\n"
    "fi\n"
    "printf '%s\\0' \"$st\" \"$(line \"$fm\")\" \"$sr\" \"$(line \"$sm\")\" \"$t1\" \"$th\" "
    "\"$(line \"$tm\")\" \"$(echo \"$a $b $s0 $s1\" | "
    "awk '{ printf \"%.3f %.3f\", $2 - $1, $4 - $3 }')\" \"$via\" \"$lk\"\n";

/* "vda,snapshot=external,file=PATH,driver=qcow2": virsh splits on commas,
 * a literal one is doubled. */
static char *diskspec(const char *target, const char *file)
{
    struct sbuf s = SBUF_INIT;

    sbuf_addf(&s, "%s,snapshot=external,file=", target);
    for (const char *p = file; *p; p++) {
        if (*p == ',')
            sbuf_addch(&s, ',');
        sbuf_addch(&s, *p);
    }
    sbuf_adds(&s, ",driver=qcow2");
    return sbuf_detach(&s);
}

static bool plain_target(const char *t)
{
    return !str_empty(t) && t[strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789")] == '\0';
}

/* A thaw the host could not confirm, tried once more over a new session. */
static void thaw_again(struct hot *h, const char *why)
{
    struct host *fresh = host_new(host_name(h->c->h));
    struct cmd c = CMD_INIT;
    unsigned al = config_uint("TIMEOUT") < AGENT_LIMIT ? config_uint("TIMEOUT") : AGENT_LIMIT;
    bool ok = false;

    if (fresh) {
        virsh_cmd(&c, al, "domfsthaw");
        strvec_push(&c.args, h->deploy);
        ok = host_run_status(fresh, &c) == 0 && c.status == 0;
        host_free(fresh);
    }
    fail_reset();
    if (ok)
        log_info("domain %s thawed on a second attempt", h->deploy);
    else if (h->freeze == FREEZE_DONE)
        log_error("domain %s may still be frozen: domfsthaw failed: %s; run 'virsh domfsthaw "
                  "%s' on %s",
                  h->deploy, why, h->deploy, host_name(h->c->h));
    else
        log_warn("domain %s: domfsthaw after the failed freeze did not answer: %s", h->deploy, why);
    cmd_release(&c);
}

static int take_instant(struct hot *h, const struct dom_state *s)
{
    unsigned al = config_uint("TIMEOUT") < AGENT_LIMIT ? config_uint("TIMEOUT") : AGENT_LIMIT;
    unsigned sl = config_uint("TIMEOUT");
    bool require = config_bool("HOT_SAVE_REQUIRE_FREEZE");
    _cleanup_free_ char *spec = diskspec(h->target, h->overlay);
    struct strvec args = STRVEC_INIT, r = STRVEC_INIT, snap = STRVEC_INIT;
    struct sbuf out = SBUF_INIT, qd = SBUF_INIT, qs = SBUF_INIT;
    int rc;

    strvec_pushl(&snap, "--name", "qcow2c-hotsave", "--disk-only", "--atomic", "--no-metadata",
                 "--diskspec", spec, NULL);
    /* every other disk of the domain stays as it is */
    for (size_t i = 0; i < s->targets.nr; i++) {
        if (streq(s->targets.v[i], h->target))
            continue;
        if (!plain_target(s->targets.v[i])) {
            strvec_clear(&snap);
            return fail("domain %s has a disk named '%s', which virsh cannot be given", h->deploy,
                        s->targets.v[i]);
        }
        strvec_push(&snap, "--diskspec");
        strvec_pushf(&snap, "%s,snapshot=no", s->targets.v[i]);
    }
    /* virsh's own parser takes words quoted as a POSIX shell does (quote.h);
     * its session reads lines */
    if (strpbrk(h->overlay, "\n\r")) {
        strvec_clear(&snap);
        return fail("the path %s cannot be given to virsh", h->overlay);
    }
    sq_quote(&qd, h->deploy);
    sq_quote_argv(&qs, snap.v);
    strvec_pushl(&args, config_str("VIRSH"), config_str("LIBVIRT_URI"), h->deploy, NULL);
    strvec_pushf(&args, "%u", al);
    strvec_pushf(&args, "%u", sl);
    strvec_pushl(&args, require ? "yes" : "no", h->snap_dir, h->c->vp.path,
                 h->relink ? h->relink : "", qd.buf, qs.buf, NULL);
    strvec_pushv(&args, snap.v);
    strvec_clear(&snap);
    sbuf_release(&qd);
    sbuf_release(&qs);
    log_info("hot save of disk %s of domain %s: freeze, overlay %s, thaw", h->target, h->deploy,
             h->overlay);
    rc = xfer_shv(h->c->h, "freezing and snapshotting the domain", al * 5 + sl + 60, &out,
                  instant_script, &args);
    strvec_clear(&args);
    xfer_split0(&out, &r);
    sbuf_release(&out);
    if (rc == 0 && r.nr != 10)
        rc = fail("unexpected answer from %s while taking the snapshot", host_name(h->c->h));
    if (rc < 0)
        goto out;
    h->freeze = streq(r.v[0], "frozen") ? FREEZE_DONE
                : streq(r.v[0], "none") ? FREEZE_NO_AGENT
                                        : FREEZE_FAILED;
    h->freeze_why = xstrdup(r.v[1]);
    if (h->freeze != FREEZE_DONE)
        log_info("cannot freeze the file systems of %s (%s)%s", h->deploy, r.v[1],
                 streq(r.v[2], "-") ? "" : ": the copy is crash-consistent");
    if (streq(r.v[5], "failed"))
        thaw_again(h, r.v[6]);
    if (streq(r.v[9], "failed"))
        log_warn("%s could not be pointed to the temporary overlay %s: the domain's writes "
                 "during the copy are not under disk.%d until it is merged back",
                 h->c->vp.path, h->overlay, h->c->vp.disk_id);
    if (streq(r.v[2], "-")) {
        rc = fail("cannot freeze the file systems of domain %s (%s), and "
                  "HOT_SAVE_REQUIRE_FREEZE=yes refuses a crash-consistent copy",
                  h->deploy, r.v[1]);
    } else if (!streq(r.v[2], "0")) {
        h->unanswered = streq(r.v[2], "124");
        rc = fail("virsh snapshot-create-as of disk %s of domain %s failed: %s", h->target,
                  h->deploy, str_empty(r.v[3]) ? r.v[2] : r.v[3]);
    } else {
        const char *snap_s = strchr(r.v[7], ' ');

        h->instant = xstrdup(r.v[4]);
        snap_s = snap_s ? snap_s + 1 : "?";
        if (h->freeze == FREEZE_DONE)
            log_info("the copy holds the state of %s: file systems frozen for %.*s s (the "
                     "snapshot took %s s; virsh %s)",
                     r.v[4], (int)strcspn(r.v[7], " "), r.v[7], snap_s, r.v[8]);
        else
            log_info("the copy holds the state of %s, crash-consistent (the snapshot took %s s; "
                     "virsh %s)",
                     r.v[4], snap_s, r.v[8]);
    }
out:
    strvec_clear(&r);
    return rc;
}

/* ---- the image in oned ---- */

static bool same_source(const char *source, const char *target)
{
    _cleanup_free_ char *norm = NULL;

    if (str_empty(source))
        return false;
    norm = path_normalize(source);
    return streq(norm, target);
}

/* The LOCKED image NEW_SOURCE belongs to: DISK/HOTPLUG_SAVE_AS when it
 * names it (oned sets it before the transfer), otherwise the image pool. */
static int find_image(struct hot *h)
{
    struct cpds *c = h->c;
    _cleanup_free_ char *sid = NULL, *doc = NULL;
    struct xml *x = NULL;
    int id, n, best = -1, best_rank = -1;

    if (tm_disk_attr(c->t, c->vp.disk_id, "HOTPLUG_SAVE_AS", &sid) < 0)
        return -1;
    if (!str_empty(sid) && parse_id(sid, &id) == 0) {
        if (one_image_info(c->t->one, id, &doc) == 0 &&
            (x = xml_doc_parse(doc, strlen(doc), "IMAGE"))) {
            _cleanup_free_ char *src = xml_get(x, "/IMAGE/SOURCE");

            xml_free(x);
            if (same_source(src, c->target)) {
                h->image_id = id;
                return 0;
            }
        }
        fail_reset();
        free(doc);
        doc = NULL;
    }
    if (one_imagepool_info(c->t->one, -2, -1, -1, &doc) < 0)
        return fail_context("cannot find the image of %s in oned", c->target);
    x = xml_doc_parse(doc, strlen(doc), "IMAGE_POOL");
    if (!x)
        return fail_context("oned's image pool");
    n = xml_count(x, "/IMAGE_POOL/IMAGE");
    for (int i = 1; i <= n; i++) {
        _cleanup_free_ char *src = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/SOURCE", i);
        _cleanup_free_ char *iid = NULL, *state = NULL, *vm = NULL;
        int rank = 0, v;

        if (!same_source(src, c->target))
            continue;
        iid = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/ID", i);
        state = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/STATE", i);
        vm = xml_get(x, "/IMAGE_POOL/IMAGE[%d]/TEMPLATE/SAVED_VM_ID", i);
        if (parse_id(iid, &id) < 0)
            continue;
        rank = (streq(state, "4") ? 2 : 0) + (parse_id(vm, &v) == 0 && v == c->t->vmid);
        if (rank > best_rank) {
            best = id;
            best_rank = rank;
        }
    }
    xml_free(x);
    if (best < 0)
        return fail("oned has no image whose SOURCE is %s (was it deleted?)", c->target);
    h->image_id = best;
    return 0;
}

/* What was achieved, into the new image's template. */
static int record(struct hot *h)
{
    struct cpds *c = h->c;
    struct xml_tmpl t;
    _cleanup_free_ char *doc = NULL;
    bool frozen = h->freeze == FREEZE_DONE;
    int rc;

    xml_tmpl_begin(&t, "TEMPLATE");
    xml_tmpl_add(&t, "HOT_SAVE_CONSISTENCY", frozen ? "filesystem-frozen" : "crash-consistent");
    xml_tmpl_add(&t, "HOT_SAVE_INSTANT", h->instant);
    xml_tmpl_addf(&t, "HOT_SAVE_VM_ID", "%d", c->t->vmid);
    xml_tmpl_addf(&t, "HOT_SAVE_DISK_ID", "%d", c->vp.disk_id);
    xml_tmpl_add(&t, "HOT_SAVE_TARGET", h->target);
    if (frozen)
        xml_tmpl_add(&t, "HOT_SAVE_NOTE", "file systems frozen by the guest agent");
    else if (h->freeze == FREEZE_NO_AGENT)
        xml_tmpl_addf(&t, "HOT_SAVE_NOTE",
                      "no guest agent (%s): the state of the disk at "
                      "one instant, as after a power cut",
                      h->freeze_why);
    else
        xml_tmpl_addf(&t, "HOT_SAVE_NOTE",
                      "the freeze failed (%s): the state of the disk at "
                      "one instant, as after a power cut",
                      h->freeze_why);
    doc = xml_tmpl_end(&t);
    rc = one_image_update(c->t->one, h->image_id, doc, 1);
    if (rc < 0)
        return fail_context("cannot record the hot save in image %d", h->image_id);
    log_info("image %d: HOT_SAVE_CONSISTENCY=%s HOT_SAVE_INSTANT=%s", h->image_id,
             frozen ? "filesystem-frozen" : "crash-consistent", h->instant);
    return 0;
}

/* ---- the copy ---- */

/* The copy has the frozen state's size (qemu-img compare takes a longer
 * file whose tail is zero for an equal one), and the SIZE oned gives the
 * new image (the disk's, in MB, never measured again) is checked against
 * it. */
static int check_size(struct hot *h, const struct image_info *src)
{
    _cleanup_free_ char *size = NULL;
    struct image_info ii;
    uint64_t mb;
    int rc = 0;

    if (host_probe_image(h->c->h, h->c->part, &ii) < 0)
        return -1;
    if (!src->size_known || !ii.size_known || ii.virtual_size != src->virtual_size)
        rc = fail("the copy of %s has %llu bytes, its source %llu", h->top,
                  (unsigned long long)ii.virtual_size, (unsigned long long)src->virtual_size);
    if (rc == 0 && tm_disk_attr(h->c->t, h->c->vp.disk_id, "SIZE", &size) == 0 &&
        parse_u64(str_empty(size) ? "-" : size, UINT64_MAX >> 20, &mb) == 0 &&
        mb != (ii.virtual_size + (1u << 20) - 1) >> 20)
        log_warn("oned gives the new image the disk's SIZE, %llu MB; the copy has %llu bytes",
                 (unsigned long long)mb, (unsigned long long)ii.virtual_size);
    image_info_release(&ii);
    return rc;
}

static int copy(struct hot *h)
{
    struct cpds *c = h->c;
    struct image_info src;
    int rc;

    if (host_probe_image(c->h, h->top, &src) < 0)
        return -1;
    if (str_empty(c->format)) {
        free(c->format);
        c->format = xstrdup(src.format);
        log_info("disk %d has no FORMAT in oned: writing %s, the format of %s", c->vp.disk_id,
                 c->format, h->top);
    }
    free(c->src);
    c->src = xstrdup(h->top);
    c->running = true;
    /* always verified: the frozen state is there to compare with only until
     * the overlay is merged back */
    rc = cpds_write_part(c, true);
    if (rc == 0 && check_size(h, &src) < 0) {
        xfer_drop(c->h, c->part);
        rc = -1;
    }
    image_info_release(&src);
    return rc;
}

/* ---- the whole ---- */

static int read_vm(struct hot *h)
{
    struct cpds *c = h->c;
    _cleanup_free_ char *vm_mad = NULL, *clone = NULL, *source = NULL, *chain = NULL;
    const struct xml *vm = tm_vm(c->t);
    int n = c->vp.disk_id;

    if (!vm)
        return -1;
    h->deploy = xml_get(vm, "/VM/DEPLOY_ID");
    vm_mad = xml_get(vm, "/VM/HISTORY_RECORDS/HISTORY[last()]/VM_MAD");
    if (check_deploy_id(h->deploy) < 0 || tm_disk_attr(c->t, n, "TARGET", &h->target) < 0 ||
        tm_disk_attr(c->t, n, "CLONE", &clone) < 0 || tm_disk_attr(c->t, n, "SOURCE", &source) < 0)
        return -1;
    if (!plain_target(h->target))
        return fail("disk %d of VM %d has no usable TARGET ('%s')", n, c->t->vmid,
                    h->target ? h->target : "");
    if (streq(vm_mad, "lxc"))
        return fail("a hot save needs a KVM/QEMU VM, not %s", vm_mad);
    /* where the disk's snapshots live (snapshot.h): the overlay goes there */
    if (!c->t->ssh_mode && !is_yes(clone)) {
        if (str_empty(source))
            return fail("disk %d of VM %d is persistent but has no SOURCE", n, c->t->vmid);
        chain = image_path_on_host(&c->vp, source);
    } else {
        chain = xstrdup(c->vp.path);
    }
    h->snap_dir = xasprintf("%s.snap", chain);
    return 0;
}

/* The overlay's name, unique per attempt (never a file an earlier attempt
 * may still hold): hotsave.K.<pid>.<ms> when disk.N points to snapshot
 * file K, and disk.N then points to it while the domain writes it, so that
 * the writes made during the copy stay under disk.N even when the action
 * dies before the merge (a VM booted again from disk.N finds them); the
 * merge points it back to K. hotsave.x.<pid>.<ms> otherwise (disk.N is
 * not a link into the snapshot directory), disk.N left alone. */
static void plan_overlay(struct hot *h, const struct dom_state *s)
{
    _cleanup_free_ char *abs = s->link ? link_path(h, s->link) : NULL;
    _cleanup_free_ char *dir = abs ? path_dirname(abs) : NULL;
    _cleanup_free_ char *name = NULL;
    int k = -1;

    if (!dir || !streq(dir, h->snap_dir) || parse_id(path_basename(abs), &k) < 0)
        k = -1;
    if (k >= 0)
        name = xasprintf("%s%d.%d.%lld", HOTSAVE_PREFIX, k, (int)getpid(), monotonic_ms());
    else
        name = xasprintf("%sx.%d.%lld", HOTSAVE_PREFIX, (int)getpid(), monotonic_ms());
    h->overlay = path_join(h->snap_dir, name);
    h->relink = k >= 0 ? sibling(s->link, name) : NULL;
}

/* After a failure past the snapshot: the domain back on its disk, the
 * first reason kept. */
static int undo(struct hot *h)
{
    _cleanup_free_ char *why = xstrdup(failed() ? fail_reason() : "the hot save failed");

    fail_reset();
    xfer_drop(h->c->h, h->c->part);
    if (converge(h, NULL) < 0) {
        _cleanup_free_ char *more = xstrdup(fail_reason());

        fail_reset();
        return fail("%s; and %s (a new save of this disk merges it first)", why, more);
    }
    return fail("%s", why);
}

static int save(struct hot *h)
{
    struct cpds *c = h->c;
    struct dom_state s = { 0 };
    int rc;

    /* an interrupted attempt first: the domain on its own disk, nothing
     * left; then the image (deleted meanwhile: nothing is written). A .part
     * an earlier attempt left is overwritten by the copy. */
    if (converge(h, &s) < 0)
        return -1;
    if (find_image(h) < 0) {
        state_release(&s);
        return -1;
    }
    h->top = xstrdup(s.l[0].path);
    plan_overlay(h, &s);
    if (take_instant(h, &s) < 0) {
        state_release(&s);
        return undo(h);
    }
    state_release(&s);
    if (inspect(h, &s) < 0)
        return undo(h);
    if (s.nl < 2 || !streq(s.l[0].path, h->overlay) || !streq(s.l[1].path, h->top)) {
        fail("after the snapshot domain %s writes %s on %s, not %s on %s", h->deploy, s.l[0].path,
             s.nl > 1 ? s.l[1].path : "nothing", h->overlay, h->top);
        state_release(&s);
        return undo(h);
    }
    state_release(&s);
    if (copy(h) < 0 || record(h) < 0 || xfer_publish(c->h, c->part, c->dst) < 0)
        return undo(h);
    log_info("disk %d of VM %d saved as %s", c->vp.disk_id, c->t->vmid, c->dst);
    rc = converge(h, NULL);
    if (rc < 0)
        return fail_context("disk %d was saved as %s, but the temporary overlay could not be "
                            "merged back (a new save of this disk merges it first)",
                            c->vp.disk_id, c->dst);
    log_info("domain %s writes %s again", h->deploy, h->top);
    return 0;
}

int hotsave(struct cpds *c)
{
    struct hot h = { .c = c, .image_id = -1 };
    int rc;

    rc = read_vm(&h);
    if (rc == 0)
        rc = save(&h);
    hot_release(&h);
    return rc;
}
