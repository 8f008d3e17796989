// The fast paths of json_decode: a scanner for the common shape (scan_decode.cpp), then
// simdjson's On-Demand API for what the scanner does not take. A C ABI.
//
// Together they decode only what they can decode exactly as the jansson path would: a
// document whose every sample is well-formed, within the limits, and holds only
// the known fields (type, name, value, labels, help, buckets, counts, quantiles,
// epsilons) with their common JSON types (`counts` on histograms only). Anything else — invalid JSON, a drop of any kind,
// an unknown field, an exemplar, a null, a number or boolean label value, a
// numeric type, another spelling of a type, duplicate keys, a NUL in a string —
// falls back: the caller decodes that document with jansson. So a fallback is never
// a drop.
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
    uint32_t type_code;   // 0 counter, 1 gauge, 2 histogram, 3 summary (other spellings fall back)
    uint32_t name_start, name_count, help_start, help_count;
    uint32_t label_start, label_count;
    uint32_t buckets_start, buckets_count, quantiles_start, quantiles_count, epsilons_start, epsilons_count;
    uint32_t counts_start, counts_count;   // bucket counts, their total first (BinnedHistogram's layout); 0: none
} psg_simd_record;

typedef struct { uint32_t name_start, name_count, value_start, value_count; } psg_simd_label;

// What a batch decoded to (valid until the next call on the parser).
typedef struct {
    const uint8_t *bytes; size_t bytes_count;
    const double *numbers; size_t numbers_count;
    const psg_simd_label *labels; size_t labels_count;
    const psg_simd_record *records; size_t records_count;
} psg_simd_output;

psg_simd_parser *psg_simd_parser_new(void);
void psg_simd_parser_free(psg_simd_parser *);
// Bytes the parser's reused buffers hold: kept from batch to batch, given back once 32
// batches in a row were much smaller than them.
size_t psg_simd_parser_held_bytes(const psg_simd_parser *);
// Whether the scanner goes first (the default); off, every document goes to On-Demand —
// for the tests that hold each path to jansson on its own.
void psg_simd_parser_use_scanner(psg_simd_parser *, int on);
// Documents the scanner decoded since the parser was made (for tests).
size_t psg_simd_parser_scanned(const psg_simd_parser *);

// A whole batch in one call: document i is data[ends[i-1]..<ends[i]] (ends[-1] = 0),
// `size` bytes in all, each parsed in place (the next document is the padding; the
// last one is copied). Every document decodes into the parser's buffers, in order,
// or — larger than `max_payload`, or what psg_simd_decode would hand back — leaves
// them as they were: record_ends[i] is then UINT32_MAX, else the end of document i's
// records. Returns the number of documents decoded. `out` stays valid until the
// next call on the parser.
size_t psg_simd_decode_batch(psg_simd_parser *, const uint8_t *data, size_t size, const size_t *ends, size_t count, size_t max_payload,
                             const psg_simd_limits *limits, uint32_t *record_ends, psg_simd_output *out);

#ifdef __cplusplus
}
#endif
#endif
