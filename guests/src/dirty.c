/*
 * dirty.c - an address space of a given size with a hot set of pages rewritten
 * step after step: the workload of the paging benchmark (docs/BENCHMARKS.md).
 *
 * Usage: dirty [mib=16] [percent=10] [steps=1000] [timing=0] [window=50]
 *
 * Allocates mib MiB (4 KiB aligned), seen as 4 KiB pages, and fills every word
 * of every page with a non-zero pattern derived from its address (so a full
 * copy of the memory has to move all of it, and no page is all zeros). Prints
 * "filled N pages, H hot". Then runs `steps` steps: each writes one word (the
 * first) of every page of the hot set, percent% of the pages spread evenly over
 * the area (page p is hot when floor((p+1)*percent/100) > floor(p*percent/100):
 * every 100th page at 1 %, every other page at 50 %), then calls clock_gettime
 * (a WASI call: a place where the process can be frozen). Every tenth of the
 * steps it prints "step N". At the end it verifies every word of the area (the
 * fill pattern, or on a hot page the value of the last step), prints
 * "checksum <16 hex digits>" over the whole area and "dirty ok". On a wrong
 * word: "FAIL: ..." on stderr, exit 3. stdout is deterministic.
 *
 * With timing = 1 each step reads CLOCK_MONOTONIC before and after its writes
 * and CLOCK_REALTIME after them, and the step's work is timed as the monotonic
 * time between the two monotonic reads: the writes only. A freeze can only fall
 * on a WASI call, never inside the writes, so the work time holds no frozen or
 * restoring time, only the writes and the page faults they meet (pages read in
 * from a paging file, or fetched from another node, after a resume).
 *
 * A resume is seen from the clocks: Ferry's guest monotonic clock leaves out
 * the time the process stood frozen and continues across nodes; the realtime
 * clock does not. So when realtime - monotonic jumps by more than 2 ms between
 * two steps, and stays so at the next step (a host pause between the two clock
 * reads of one step makes it jump for that step only), the process was frozen
 * (and perhaps moved) in between. Once the `window` steps from the step in which
 * the resume was seen have run, it prints one line to stderr:
 *
 *   resume step=S frozen_us=F before_n=N before_mean_ns=A before_median_ns=B
 *     after_n=M after_mean_ns=C after_median_ns=D after_max_ns=E
 *
 * (on one line): the step S the resume was seen in, how long the guest stood
 * still as it saw it (the jump), and the mean, median (and, after, the largest)
 * work time of the `window` steps before S and of the `window` steps from S on
 * (S included: whichever of its WASI calls the freeze fell on, the first writes
 * after the resume are in S or S + 1). One line per resume.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PAGE 4096
#define WORDS (PAGE / 8)
#define MAX_WINDOW 1000
#define RESUME_NS 2000000LL /* a jump of realtime - monotonic above this is a resume */

static uint64_t fill(uint64_t word_index) {
    return (word_index + 1) * 0x9E3779B97F4A7C15ull; /* odd multiplier: never 0 */
}

static uint64_t step_value(long long step, uint64_t page) {
    return ((uint64_t)step + 1) * 0xD6E8FEB86659FD93ull ^ (page << 1) ^ 1;
}

static int is_hot(uint64_t p, long percent) {
    return (p + 1) * (uint64_t)percent / 100 != p * (uint64_t)percent / 100;
}

static long long now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long median(const long long *v, int n, long long *scratch) {
    for (int i = 0; i < n; i++) {
        long long x = v[i];
        int j = i;
        while (j > 0 && scratch[j - 1] > x) {
            scratch[j] = scratch[j - 1];
            j--;
        }
        scratch[j] = x;
    }
    if (n == 0) return 0;
    return n % 2 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
}

static long long mean(const long long *v, int n) {
    long long s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : 0;
}

/* Timing: the last `window` step durations (a ring), then `window` from a resume on. */
static long long before[MAX_WINDOW], after[MAX_WINDOW], scratch[MAX_WINDOW];
static int nbefore, ring;
static int nafter = -1; /* >= 0: collecting the steps after a resume */
static long long resume_step, frozen_ns;
/* A jump seen in one step and not yet confirmed by the next: a host pause between the two clock
 * reads of a step also makes realtime - monotonic jump, but only for that step. */
static int candidate;
static long long candidate_step, candidate_took, candidate_jump, candidate_base;

static void keep_before(long long took, int window) {
    before[ring] = took;
    ring = (ring + 1) % window;
    if (nbefore < window) nbefore++;
}

