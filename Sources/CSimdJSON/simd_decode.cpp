// The fast paths of json_decode — the scanner (scan_decode.cpp), then simdjson On-Demand
// for what it does not take; see simd_decode.h for the contract: exact or a fallback to
// jansson, never a drop.
#include "decode_output.h"

#include <simdjson.h>

using namespace simdjson;

struct psg_simd_parser {
    ondemand::parser parser;
    std::vector<uint8_t> padded;
    DecodeOutput out;
    bool scanner = true;              // off only for tests of the On-Demand path on its own
    size_t scanned = 0;               // documents the scanner took, for tests
    unsigned oversized_batches = 0;   // calls in a row whose batch was much smaller than the buffers
};

namespace {

struct Fallback {};

template <typename T> T take(simdjson_result<T> &&r) {
    T v;
    if (std::move(r).get(v)) throw Fallback{};
    return v;
}

// A string without escapes, read in place: its bytes up to the closing quote (false
// at a backslash: then it is unescaped). Stage 1 has checked that every string is closed,
// valid UTF-8 and free of control characters — so of NULs — before any of it is read,
// which makes the raw bytes exactly what unescaping would copy out (`parse_string`,
// the copy, was 6.5 % of a drain, for strings that nearly never hold an escape).
// Eight bytes at a time: reading past the closing quote stays inside the document and
// its SIMDJSON_PADDING bytes.
inline bool unescaped_in_place(const char *raw, std::string_view &out) {
    const char *p = raw;
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (;;) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        // A byte of q or b is zero where w has a quote or a backslash; the lowest flag is exact.
        uint64_t found = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (found) { p += __builtin_ctzll(found) / 8; break; }
        p += 8;
    }
    if (*p == '\\') return false;
    out = std::string_view(raw, size_t(p - raw));
    return true;
}

// A string field's unescaped bytes: in place, or simdjson's copy when it holds an escape
// (NUL falls back: jansson rejects it). Valid while the document is.
std::string_view string_of(ondemand::value v, size_t max) {
    if (take(v.type()) != ondemand::json_type::string) throw Fallback{};
    std::string_view s;
    // Peeked, then consumed either way: a value left unconsumed is skipped by bracket depth
    // alone, and what follows it — `"a":"b":"c"` — would go unchecked.
    if (unescaped_in_place(v.raw_json_token().data() + 1, s)) {
        take(v.get_raw_json_string());
    } else {
        s = take(v.get_string());
        if (std::memchr(s.data(), 0, s.size())) throw Fallback{};   // `\u0000`
    }
    if (s.size() > max) throw Fallback{};
    return s;
}

// A string field appended to the batch's bytes.
void append_string(psg_simd_parser &p, ondemand::value v, size_t max, uint32_t &start, uint32_t &count) {
    std::string_view s = string_of(v, max);
    start = uint32_t(p.out.bytes.size);
    count = uint32_t(s.size());
    p.out.bytes.append(s);
}

std::string_view key_of(ondemand::field &f) {
    std::string_view k;
    if (unescaped_in_place(f.key().raw(), k)) return k;
    k = take(f.unescaped_key());
    if (std::memchr(k.data(), 0, k.size())) throw Fallback{};
    return k;
}

// A JSON number as a double. Long tokens (over 19 characters, where simdjson
// 3.0.1 was seen to misread an 80-digit fraction) go to jansson.
double number(ondemand::value &v) {
    if (take(v.type()) != ondemand::json_type::number) throw Fallback{};
    std::string_view token = v.raw_json_token();
    size_t n = token.size();
    while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\t' || token[n - 1] == '\n' || token[n - 1] == '\r')) n--;
    if (n > 19) throw Fallback{};
    return take(v.get_double());
}

