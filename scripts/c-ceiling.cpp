// The ceiling for `make bench`: what one thread can do with the fastest pieces at
// hand — hiredis with pipelined `RPOP key 256` (8 in flight), simdjson On-Demand
// over each element (one object or an array of them), and a flat open-addressing
// table keyed by name + labels (counters summed, gauges replaced, histograms and
// summaries count and sum). No validation, no buckets, no exposition, no threads:
// the gateway reported as a ratio of it says how close it is to the limit.
//
//   c++ -O2 -std=c++17 scripts/c-ceiling.cpp -lhiredis -lsimdjson -o c-ceiling
//   c-ceiling HOST PORT KEY N   # drains until N samples were applied; prints rate=… and its CPU per sample
#include <hiredis/hiredis.h>
#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

using namespace simdjson;

namespace {

constexpr uint64_t SLOTS = 1u << 20;
struct Slot { uint64_t hash = 0; std::string key; double value = 0, count = 0; };
std::vector<Slot> table(SLOTS);

uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h | 1;   // 0 marks a free slot
}

std::string key;

long apply(ondemand::object sample) {
    std::string_view type, name;
    double value = 0;
    bool haveValue = false;
    key.clear();
    for (auto field : sample) {
        std::string_view k;
        if (field.unescaped_key().get(k)) return 0;
        if (k == "type") { if (field.value().get_string().get(type)) return 0; }
        else if (k == "name") { if (field.value().get_string().get(name)) return 0; key.insert(0, name); }
        else if (k == "value") { if (field.value().get_double().get(value)) return 0; haveValue = true; }
        else if (k == "labels") {
            ondemand::object labels;
            if (field.value().get_object().get(labels)) return 0;
            for (auto label : labels) {
                std::string_view ln, lv;
                if (label.unescaped_key().get(ln) || label.value().get_string().get(lv)) return 0;
                key += ','; key += ln; key += '='; key += lv;
            }
        }
    }
    if (type.empty() || name.empty() || !haveValue) return 0;
    uint64_t h = fnv(key.data(), key.size()), i = h & (SLOTS - 1);
    while (table[i].hash && (table[i].hash != h || table[i].key != key)) i = (i + 1) & (SLOTS - 1);
    if (!table[i].hash) { table[i].hash = h; table[i].key = key; }
    if (type[0] == 'g') table[i].value = value; else table[i].value += value;
    table[i].count += 1;
    return 1;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 5) { std::fprintf(stderr, "usage: %s HOST PORT KEY N\n", argv[0]); return 2; }
    redisContext *c = redisConnect(argv[1], std::atoi(argv[2]));
    if (!c || c->err) { std::fprintf(stderr, "cannot connect\n"); return 1; }
    const char *queue = argv[3];
    long want = std::atol(argv[4]), applied = 0;
    ondemand::parser parser;
    std::vector<char> padded;
    timespec t0{}, t1{}, c0{}, c1{};   // wall and CPU time from the first reply with elements
    bool started = false;
    while (applied < want) {
        for (int p = 0; p < 8; p++) redisAppendCommand(c, "RPOP %s 256", queue);
        for (int p = 0; p < 8; p++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) { std::fprintf(stderr, "redis: %s\n", c->errstr); return 1; }
            if (r->type == REDIS_REPLY_ARRAY) {
                if (!started) { clock_gettime(CLOCK_MONOTONIC, &t0); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0); started = true; }
                for (size_t e = 0; e < r->elements; e++) {
                    const redisReply *el = r->element[e];
                    padded.resize(el->len + SIMDJSON_PADDING);   // hiredis's buffer has no padding
                    std::memcpy(padded.data(), el->str, el->len);
                    ondemand::document doc;
                    if (parser.iterate(padded.data(), el->len, padded.size()).get(doc)) continue;
                    ondemand::json_type t;
                    if (doc.type().get(t)) continue;
                    if (t == ondemand::json_type::array) {
                        for (auto item : doc.get_array()) {
                            ondemand::object o;
                            if (!item.get_object().get(o)) applied += apply(o);
                        }
                    } else if (t == ondemand::json_type::object) {
                        ondemand::object o;
                        if (!doc.get_object().get(o)) applied += apply(o);
                    }
                }
            }
            freeReplyObject(r);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double secs = double(t1.tv_sec - t0.tv_sec) + double(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = double(c1.tv_sec - c0.tv_sec) + double(c1.tv_nsec - c0.tv_nsec) / 1e9;
    std::printf("samples=%ld seconds=%.3f rate=%.0f cpu_us_per_sample=%.3f\n", applied, secs, double(applied) / secs, cpu / double(applied) * 1e6);
    return 0;
}
