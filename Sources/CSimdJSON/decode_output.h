// What both fast paths of json_decode (the scanner, then simdjson On-Demand) decode into,
// and the sample's known fields they share. Private to CSimdJSON.
#ifndef PSG_DECODE_OUTPUT_H
#define PSG_DECODE_OUTPUT_H

#include "simd_decode.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

// The batch's string bytes: appended with one memcpy (vector::insert's range path
// was 3 % of a drain), rolled back by resetting `size`.
struct Bytes {
    std::vector<uint8_t> buffer;   // its size is the capacity; `size` bytes are used
    size_t size = 0;
    void append(std::string_view s) {
        if (size + s.size() > buffer.size()) buffer.resize(std::max(size + s.size(), 2 * buffer.size()));
        if (!s.empty()) std::memcpy(buffer.data() + size, s.data(), s.size());
        size += s.size();
    }
    const uint8_t *data() const { return buffer.data(); }
};

// A batch's samples as the C side builds them; spans index `bytes` and `numbers`.
struct DecodeOutput {
    Bytes bytes;
    std::vector<double> numbers;
    std::vector<psg_simd_label> labels;
    std::vector<psg_simd_record> records;
};

// The known fields, as bits (a second occurrence falls back: jansson rejects duplicate keys); 0: another key.
enum Field : unsigned { TYPE = 1, NAME = 2, VALUE = 4, LABELS = 8, HELP = 16, BUCKETS = 32, QUANTILES = 64, EPSILONS = 128, COUNTS = 256 };

inline unsigned field_of(std::string_view k) {
    switch (k.size()) {
    case 4: if (k == "type") return TYPE; if (k == "name") return NAME; if (k == "help") return HELP; break;
    case 5: if (k == "value") return VALUE; break;
    case 6: if (k == "labels") return LABELS; if (k == "counts") return COUNTS; break;
    case 7: if (k == "buckets") return BUCKETS; break;
    case 8: if (k == "epsilons") return EPSILONS; break;
    case 9: if (k == "quantiles") return QUANTILES; break;
    }
    return 0;
}

// Bucket counts' total, added left to right as the jansson path adds them (the same double).
inline double sum_of(const double *v, uint32_t n) {
    double sum = 0;
    for (uint32_t k = 0; k < n; k++) sum += v[k];
    return sum;
}

// Type codes (MetricType's raw values); 4: another spelling ("Counter"), which the
// document falls back for (jansson matches case-insensitively).
inline uint32_t type_code(std::string_view t) {
    if (t == "counter") return 0;
    if (t == "gauge") return 1;
    if (t == "histogram") return 2;
    if (t == "summary") return 3;
    return 4;
}

// Byte equality of short strings (label names) inline: `std::memcmp` with a length
// known only at run time is a call into libc.
inline bool same_bytes(const char *a, const char *b, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        std::memcpy(&x, a + i, 8);
        std::memcpy(&y, b + i, 8);
        if (x != y) return false;
    }
    for (; i < n; i++) if (a[i] != b[i]) return false;
    return true;
}

// True when a label named `name` is among out.labels[first...] (jansson refuses the document).
inline bool repeats_label(const DecodeOutput &out, size_t first, std::string_view name) {
    for (size_t i = first; i < out.labels.size(); i++) {
        const psg_simd_label &o = out.labels[i];
        const char *other = reinterpret_cast<const char *>(out.bytes.data()) + o.name_start;
        if (o.name_count == name.size() && same_bytes(other, name.data(), name.size())) return true;
    }
    return false;
}

// The scanner (scan_decode.cpp): one document of the common shape into `out`, or false —
// then `out` may hold part of it, and the caller rolls it back and tries On-Demand.
bool scan_document(DecodeOutput &out, const uint8_t *data, size_t size, const psg_simd_limits &limits);

#endif
