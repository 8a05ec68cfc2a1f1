/*
 * spin.c - a CPU loop with no system call inside it.
 *
 * Usage: spin [iterations=200000000]
 *
 * Prints "start", runs a xorshift64* / multiply-rotate mix for `iterations`
 * steps (the count comes from argv so the compiler cannot fold the loop), then
 * prints "result <16 hex digits>".
 * Built twice: spin.wasm (Asyncify only: no migration point inside the loop) and
 * spin-preemptible.wasm (--log-execution before --asyncify: the loop head calls
 * env.log_execution, which is a migration point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    unsigned long long iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000000ull;
    printf("start\n");
    fflush(stdout);

    uint64_t s = 0x2545F4914F6CDD1Dull, acc = 0;
    for (unsigned long long i = 0; i < iterations; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t v = s * 0x2545F4914F6CDD1Dull;
        acc = ((acc << 7) | (acc >> 57)) ^ (v + i);
    }
    printf("result %016llx\n", (unsigned long long)acc);
    return 0;
}
