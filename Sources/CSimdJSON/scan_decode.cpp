// The first of json_decode's fast paths: a scanner for the shape nearly every sender
// writes — an object or an array of objects whose keys are the known fields, strings
// without escapes, numbers that convert exactly with one rounding. It reads each byte
// once and builds no index: simdjson's stage 1 and On-Demand walk were a third of a
// drain. Anything else returns false, and On-Demand (then jansson) decides.
//
// Exact, not close: what it accepts is strict RFC 8259 JSON that jansson (with
// json_decode's flags) decodes to the same values —
// - strings hold no `\` (no escape) and no byte below 0x20 (no control character, no NUL),
//   and bytes from 0x80 only as valid UTF-8 sequences (the checks of jansson's utf.c), so
//   their bytes are their content;
// - numbers follow the JSON grammar (no leading zero, digits after `.` and `e`) and are
//   taken only when the digits form an integer m ≤ 2^53 and the decimal exponent e has
//   |e| ≤ 22: m and 10^|e| are then exact doubles, and one multiplication or division
//   rounds correctly (Clinger's fast path), as jansson's strtod does; `-0` is -0.0 in both;
// - whitespace is JSON's four characters; nothing but whitespace may follow the document;
// - a repeated key, a repeated label name, an unknown key or type spelling, a value of
//   another type, or any limit exceeded returns false rather than deciding.
#include "decode_output.h"

namespace {

constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

struct Scanner {
    const uint8_t *p, *end;
    DecodeOutput &out;
    const psg_simd_limits &l;

    // Skips whitespace; false at the end of the document.
    bool more() {
        while (p < end) {
            uint8_t c = *p;
            if (c != ' ' && c != '\n' && c != '\t' && c != '\r') return true;
            p++;
        }
        return false;
    }

    bool expect(uint8_t c) {
        if (!more() || *p != c) return false;
        p++;
        return true;
    }

    // After a member or element: true at `,`, false at `close` (consumed) or anything else (`ok` false).
    bool next(uint8_t close, bool &ok) {
        ok = more() && (*p == ',' || *p == close);
        return ok && *p++ == ',';
    }

