/*
 * banned.h - libc functions this project must not call.
 *
 * Included last by util.h, after every system header, so that a call to one of
 * these names expands to an undeclared identifier and the build fails. The
 * replacements: sbuf_addf()/xasprintf() for formatting, parse_*() in num.h for
 * numbers, the run-command API in run.h instead of a shell.
 */
#ifndef QCOW2C_BANNED_H
#define QCOW2C_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_qcow2c

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef atoll
#define atoll(x) BANNED(atoll)
#undef system
#define system(x) BANNED(system)
#undef popen
#define popen(x, y) BANNED(popen)
#undef tmpnam
#define tmpnam(x) BANNED(tmpnam)
#undef mktemp
#define mktemp(x) BANNED(mktemp)

#endif
