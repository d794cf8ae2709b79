/*
 * config.h - the driver's own configuration file, qcow2c.conf.
 *
 * TM actions run by oned's transfer driver see tmrc, those run by the VMM
 * driver see vmm_execrc instead (protocol §1.1, trap 27), so qcow2c reads
 * nothing from its environment except QCOW2C_CONF (the file to use). The file
 * is found, in order, at:
 *   - $QCOW2C_CONF;
 *   - <dir of argv[0]>/../../etc/qcow2c/qcow2c.conf, i.e.
 *     /var/lib/one/remotes/etc/qcow2c/qcow2c.conf for an installed action;
 * and a missing file means every default. Lines are KEY=value or KEY="value"
 * (\" and \\ escapes), '#' starts a comment. Every key, its default and its
 * meaning is in the table in config.c, which `qcow2c-tm --config` prints.
 */
#ifndef QCOW2C_CONFIG_H
#define QCOW2C_CONFIG_H

#include "strvec.h"

/* Loads the file for a program started as `argv0`. Returns 0, or -1 with the
 * reason recorded (unreadable file, syntax error, unknown key, bad value). */
int config_load(const char *argv0);
/* Loads a given file (tests). NULL = defaults only. */
int config_load_file(const char *path);

/* Typed access by key name. A key missing from the table is a programming
 * error and dies. */
const char *config_str(const char *key);
unsigned config_uint(const char *key);
bool config_bool(const char *key);
/* Splits a list-valued key on blanks into `out`. */
void config_words(const char *key, struct strvec *out);

/* The file that was read, or NULL when none was found. */
const char *config_path(void);
/* Prints "KEY=value  # meaning" for every key (effective values). */
void config_dump(FILE *f);

#endif
