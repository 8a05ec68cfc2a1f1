/*
 * datasize.c - a working set of a given size, with a WASI call every iteration.
 *
 * Usage: datasize [kib=50] [iterations=100000]
 *
 * Keeps a heap area of kib KiB. Each iteration rewrites the next 64 words of the
 * area (a cursor that wraps around, so all of it is touched over time) plus one
 * pseudo-random word, then calls clock_gettime (a WASI call, i.e. a place where
 * the program can be frozen; the value is not used in the output). Every 10% of
 * the run it prints "progress N". At the end it prints "checksum XXXXXXXX" over
 * the whole area. Meant for freeze/migrate benchmarks versus data size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long kib = argc > 1 ? atol(argv[1]) : 50;
    long iterations = argc > 2 ? atol(argv[2]) : 100000;
    if (kib < 1) kib = 1;
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t nwords = (size_t)kib * 1024 / sizeof(uint32_t);
    uint32_t *data = calloc(nwords, sizeof(uint32_t));
    if (!data) {
        fprintf(stderr, "FAIL: cannot allocate %ld KiB\n", kib);
        return 3;
    }

    size_t cursor = 0;
    uint32_t rng = 2463534242u;
    long report = iterations >= 10 ? iterations / 10 : 1;
    for (long i = 0; i < iterations; i++) {
        for (int k = 0; k < 64; k++) {
            data[cursor] = data[cursor] * 1664525u + (uint32_t)i + 1013904223u;
            cursor = cursor + 1 == nwords ? 0 : cursor + 1;
        }
        rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
        data[rng % nwords] ^= (uint32_t)i;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((i + 1) % report == 0) printf("progress %ld\n", i + 1);
    }
    uint32_t h = 2166136261u;
    for (size_t w = 0; w < nwords; w++) h = (h ^ data[w]) * 16777619u;
    printf("checksum %08x\n", h);
    return 0;
}
