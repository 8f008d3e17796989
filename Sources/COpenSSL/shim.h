#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>

/* Function-like macros of OpenSSL 3.0, which Swift does not import. */
static inline long psg_SSL_set_tlsext_host_name(SSL *s, const char *name) {
    return SSL_set_tlsext_host_name(s, name);
}
static inline long psg_SSL_CTX_set_min_proto_version(SSL_CTX *c, int v) {
    return SSL_CTX_set_min_proto_version(c, v);
}
static inline long psg_SSL_CTX_set_max_proto_version(SSL_CTX *c, int v) {
    return SSL_CTX_set_max_proto_version(c, v);
}
static inline long psg_SSL_CTX_set1_groups_list(SSL_CTX *c, const char *list) {
    return SSL_CTX_set1_groups_list(c, list);
}
/* Accepts any client certificate (client_auth_type RequestClientCert and
 * RequireAnyClientCert: asked for, not verified). */
static inline int psg_accept_any_certificate(int ok, X509_STORE_CTX *ctx) {
    (void)ok; (void)ctx;
    return 1;
}
static inline void psg_SSL_CTX_verify_without_chain_check(SSL_CTX *c, int mode) {
    SSL_CTX_set_verify(c, mode, psg_accept_any_certificate);
}
static inline void psg_SSL_CTX_prefer_server_ciphers(SSL_CTX *c) {
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
}
