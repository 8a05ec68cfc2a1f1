/*
 * clock.c - the monotonic clock must never go backwards, sleeps must last.
 *
 * Usage: clock [iterations=2000] [sleep_us=100]
 *
 * Each iteration reads CLOCK_MONOTONIC and checks it is >= the previous read;
 * every 10th iteration it sleeps sleep_us microseconds (nanosleep, i.e. WASI
 * poll_oneoff) and checks that at least that much monotonic time passed.
 * CLOCK_REALTIME must be after 2020-01-01 (checked every 100 iterations).
 * Output has no times in it: "tick N ok" every 100 iterations, final "clock ok".
 * On an inconsistency: "FAIL: ..." on stderr, exit 3.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) {
        fprintf(stderr, "FAIL: clock_gettime\n");
        exit(3);
    }
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(const char *why, long n, long long a, long long b) {
    fprintf(stderr, "FAIL: %s at iteration %ld (%lld, %lld)\n", why, n, a, b);
    exit(3);
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 2000;
    long sleep_us = argc > 2 ? atol(argv[2]) : 100;
    setvbuf(stdout, NULL, _IONBF, 0);
    const int64_t y2020 = 1577836800LL * 1000000000;

    int64_t prev = now_ns(CLOCK_MONOTONIC);
    for (long i = 1; i <= iterations; i++) {
        int64_t t = now_ns(CLOCK_MONOTONIC);
        if (t < prev) fail("monotonic clock went backwards", i, prev, t);
        prev = t;
        if (i % 10 == 0 && sleep_us > 0) {
            struct timespec req = { sleep_us / 1000000, (sleep_us % 1000000) * 1000 };
            if (nanosleep(&req, NULL) != 0) fail("nanosleep failed", i, 0, 0);
            int64_t after = now_ns(CLOCK_MONOTONIC);
            if (after - t < (int64_t)sleep_us * 1000) fail("slept too little (ns)", i, after - t, sleep_us * 1000LL);
            prev = after;
        }
        if (i % 100 == 0) {
            int64_t wall = now_ns(CLOCK_REALTIME);
            if (wall < y2020) fail("realtime clock before 2020", i, wall, y2020);
            printf("tick %ld ok\n", i);
        }
    }
    printf("clock ok\n");
    return 0;
}
