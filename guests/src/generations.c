/*
 * generations.c - every page of an area holds a generation number that is
 * rewritten round after round (the idea of QEMU's migration test): a frozen,
 * moved and resumed copy of the program must find each page as it left it.
 *
 * Usage: generations <mib> <rounds> [page_bytes=4096] [pages_per_call=16]
 *
 * Allocates mib MiB aligned to page_bytes (a power of two, 64 B .. 1 MiB) and
 * treats it as pages of page_bytes. Page i holds three 64-bit little-endian
 * words: its generation in the first word, the tag "GENS" << 32 | i in the
 * second, and the generation again in the last word of the page; the rest of
 * the page stays zero.
 *
 * Round 0 writes generation 0 (and the tags) into every page. Round g = 1..rounds
 * writes g into every page in order, after checking that the page still holds
 * g - 1 and its own tag. Every pages_per_call pages inside a round (never after
 * the last page) it calls clock_gettime - a WASI call, so a place where the
 * program can be frozen - and then verifies the whole area: pages before the
 * write cursor must hold g, pages from the cursor on g - 1. The whole area is
 * also verified at the start of every round and at the end. After a round it
 * prints "round <g> ok" (also a WASI call, with every page at g). At the end it
 * prints a checksum of the whole area (FNV-1a over its 64-bit
 * words, so damage inside a page shows too) and "generations ok".
 *
 * On a mismatch, on stderr, and exit code 3:
 *   FAIL: page <i> holds generation <x>, expected <y>
 *   FAIL: page <i> holds generation <x>, expected <y> (last word)
 *   FAIL: page <i> holds tag <16 hex>, expected <16 hex>
 *
 * stdout (unbuffered, one fd_write per line):
 *   area 1024 pages of 4096 bytes, 16 pages per call
 *   round 0 ok
 *   round 1 ok
 *   ...
 *   round <rounds> ok
 *   checksum <16 hex>
 *   generations ok
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TAG 0x47454E5300000000ull /* "GENS" << 32 */

static unsigned char *area;
static size_t npages, page_bytes, last_word;

static uint64_t *page(size_t i) { return (uint64_t *)(area + i * page_bytes); }

static void fail_generation(size_t i, uint64_t got, uint64_t want, const char *where) {
    fprintf(stderr, "FAIL: page %zu holds generation %llu, expected %llu%s\n", i,
            (unsigned long long)got, (unsigned long long)want, where);
    exit(3);
}

/* Page i holds generation want and its own tag, or the program fails. */
static void check(size_t i, uint64_t want) {
    const uint64_t *w = page(i);
    if (w[1] != (TAG | i)) {
        fprintf(stderr, "FAIL: page %zu holds tag %016llx, expected %016llx\n", i,
                (unsigned long long)w[1], (unsigned long long)(TAG | i));
        exit(3);
    }
    if (w[0] != want) fail_generation(i, w[0], want, "");
    if (w[last_word] != want) fail_generation(i, w[last_word], want, " (last word)");
}

static void check_range(size_t from, size_t to, uint64_t want) {
    for (size_t i = from; i < to; i++) check(i, want);
}

static void write_page(size_t i, uint64_t g) {
    uint64_t *w = page(i);
    w[0] = g;
    w[1] = TAG | i;
    w[last_word] = g;
}

/* A WASI call: the program may be frozen (and moved) here. */
static void migration_point(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "FAIL: usage: generations <mib> <rounds> [page_bytes=4096] [pages_per_call=16]\n");
        return 3;
    }
    long mib = atol(argv[1]);
    long rounds = atol(argv[2]);
    long pb = argc > 3 ? atol(argv[3]) : 4096;
    long per_call = argc > 4 ? atol(argv[4]) : 16;
    if (mib < 1 || mib > 1024 || rounds < 1 || pb < 64 || pb > (1 << 20) || (pb & (pb - 1)) != 0
        || per_call < 1) {
        fprintf(stderr, "FAIL: bad arguments\n");
        return 3;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    page_bytes = (size_t)pb;
    last_word = page_bytes / sizeof(uint64_t) - 1;
    npages = (size_t)mib * (1024 * 1024) / page_bytes;
    area = aligned_alloc(page_bytes, npages * page_bytes);
    if (!area) {
        fprintf(stderr, "FAIL: cannot allocate %ld MiB\n", mib);
        return 3;
    }
    for (size_t i = 0; i < npages * page_bytes / sizeof(uint64_t); i++) {
        ((uint64_t *)area)[i] = 0;
    }
    printf("area %zu pages of %zu bytes, %ld pages per call\n", npages, page_bytes, per_call);

    /* Round 0: generation 0 everywhere; only the pages written so far can be checked. */
    for (size_t i = 0; i < npages; i++) {
        write_page(i, 0);
        if ((i + 1) % (size_t)per_call == 0 && i + 1 < npages) {
            migration_point();
            check_range(0, i + 1, 0);
        }
    }
    printf("round 0 ok\n");

    for (uint64_t g = 1; g <= (uint64_t)rounds; g++) {
        check_range(0, npages, g - 1);
        for (size_t i = 0; i < npages; i++) {
            check(i, g - 1);
            write_page(i, g);
            if ((i + 1) % (size_t)per_call == 0 && i + 1 < npages) {
                migration_point();
                check_range(0, i + 1, g);
                check_range(i + 1, npages, g - 1);
            }
        }
        printf("round %llu ok\n", (unsigned long long)g);
    }

    check_range(0, npages, (uint64_t)rounds);
    uint64_t h = 0xcbf29ce484222325ull;
    const uint64_t *words = (const uint64_t *)area;
    for (size_t k = 0; k < npages * page_bytes / sizeof(uint64_t); k++) {
        h = (h ^ words[k]) * 0x100000001b3ull;
    }
    printf("checksum %016llx\n", (unsigned long long)h);
    printf("generations ok\n");
    return 0;
}
