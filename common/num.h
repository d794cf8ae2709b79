/*
 * num.h - strict number parsing.
 *
 * The whole string must be a decimal number in range: no sign where none is
 * allowed, no leading blanks, no trailing garbage, no octal or hex. VM ids,
 * datastore ids and sizes come from argv and XML written by oned, and a
 * hostile or truncated value must be refused, never read as 0.
 */
#ifndef QCOW2C_NUM_H
#define QCOW2C_NUM_H

#include "util.h"

/* 0 <= value <= max. Returns 0, or -1 with errno EINVAL/ERANGE. */
int parse_u64(const char *s, uint64_t max, uint64_t *out) WARN_UNUSED;
/* min <= value <= max, an optional leading '-'. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) WARN_UNUSED;

/* An OpenNebula object id: 0..INT_MAX. */
int parse_id(const char *s, int *out) WARN_UNUSED;
/* A snapshot id as oned writes it: -1 (none/current) or 0..INT_MAX. */
int parse_snap_id(const char *s, int *out) WARN_UNUSED;

#endif
