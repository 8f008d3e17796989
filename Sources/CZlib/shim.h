#include <zlib.h>

/* deflateInit2 is a macro over deflateInit2_; wrap it so Swift can call it. */
static inline int cz_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
