/* version.h - the qcow2c release, printed by --version. */
#ifndef QCOW2C_VERSION_H
#define QCOW2C_VERSION_H

#define QCOW2C_VERSION "0.1.0"

#endif
