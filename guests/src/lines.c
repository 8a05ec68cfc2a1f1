/*
 * lines.c - a fast stream of numbered stdout lines, with some stderr.
 *
 * Usage: lines [count=100000] [stderr_every=1000] [unbuffered]
 *
 * Prints "line NNNNNN <32 hex chars>" for N = 1..count (payload derived from N),
 * every stderr_every lines also "err NNNNNNNNN" on stderr (0 = never), and
 * finally "end <count>". stdout uses normal stdio buffering (flushed at exit);
 * with a third argument "unbuffered" every line is its own fd_write.
 * This module is also kept uninstrumented as lines.plain.wasm.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 100000;
    long stderr_every = argc > 2 ? atol(argv[2]) : 1000;
    if (argc > 3 && strcmp(argv[3], "unbuffered") == 0) setvbuf(stdout, NULL, _IONBF, 0);

    for (long n = 1; n <= count; n++) {
        uint64_t x = (uint64_t)n * 0x9E3779B97F4A7C15ull;
        x ^= x >> 31;
        uint64_t y = x * 0xBF58476D1CE4E5B9ull;
        y ^= y >> 29;
        printf("line %06ld %016llx%016llx\n", n, (unsigned long long)x, (unsigned long long)y);
        if (stderr_every > 0 && n % stderr_every == 0) fprintf(stderr, "err %09ld\n", n);
    }
    printf("end %ld\n", count);
    return 0;
}