    // A string without escapes or control characters, of valid UTF-8. Eight bytes at a time
    // while eight remain: the lowest flagged byte of each test is exact (a borrow only runs
    // upwards from a flagged byte), and it is read from the word, not loaded again. A local
    // cursor: a byte store may alias `p`.
    bool string(std::string_view &s) {
        if (!more() || *p != '"') return false;
        const uint8_t *start = p + 1, *q = start;
        for (;;) {
            uint8_t c = 0;
            bool flagged = false;
            for (; q + 8 <= end; q += 8) {
                uint64_t w;
                std::memcpy(&w, q, 8);
                uint64_t x = w ^ (ones * '"'), b = w ^ (ones * '\\');
                uint64_t found = (((x - ones) & ~x) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & highs;
                if (found) {
                    unsigned at = unsigned(__builtin_ctzll(found)) / 8;
                    q += at;
                    c = uint8_t(w >> (8 * at));
                    flagged = true;
                    break;
                }
            }
            if (!flagged) {   // fewer than eight bytes left: byte by byte
                while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\') q++;
                if (q >= end) return false;
                c = *q;
            }
            if (c == '"') return close(s, start, q);
            size_t n = c >= 0x80 ? utf8_length(q, end) : 0;   // a backslash or control character: 0
            if (n == 0) return false;
            q += n;
        }
    }

    // The length of the UTF-8 sequence at q, 0 when it is not one jansson (and stage 1) would
    // take: RFC 3629's table — no overlong form, no surrogate, nothing above U+10FFFF.
    static size_t utf8_length(const uint8_t *q, const uint8_t *end) {
        uint8_t c = q[0];
        size_t n;
        uint8_t low = 0x80, high = 0xBF;   // the second byte's range
        if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, low = c == 0xE0 ? 0xA0 : 0x80, high = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, low = c == 0xF0 ? 0x90 : 0x80, high = c == 0xF4 ? 0x8F : 0xBF;
        else return 0;
        if (size_t(end - q) < n || q[1] < low || q[1] > high) return 0;
        for (size_t i = 2; i < n; i++) if (q[i] < 0x80 || q[i] > 0xBF) return 0;
        return n;
    }

    bool close(std::string_view &s, const uint8_t *start, const uint8_t *quote) {
        s = std::string_view(reinterpret_cast<const char *>(start), size_t(quote - start));
        p = quote + 1;
        return true;
    }

    static bool digit(uint8_t c) { return unsigned(c - '0') < 10; }

    bool number(double &value) {
        static constexpr double tens[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                          1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        if (!more()) return false;
        const uint8_t *q = p;   // a local cursor (see string)
        bool negative = *q == '-';
        if (negative) q++;
        if (q >= end || !digit(*q)) return false;
        uint64_t m = 0;   // wraps past 19 digits, which are refused below
        int64_t digits = 0, exponent = 0;
        if (*q == '0') q++;   // a leading zero stands alone
        else
            for (; q < end && digit(*q); q++, digits++) m = m * 10 + (*q - '0');
        if (q < end && *q == '.') {
            if (++q >= end || !digit(*q)) return false;
            for (; q < end && digit(*q); q++, digits++, exponent--) m = m * 10 + (*q - '0');
        }
        if (q < end && (*q == 'e' || *q == 'E')) {
            bool minus = ++q < end && *q == '-';
            if (q < end && (*q == '-' || *q == '+')) q++;
            if (q >= end || !digit(*q)) return false;
            int64_t e = 0, n = 0;
            for (; q < end && digit(*q); q++, n++) if (n < 4) e = e * 10 + (*q - '0');   // more than 4 digits: refused
            if (n > 4) return false;
            exponent += minus ? -e : e;
        }
        if (digits > 19 || m > (uint64_t(1) << 53) || exponent < -22 || exponent > 22) return false;
        p = q;
        double d = double(m);
        d = exponent < 0 ? d / tens[-exponent] : d * tens[exponent];
        value = negative ? -d : d;
        return true;
    }

    bool numbers(size_t max, uint32_t &start, uint32_t &count) {
        if (!expect('[')) return false;
        start = uint32_t(out.numbers.size());
        count = 0;
        if (!more()) return false;
        if (*p == ']') { p++; return true; }
        bool ok;
        do {
            double x;
            if (!number(x)) return false;
            out.numbers.push_back(x);
            if (out.numbers.size() - start > max) return false;
        } while (next(']', ok));
        count = uint32_t(out.numbers.size() - start);
        return ok;
    }

    bool append(size_t max, uint32_t &start, uint32_t &count) {
        std::string_view s;
        if (!string(s) || s.size() > max) return false;
        start = uint32_t(out.bytes.size);
        count = uint32_t(s.size());
        out.bytes.append(s);
        return true;
    }

    bool labels(psg_simd_record &r) {
        if (!expect('{')) return false;
        r.label_start = uint32_t(out.labels.size());
        if (!more()) return false;
        if (*p == '}') { p++; return true; }
        bool ok;
        do {
            std::string_view name;
            if (!string(name) || name.size() > l.max_label_name || repeats_label(out, r.label_start, name) || !expect(':')) return false;
            psg_simd_label label{};
            label.name_start = uint32_t(out.bytes.size);
            label.name_count = uint32_t(name.size());
            out.bytes.append(name);
            if (!append(l.max_label_value, label.value_start, label.value_count)) return false;
            out.labels.push_back(label);
            if (out.labels.size() - r.label_start > l.max_labels) return false;
        } while (next('}', ok));
        r.label_count = uint32_t(out.labels.size() - r.label_start);
        return ok;
    }

    bool field(unsigned which, psg_simd_record &r) {
        switch (which) {
        case TYPE: {
            std::string_view t;
            return string(t) && (r.type_code = type_code(t)) < 4;
        }
        case NAME: return append(l.max_name, r.name_start, r.name_count);
        case VALUE: return number(r.value);
        case HELP: return append(l.max_help, r.help_start, r.help_count);
        case LABELS: return labels(r);
        case BUCKETS: return numbers(l.max_buckets, r.buckets_start, r.buckets_count);
        case QUANTILES: return numbers(l.max_quantiles, r.quantiles_start, r.quantiles_count);
        case EPSILONS: return numbers(l.max_quantiles, r.epsilons_start, r.epsilons_count);
        case COUNTS: {
            size_t total = out.numbers.size();
            out.numbers.push_back(0);
            uint32_t start, count;
            if (!numbers(l.max_buckets + 1, start, count)) return false;
            out.numbers[total] = sum_of(out.numbers.data() + start, count);
            r.counts_start = uint32_t(total);
            r.counts_count = count + 1;
            return true;
        }
        }
        return false;
    }

    // One sample, its `{` consumed.
    bool sample() {
        psg_simd_record r{};
        unsigned seen = 0;
        bool ok;
        do {
            std::string_view key;
            if (!string(key)) return false;
            unsigned which = field_of(key);
            if (which == 0 || (seen & which) || !expect(':') || !field(which, r)) return false;
            seen |= which;
        } while (next('}', ok));
        if (!ok || (seen & (TYPE | NAME | VALUE)) != (TYPE | NAME | VALUE) || ((seen & COUNTS) && r.type_code != 2)) return false;
        out.records.push_back(r);
        return true;
    }

    bool document() {
        if (!more()) return false;
        if (*p == '{') {
            p++;
            if (!sample()) return false;
        } else if (*p++ == '[') {
            size_t first = out.records.size();   // the batch's buffers hold earlier documents
            bool ok;
            do {
                if (!expect('{') || !sample() || out.records.size() - first > l.max_samples) return false;
            } while (next(']', ok));
            if (!ok) return false;
        } else {
            return false;
        }
        return !more();
    }
};

}  // namespace

bool scan_document(DecodeOutput &out, const uint8_t *data, size_t size, const psg_simd_limits &limits) {
    Scanner s{data, data + size, out, limits};
    return s.document();
}