static void report_resume(int window) {
    long long ordered[MAX_WINDOW]; /* the ring, oldest first */
    for (int i = 0; i < nbefore; i++) ordered[i] = before[(ring - nbefore + i + window) % window];
    long long max = 0;
    for (int i = 0; i < nafter; i++) max = after[i] > max ? after[i] : max;
    fprintf(stderr,
            "resume step=%lld frozen_us=%lld before_n=%d before_mean_ns=%lld "
            "before_median_ns=%lld after_n=%d after_mean_ns=%lld after_median_ns=%lld "
            "after_max_ns=%lld\n",
            resume_step, frozen_ns / 1000, nbefore, mean(ordered, nbefore),
            median(ordered, nbefore, scratch), nafter, mean(after, nafter),
            median(after, nafter, scratch), max);
}

/* One step whose writes took `took` monotonic ns, after which realtime - monotonic is `drift`
 * (it was `last`). */
static void timed_step(long long step, long long took, long long drift, long long last, int window) {
    if (nafter >= 0) {
        after[nafter++] = took;
    } else if (candidate) {
        candidate = 0;
        if (drift - candidate_base > RESUME_NS) { /* the jump stayed: a resume */
            resume_step = candidate_step;
            frozen_ns = drift - candidate_base < candidate_jump ? drift - candidate_base : candidate_jump;
            after[0] = candidate_took;
            after[1] = took;
            nafter = 2;
        } else {
            keep_before(candidate_took, window);
            keep_before(took, window);
        }
    } else if (drift - last > RESUME_NS) {
        candidate = 1;
        candidate_step = step;
        candidate_took = took;
        candidate_jump = drift - last;
        candidate_base = last;
    } else {
        keep_before(took, window);
    }
    if (nafter >= window) {
        report_resume(window);
        nafter = -1;
        nbefore = 0;
        ring = 0;
    }
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 16;
    long percent = argc > 2 ? atol(argv[2]) : 10;
    long long steps = argc > 3 ? strtoll(argv[3], NULL, 10) : 1000;
    int timing = argc > 4 ? atoi(argv[4]) != 0 : 0;
    int window = argc > 5 ? atoi(argv[5]) : 50;
    if (mib < 1 || mib > 2048 || percent < 0 || percent > 100 || steps < 0 || window < 2 ||
        window > MAX_WINDOW) {
        fprintf(stderr, "FAIL: bad arguments (dirty <mib 1-2048> <percent 0-100> <steps> "
                        "[timing 0|1] [window 2-%d])\n", MAX_WINDOW);
        return 3;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t npages = (size_t)mib * (1024 * 1024 / PAGE);
    uint64_t *area = aligned_alloc(PAGE, npages * PAGE);
    size_t nhot = npages * (size_t)percent / 100;
    uint32_t *hot = malloc((nhot ? nhot : 1) * sizeof(uint32_t));
    if (!area || !hot) {
        fprintf(stderr, "FAIL: cannot allocate %ld MiB\n", mib);
        return 3;
    }
    for (size_t i = 0; i < npages * WORDS; i++) area[i] = fill(i);
    size_t h = 0;
    for (size_t p = 0; p < npages; p++) {
        if (is_hot(p, percent)) hot[h++] = (uint32_t)p;
    }
    if (h != nhot) {
        fprintf(stderr, "FAIL: %zu hot pages, expected %zu\n", h, nhot);
        return 3;
    }
    printf("filled %zu pages, %zu hot\n", npages, nhot);

    long long drift = 0;
    if (timing) {
        long long mono = now(CLOCK_MONOTONIC);
        drift = now(CLOCK_REALTIME) - mono;
    }
    long long report = steps >= 10 ? steps / 10 : 1;
    for (long long s = 0; s < steps; s++) {
        if (!timing) {
            for (size_t i = 0; i < nhot; i++) area[(size_t)hot[i] * WORDS] = step_value(s, hot[i]);
            now(CLOCK_MONOTONIC); /* the migration point; the value is not used */
        } else {
            long long start = now(CLOCK_MONOTONIC);
            for (size_t i = 0; i < nhot; i++) area[(size_t)hot[i] * WORDS] = step_value(s, hot[i]);
            long long end = now(CLOCK_MONOTONIC);
            long long d = now(CLOCK_REALTIME) - end;
            timed_step(s, end - start, d, drift, window);
            drift = d;
        }
        if ((s + 1) % report == 0) printf("step %lld\n", s + 1);
    }

    uint64_t sum = 1469598103934665603ull;
    for (size_t p = 0; p < npages; p++) {
        int hp = steps > 0 && is_hot(p, percent);
        for (size_t w = 0; w < WORDS; w++) {
            size_t i = p * WORDS + w;
            uint64_t want = w == 0 && hp ? step_value(steps - 1, p) : fill(i);
            if (area[i] != want) {
                fprintf(stderr, "FAIL: page %zu word %zu holds %016llx, expected %016llx\n", p, w,
                        (unsigned long long)area[i], (unsigned long long)want);
                return 3;
            }
            sum = (sum ^ area[i]) * 1099511628211ull;
        }
    }
    printf("checksum %016llx\n", (unsigned long long)sum);
    printf("dirty ok\n");
    return 0;
}
