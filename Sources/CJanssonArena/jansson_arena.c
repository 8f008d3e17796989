#include "jansson_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* A block of arena memory; the usable bytes follow the header. */
typedef struct block {
    struct block *next;
    size_t size;
} block;

#define FIRST_BLOCK_SIZE ((size_t)64 * 1024)
#define ALIGN 16   /* what malloc guarantees */
#define HEADER ((sizeof(block) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

/* Per thread: `first` lives as long as the thread; `overflow` holds the blocks a
 * large document needed beyond it and is freed at jansson_arena_end(). */
static __thread struct {
    int active;
    char *cursor, *limit;
    block *first, *overflow;
} arena;

static pthread_key_t release_key;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static char *start_of(block *b) { return (char *)b + HEADER; }

static int owns(const block *b, const void *p) {
    const char *c = (const char *)p, *s = (const char *)b + HEADER;
    return c >= s && c < s + b->size;
}

static void free_overflow(void) {
    for (block *b = arena.overflow, *next; b; b = next) { next = b->next; free(b); }
    arena.overflow = NULL;
}

static block *new_block(size_t size) {
    block *b = malloc(HEADER + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    return b;
}

/* Thread exit: give the first block back (pthread key destructor). */
static void release_thread(void *unused) {
    (void)unused;
    free_overflow();
    free(arena.first);
    arena.first = NULL;
    arena.active = 0;
}

static void *arena_malloc(size_t size) {
    if (!arena.active) return malloc(size);
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < size) return NULL;   /* overflow */
    if ((size_t)(arena.limit - arena.cursor) < need) {
        size_t grown = arena.overflow ? arena.overflow->size * 2 : FIRST_BLOCK_SIZE * 2;
        block *b = new_block(need > grown ? need : grown);
        if (!b) return NULL;
        b->next = arena.overflow;
        arena.overflow = b;
        arena.cursor = start_of(b);
        arena.limit = arena.cursor + b->size;
    }
    void *p = arena.cursor;
    arena.cursor += need;
    return p;
}

static void arena_free(void *p) {
    if (!p) return;
    if (arena.first && owns(arena.first, p)) return;
    for (block *b = arena.overflow; b; b = b->next)
        if (owns(b, p)) return;
    free(p);
}

static void install(void) {
    pthread_key_create(&release_key, release_thread);
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void jansson_arena_install(void) { pthread_once(&install_once, install); }

void jansson_arena_begin(void) {
    /* A second live scope would reset the first one's document under it. */
    if (arena.active) abort();
    if (!arena.first) {
        arena.first = new_block(FIRST_BLOCK_SIZE);
        if (!arena.first) return;   /* stays inactive: plain malloc */
        pthread_setspecific(release_key, (void *)1);
        arena.cursor = start_of(arena.first);
        arena.limit = arena.cursor + arena.first->size;
    }
    arena.active = 1;
}

void jansson_arena_end(void) {
    arena.active = 0;
    free_overflow();
    if (arena.first) {
        arena.cursor = start_of(arena.first);
        arena.limit = arena.cursor + arena.first->size;
    }
}

unsigned long jansson_arena_capacity(void) {
    unsigned long total = arena.first ? arena.first->size : 0;
    for (block *b = arena.overflow; b; b = b->next) total += b->size;
    return total;
}
