/* hotsave_instant.c - the instant of a hot save: the guest frozen, the
 * overlay put on, the guest thawed, in one script on the host (hotsave_int.h). */
#include "hotsave_int.h"

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "quote.h"
#include "snapshot.h"
#include "transfer.h"

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

bool hot_plain_target(const char *t)
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

int hot_take_instant(struct hot *h, const struct dom_state *s)
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
        if (!hot_plain_target(s->targets.v[i])) {
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