void numbers(psg_simd_parser &p, ondemand::value v, size_t max, uint32_t &start, uint32_t &count) {
    if (take(v.type()) != ondemand::json_type::array) throw Fallback{};
    start = uint32_t(p.out.numbers.size());
    for (auto item : take(v.get_array())) {
        ondemand::value x = take(std::move(item));
        p.out.numbers.push_back(number(x));
        if (p.out.numbers.size() - start > max) throw Fallback{};
    }
    count = uint32_t(p.out.numbers.size() - start);
}

void sample(psg_simd_parser &p, ondemand::object object, const psg_simd_limits &l) {
    psg_simd_record r{};
    unsigned seen = 0;
    for (auto f : object) {
        ondemand::field field = take(std::move(f));
        unsigned which = field_of(key_of(field));
        if (which == 0 || (seen & which)) throw Fallback{};
        seen |= which;
        ondemand::value v = field.value();
        switch (which) {
        case TYPE: r.type_code = type_code(string_of(v, 9)); break;   // not kept: "histogram" is the longest
        case NAME: append_string(p, v, l.max_name, r.name_start, r.name_count); break;
        case VALUE: r.value = number(v); break;
        case HELP: append_string(p, v, l.max_help, r.help_start, r.help_count); break;
        case LABELS: {
            if (take(v.type()) != ondemand::json_type::object) throw Fallback{};
            r.label_start = uint32_t(p.out.labels.size());
            for (auto lf : take(v.get_object())) {
                ondemand::field label = take(std::move(lf));
                std::string_view name = key_of(label);
                if (name.size() > l.max_label_name) throw Fallback{};
                if (repeats_label(p.out, r.label_start, name)) throw Fallback{};
                psg_simd_label out{};
                out.name_start = uint32_t(p.out.bytes.size);
                out.name_count = uint32_t(name.size());
                p.out.bytes.append(name);
                append_string(p, label.value(), l.max_label_value, out.value_start, out.value_count);
                p.out.labels.push_back(out);
                if (p.out.labels.size() - r.label_start > l.max_labels) throw Fallback{};
            }
            r.label_count = uint32_t(p.out.labels.size() - r.label_start);
            break;
        }
        case BUCKETS: numbers(p, v, l.max_buckets, r.buckets_start, r.buckets_count); break;
        case QUANTILES: numbers(p, v, l.max_quantiles, r.quantiles_start, r.quantiles_count); break;
        case EPSILONS: numbers(p, v, l.max_quantiles, r.epsilons_start, r.epsilons_count); break;
        case COUNTS: {
            size_t total = p.out.numbers.size();
            p.out.numbers.push_back(0);
            uint32_t start, count;
            numbers(p, v, l.max_buckets + 1, start, count);
            p.out.numbers[total] = sum_of(p.out.numbers.data() + start, count);
            r.counts_start = uint32_t(total);
            r.counts_count = count + 1;
            break;
        }
        }
    }
    // `counts` on another type is ignored by the jansson path: rare enough to leave to it.
    if ((seen & (TYPE | NAME | VALUE)) != (TYPE | NAME | VALUE) || ((seen & COUNTS) && r.type_code != 2)) throw Fallback{};
    p.out.records.push_back(r);
}

void document(psg_simd_parser &p, const uint8_t *data, size_t size, size_t readable, const psg_simd_limits &l) {
    // simdjson reads up to SIMDJSON_PADDING bytes past the document, whatever they hold; the
    // next element in the caller's arena serves, so only a batch's last element is copied.
    const uint8_t *input = data;
    size_t capacity = readable;
    if (readable < size + SIMDJSON_PADDING) {
        p.padded.resize(size + SIMDJSON_PADDING);
        std::memcpy(p.padded.data(), data, size);
        input = p.padded.data();
        capacity = p.padded.size();
    }
    ondemand::document doc;
    if (p.parser.iterate(input, size, capacity).get(doc)) throw Fallback{};
    switch (take(doc.type())) {
    case ondemand::json_type::object:
        sample(p, take(doc.get_object()), l);
        break;
    case ondemand::json_type::array: {
        size_t first = p.out.records.size();   // the batch call's buffers hold earlier documents
        for (auto item : take(doc.get_array())) {
            ondemand::value v = take(std::move(item));
            if (take(v.type()) != ondemand::json_type::object) throw Fallback{};
            sample(p, take(v.get_object()), l);
            if (p.out.records.size() - first > l.max_samples) throw Fallback{};
        }
        break;
    }
    default:
        throw Fallback{};
    }
    const char *rest = nullptr;
    if (!doc.current_location().get(rest)) throw Fallback{};   // a location left: trailing content
}

}  // namespace

