/*
 * crypto.h - RSA public-key encryption, as monitord's clients seal their
 * messages (OpenSSL; crypto.c also holds the digests of stream.h).
 */
#ifndef QCOW2C_CRYPTO_H
#define QCOW2C_CRYPTO_H

#include <stddef.h>

#include "sbuf.h"

struct pubkey;

/* An RSA public key from PEM text (PKCS#1 "RSA PUBLIC KEY" or SPKI
 * "PUBLIC KEY"); NULL with fail() set when it is neither. */
struct pubkey *pubkey_from_pem(const char *pem, size_t len);
void pubkey_free(struct pubkey *k);

/* Appends to `out` the encryption of `in`, block by block (key size - 11
 * bytes each, PKCS#1 v1.5 padding), ciphertexts concatenated: what Ruby's
 * OpenSSL::PKey::RSA#public_encrypt gives block by block in monitord's
 * client. */
int pubkey_encrypt(const struct pubkey *k, const void *in, size_t len, struct sbuf *out);

#endif
