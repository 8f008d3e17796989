#include <jansson.h>

/* jansson's type tests are macros, which Swift does not import. */
static inline int cj_typeof(const json_t *v) { return v ? (int)v->type : -1; }
