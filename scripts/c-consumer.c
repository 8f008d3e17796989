// A hand-written reference consumer for `make bench`: what the gateway's drain is
// compared with. hiredis, pipelined `RPOP key 256` (8 in flight), jansson with
// json_decode's flags, and a flat open-addressing table keyed by name + labels
// (counters summed, gauges replaced, histogram/summary count and sum). No checks
// beyond what it needs, no buckets, no exposition: a floor, not a gateway.
//
//   cc -O2 scripts/c-consumer.c -lhiredis -ljansson -o c-consumer
//   c-consumer HOST PORT KEY N   # drains until N samples were applied; prints rate=…
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS (1u << 20)
typedef struct { char *key; double value, count; } slot;
static slot table[SLOTS];

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static long apply(json_t *sample) {
    const char *type = json_string_value(json_object_get(sample, "type"));
    const char *name = json_string_value(json_object_get(sample, "name"));
    json_t *v = json_object_get(sample, "value");
    if (!type || !name || !json_is_number(v)) return 0;
    char key[1024];
    size_t n = (size_t)snprintf(key, sizeof key, "%s", name);
    const char *k; json_t *lv;
    json_object_foreach(json_object_get(sample, "labels"), k, lv) {
        if (json_is_string(lv) && n < sizeof key) n += (size_t)snprintf(key + n, sizeof key - n, ",%s=%s", k, json_string_value(lv));
    }
    if (n >= sizeof key) n = sizeof key - 1;
    uint64_t i = fnv(key, n) & (SLOTS - 1);
    while (table[i].key && strcmp(table[i].key, key) != 0) i = (i + 1) & (SLOTS - 1);
    if (!table[i].key) table[i].key = strdup(key);
    double x = json_number_value(v);
    if (type[0] == 'g' || type[0] == 'G') table[i].value = x; else table[i].value += x;
    table[i].count += 1;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s HOST PORT KEY N\n", argv[0]); return 2; }
    redisContext *c = redisConnect(argv[1], atoi(argv[2]));
    if (!c || c->err) { fprintf(stderr, "cannot connect\n"); return 1; }
    const char *key = argv[3];
    long want = atol(argv[4]), applied = 0;
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL;
    struct timespec t0, t1;
    int started = 0;
    while (applied < want) {
        for (int p = 0; p < 8; p++) redisAppendCommand(c, "RPOP %s 256", key);
        for (int p = 0; p < 8; p++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) { fprintf(stderr, "redis: %s\n", c->errstr); return 1; }
            if (r->type == REDIS_REPLY_ARRAY) {
                if (!started) { clock_gettime(CLOCK_MONOTONIC, &t0); started = 1; }
                for (size_t e = 0; e < r->elements; e++) {
                    json_t *doc = json_loadb(r->element[e]->str, r->element[e]->len, flags, NULL);
                    if (!doc) continue;
                    if (json_is_array(doc)) {
                        size_t j; json_t *s;
                        json_array_foreach(doc, j, s) applied += apply(s);
                    } else {
                        applied += apply(doc);
                    }
                    json_decref(doc);
                }
            }
            freeReplyObject(r);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("samples=%ld seconds=%.3f rate=%.0f\n", applied, secs, (double)applied / secs);
    return 0;
}
