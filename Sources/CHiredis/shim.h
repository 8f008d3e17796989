#include <hiredis/hiredis.h>

/* PopReplies (Sources/Sources/RedisList) replaces the reader's reply-object
 * functions and returns a marker pointer instead of objects; that relies on how
 * hiredis 0.14's reader uses (and never dereferences) them. Another version must
 * be checked before it is built against. */
_Static_assert(HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14,
               "PopReplies is written against hiredis 0.14's reader: check it before building with another hiredis");
