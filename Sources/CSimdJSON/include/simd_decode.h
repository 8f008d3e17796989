// The simdjson fast path of json_decode: a C ABI over simdjson's On-Demand API.
//
// It decodes only what it can decode exactly as the jansson path would: a
// document whose every sample is well-formed, within the limits, and holds only
// the known fields (type, name, value, labels, help, buckets, quantiles, epsilons)
// with their common JSON types. Anything else — invalid JSON, a drop of any kind,
// an unknown field, an exemplar, a null, a number or boolean label value, a
// numeric type, duplicate keys, a NUL in a string — returns PSG_FALLBACK and the
// caller decodes that document with jansson. So a fallback is never a drop.
#ifndef PSG_SIMD_DECODE_H
#define PSG_SIMD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct psg_simd_parser psg_simd_parser;

typedef struct {
    size_t max_samples, max_labels, max_name, max_label_name, max_label_value, max_help, max_buckets, max_quantiles;
} psg_simd_limits;

// One sample; spans index the output's bytes/numbers/labels arrays.
typedef struct {
    double value;
    uint32_t type_start, type_count;   // the type's text: the caller matches it (MetricType(bytes:)), or falls back
    uint32_t name_start, name_count, help_start, help_count;
    uint32_t label_start, label_count;
    uint32_t buckets_start, buckets_count, quantiles_start, quantiles_count, epsilons_start, epsilons_count;
} psg_simd_record;

typedef struct { uint32_t name_start, name_count, value_start, value_count; } psg_simd_label;

// What one document decoded to (valid until the next call on the parser).
typedef struct {
    const uint8_t *bytes; size_t bytes_count;
    const double *numbers; size_t numbers_count;
    const psg_simd_label *labels; size_t labels_count;
    const psg_simd_record *records; size_t records_count;
} psg_simd_output;

enum { PSG_OK = 0, PSG_FALLBACK = 1 };

psg_simd_parser *psg_simd_parser_new(void);
void psg_simd_parser_free(psg_simd_parser *);

// Decodes `data` (`size` bytes) into the parser's buffers, described by `out`.
// `readable`: bytes readable from `data` on (the document and what follows it in
// the caller's buffer); with SIMDJSON_PADDING of them beyond `size` simdjson reads
// in place, else the document is copied into a padded buffer first.
int psg_simd_decode(psg_simd_parser *, const uint8_t *data, size_t size, size_t readable, const psg_simd_limits *limits,
                    psg_simd_output *out);

#ifdef __cplusplus
}
#endif
#endif
