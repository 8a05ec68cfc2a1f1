/*
 * churn.c - mutable globals, heap churn and deep recursion across WASI calls.
 *
 * Usage: churn [steps=200] [depth=2000]
 *
 * Every step:
 *   - frees and mallocs blocks of varied sizes in a pool of POOL slots; every live
 *     block is filled with a pattern derived from (step it was filled, slot index)
 *     and the whole pool is verified on each step (and each block before its free);
 *   - updates static counters and a static history array, and checks that the
 *     counters agree with a scan of the pool;
 *   - recurses `depth` levels; every level keeps locals that are used after the
 *     recursive call returns, and the bottom level makes WASI calls
 *     (clock_gettime), so a freeze there must save and restore the whole stack;
 *   - prints "step N checksum XXXXXXXX live L" (stdout is unbuffered, so every
 *     line is its own fd_write).
 * Final line: "done XXXXXXXX". On an inconsistency: "FAIL: ..." on stderr, exit 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define POOL 48

struct block { unsigned char *p; uint32_t size, seed; };

static struct block pool[POOL];
static uint32_t allocs, frees, live_count, live_bytes;
static uint32_t history[64], history_sum;
static uint32_t checksum = 0x811c9dc5u;
static uint32_t rng = 12345;
static uint32_t bottom_calls;

static void fail(const char *why, int a, int b) {
    fprintf(stderr, "FAIL: %s (%d, %d)\n", why, a, b);
    exit(3);
}

static uint32_t next_rand(void) {
    rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
    return rng;
}

static uint32_t mix(uint32_t h, uint32_t v) { return (h ^ v) * 16777619u + (v >> 7); }

static unsigned char pattern(uint32_t seed, uint32_t j) {
    return (unsigned char)(seed + j * 31u + (j >> 8));
}

static void fill(struct block *b) {
    for (uint32_t j = 0; j < b->size; j++) b->p[j] = pattern(b->seed, j);
}

static uint32_t verify(const struct block *b, int slot) {
    uint32_t h = 0;
    for (uint32_t j = 0; j < b->size; j++) {
        if (b->p[j] != pattern(b->seed, j)) fail("heap block corrupted", slot, (int)j);
        h = h * 31u + b->p[j];
    }
    return h;
}

/* The WASI calls made at the bottom of the recursion. Kept out of line so that
 * recurse() itself needs no shadow-stack frame (2000 frames of struct timespec
 * would overflow the default 64 KiB C stack); its locals are wasm locals. */
__attribute__((noinline)) static void bottom(void) {
    struct timespec t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    if (t2.tv_sec < t1.tv_sec || (t2.tv_sec == t1.tv_sec && t2.tv_nsec < t1.tv_nsec))
        fail("monotonic clock went backwards", 0, 0);
    bottom_calls++;
}

/* Locals of every level are live across the recursive call (and so across the
 * WASI calls at the bottom); the result depends on all of them. */
static uint32_t recurse(int n, uint32_t acc) {
    uint32_t a = mix(acc, (uint32_t)n);
    uint32_t b = a ^ (uint32_t)n * 2654435761u;
    if (n == 0) {
        bottom();
        return a + b;
    }
    uint32_t r = recurse(n - 1, b);
    return mix(r, a) + b;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    int depth = argc > 2 ? atoi(argv[2]) : 2000;
    setvbuf(stdout, NULL, _IONBF, 0);

    for (int step = 0; step < steps; step++) {
        /* churn: touch a few random slots */
        for (int k = 0; k < 8; k++) {
            int slot = (int)(next_rand() % POOL);
            struct block *b = &pool[slot];
            if (b->p) {
                checksum = mix(checksum, verify(b, slot));
                free(b->p);
                frees++; live_count--; live_bytes -= b->size;
                b->p = NULL;
            } else {
                uint32_t r = next_rand();
                b->size = (r % 16 == 0) ? 65536 + r % 50000 : 1 + r % 6000;
                b->seed = (uint32_t)step * 131u + (uint32_t)slot * 7u;
                b->p = malloc(b->size);
                if (!b->p) fail("malloc failed", step, (int)b->size);
                fill(b);
                allocs++; live_count++; live_bytes += b->size;
            }
        }
        /* verify the whole pool against the counters */
        uint32_t n = 0, bytes = 0;
        for (int i = 0; i < POOL; i++) {
            if (!pool[i].p) continue;
            checksum = mix(checksum, verify(&pool[i], i));
            n++; bytes += pool[i].size;
        }
        if (n != live_count || bytes != live_bytes || allocs - frees != n)
            fail("pool counters disagree", step, (int)n);

        /* deep recursion with WASI calls at the bottom */
        uint32_t before = bottom_calls;
        checksum = mix(checksum, recurse(depth, checksum));
        if (bottom_calls != before + 1) fail("recursion bottom count", step, (int)bottom_calls);

        /* static history ring, with its sum kept incrementally in another global */
        history_sum += checksum - history[step % 64];
        history[step % 64] = checksum;
        uint32_t sum = 0;
        for (int i = 0; i < 64; i++) sum += history[i];
        if (sum != history_sum) fail("static history array changed", step, 0);

        printf("step %d checksum %08x live %u\n", step, checksum, live_count);
    }
    printf("done %08x\n", checksum);
    return 0;
}