extern "C" psg_simd_parser *psg_simd_parser_new(void) {
    try { return new psg_simd_parser(); } catch (...) { return nullptr; }
}

extern "C" void psg_simd_parser_free(psg_simd_parser *p) { delete p; }

extern "C" void psg_simd_parser_use_scanner(psg_simd_parser *p, int on) { p->scanner = on != 0; }

extern "C" size_t psg_simd_parser_scanned(const psg_simd_parser *p) { return p->scanned; }

extern "C" size_t psg_simd_parser_held_bytes(const psg_simd_parser *p) {
    return p->out.bytes.buffer.size() + p->out.numbers.capacity() * sizeof(double) + p->out.labels.capacity() * sizeof(psg_simd_label)
        + p->out.records.capacity() * sizeof(psg_simd_record);
}

extern "C" size_t psg_simd_decode_batch(psg_simd_parser *p, const uint8_t *data, size_t size, const size_t *ends, size_t count,
                                        size_t max_payload, const psg_simd_limits *limits, uint32_t *record_ends, psg_simd_output *out) {
    // An earlier, much larger batch: its memory is given back once 32 batches in a row were much smaller.
    // Not at the first: a backlog drain mixes full and small batches, and regrowing the four vectors
    // mapped and faulted in 50 MB per 2M samples of arrays.
    bool oversized = p->out.bytes.buffer.size() > 2 * size + (size_t(1) << 20);
    p->oversized_batches = oversized ? p->oversized_batches + 1 : 0;
    if (p->oversized_batches >= 32) {
        p->oversized_batches = 0;
        std::vector<uint8_t>().swap(p->out.bytes.buffer);
        std::vector<double>().swap(p->out.numbers);
        std::vector<psg_simd_label>().swap(p->out.labels);
        std::vector<psg_simd_record>().swap(p->out.records);
    }
    p->out.bytes.size = 0;
    p->out.numbers.clear();
    p->out.labels.clear();
    p->out.records.clear();
    size_t start = 0, decoded = 0;
    for (size_t i = 0; i < count; i++) {
        size_t end = ends[i];
        size_t marks[4] = {p->out.bytes.size, p->out.numbers.size(), p->out.labels.size(), p->out.records.size()};
        auto roll_back = [&] {
            p->out.bytes.size = marks[0];
            p->out.numbers.resize(marks[1]);
            p->out.labels.resize(marks[2]);
            p->out.records.resize(marks[3]);
        };
        bool ok = end - start <= max_payload;
        // The scanner first; what it does not take, On-Demand from the same marks.
        if (ok && p->scanner && scan_document(p->out, data + start, end - start, *limits)) {
            p->scanned++;
        } else if (ok) {
            roll_back();
            try {
                document(*p, data + start, end - start, size - start, *limits);
                for (size_t r = marks[3]; r < p->out.records.size() && ok; r++) ok = p->out.records[r].type_code < 4;
            } catch (...) {
                ok = false;
            }
        }
        if (ok) {
            record_ends[i] = uint32_t(p->out.records.size());
            decoded++;
        } else {
            roll_back();
            record_ends[i] = UINT32_MAX;
        }
        start = end;
    }
    out->bytes = p->out.bytes.data(); out->bytes_count = p->out.bytes.size;
    out->numbers = p->out.numbers.data(); out->numbers_count = p->out.numbers.size();
    out->labels = p->out.labels.data(); out->labels_count = p->out.labels.size();
    out->records = p->out.records.data(); out->records_count = p->out.records.size();
    return decoded;
}
