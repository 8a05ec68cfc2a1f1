/*
 * pages.c - many memory pages, a fraction of them dirtied every round.
 *
 * Usage: pages [mib=16] [rounds=100] [dirty_percent=100]
 *
 * Allocates mib MiB (4 KiB aligned) and treats it as 4 KiB pages. Round 0 writes
 * generation 0 into the first 8 bytes of every page and a tag with the page's
 * index into the next 8. Round r >= 1 writes generation r into the first
 * dirty_percent% of the pages only. Each round then makes a WASI call (prints
 * "round N") and verifies every page: the generation it last wrote (0 outside
 * the dirty fraction) and its index tag. Final line "pages ok".
 * On a mismatch: "FAIL: ..." on stderr, exit 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096
#define TAG 0x5041474500000000ull /* "PAGE" << 32 */

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 16;
    long rounds = argc > 2 ? atol(argv[2]) : 100;
    long dirty_percent = argc > 3 ? atol(argv[3]) : 100;
    if (mib < 1 || dirty_percent < 0 || dirty_percent > 100) {
        fprintf(stderr, "FAIL: bad arguments\n");
        return 3;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t npages = (size_t)mib * (1024 * 1024 / PAGE);
    size_t ndirty = npages * (size_t)dirty_percent / 100;
    unsigned char *mem = aligned_alloc(PAGE, npages * PAGE);
    if (!mem) {
        fprintf(stderr, "FAIL: cannot allocate %ld MiB\n", mib);
        return 3;
    }

    for (long r = 0; r < rounds; r++) {
        size_t upto = r == 0 ? npages : ndirty;
        for (size_t p = 0; p < upto; p++) {
            uint64_t *w = (uint64_t *)(mem + p * PAGE);
            w[0] = (uint64_t)r;
            if (r == 0) w[1] = TAG | p;
        }
        printf("round %ld\n", r);
        for (size_t p = 0; p < npages; p++) {
            const uint64_t *w = (const uint64_t *)(mem + p * PAGE);
            uint64_t want = p < ndirty ? (uint64_t)r : 0;
            if (w[0] != want || w[1] != (TAG | p)) {
                fprintf(stderr, "FAIL: page %zu holds generation %llu tag %016llx, expected %llu in round %ld\n",
                        p, (unsigned long long)w[0], (unsigned long long)w[1], (unsigned long long)want, r);
                return 3;
            }
        }
    }
    printf("pages ok\n");
    return 0;
}
