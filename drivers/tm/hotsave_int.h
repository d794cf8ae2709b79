/*
 * hotsave_int.h - what the parts of the hot save share (hotsave.h tells the
 * whole): the state of the domain as the host reports it (hotsave_dom.c),
 * the instant (hotsave_instant.c: freeze, overlay, thaw in one host
 * script), and the flow that converges, copies and records (hotsave.c).
 */
#ifndef QCOW2C_TM_HOTSAVE_INT_H
#define QCOW2C_TM_HOTSAVE_INT_H

#include "hotsave.h"

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

/* $1 the link, $2 its new target: replaced by rename, directory flushed. */
#define RELINK_SH                                                                          \
    "rm -f -- \"$l.lnk\" && ln -s -- \"$t\" \"$l.lnk\" && mv -fT -- \"$l.lnk\" \"$l\" && " \
    "sync -- \"${l%/*}\""

/* Reads the domain's chain, block job and disk.N link, and the hotsave
 * files of the snapshot directory, in one host command. */
int hot_inspect(struct hot *h, struct dom_state *s);
void hot_state_release(struct dom_state *s);

/* A disk target virsh takes as is ("vda"). */
bool hot_plain_target(const char *t);
/* Freeze, overlay, thaw (hotsave_instant.c): h->freeze, h->instant and
 * h->unanswered tell what happened. */
int hot_take_instant(struct hot *h, const struct dom_state *s);

#endif
