/*
 * log.h - what an action says to oned, and how it fails.
 *
 * oned's driver reads an action's stderr line by line (protocol §1.5):
 *   - "ERROR: ...", "WARN: ...", "INFO: ...", "DEBUG: ..." become log entries;
 *     when a number follows the colon it is taken as the VM id and the line
 *     lands in that VM's log, otherwise in oned.log;
 *   - every other line is glued, without separator, into the failure reason
 *     shown to the user.
 * So: log lines always carry their prefix (and the VM id when there is one),
 * and a failing action prints exactly one plain line, its reason.
 *
 * Library code never prints the reason itself. It calls fail(), which records
 * the first reason and returns -1; callers propagate -1; the action's main
 * prints the reason once (report_failure()). A second fail() before that is
 * logged as an ERROR line so that nothing is lost, without adding plain lines.
 */
#ifndef QCOW2C_LOG_H
#define QCOW2C_LOG_H

#include "util.h"

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* Names the action in every line; vmid < 0 when no VM is concerned. */
void log_setup(const char *action, int vmid);
void log_set_vmid(int vmid);
void log_enable_debug(bool on);
bool log_debug_enabled(void);

void one_log(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_error(...) one_log(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) one_log(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) one_log(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                  \
    do {                                                                                \
        if (log_debug_enabled())                                                        \
            one_log(LOG_LEVEL_DEBUG, __VA_ARGS__);                                      \
    } while (0)

/* Records `fmt` as the failure reason (if none yet) and returns -1. */
int fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Same, with ": <strerror(errno)>" appended. */
int fail_errno(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Puts "<context>: " in front of the recorded reason. Returns -1. */
int fail_context(const char *fmt, ...) PRINTF_LIKE(1, 2);
bool failed(void);
const char *fail_reason(void);
void fail_reset(void);

/* Prints the reason as the one plain stderr line and returns exit status 1. */
int report_failure(void);
/* fail() + report_failure() + exit(1). For the impossible, and for OOM. */
NORETURN void die(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
