#include <zlib.h>

/* deflateInit2 is a macro over deflateInit2_; wrap it so Swift can call it. */
static inline int cz_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/* inflateInit2 is a macro too; 15 + 32: a gzip or zlib header, detected. */
static inline int cz_inflate_init_auto(z_streamp strm) {
    return inflateInit2(strm, 15 + 32);
}
