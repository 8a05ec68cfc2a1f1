/*
 * bad-import.c - a module that imports a function outside WASI.
 *
 * Usage: bad-import
 *
 * Declares and calls env.launch_missiles(int). Ferry must refuse to load it
 * (or fail cleanly at instantiation); it should never get to run. If a host did
 * provide the import, it would print "launch_missiles returned N".
 */
#include <stdio.h>

__attribute__((import_module("env"), import_name("launch_missiles"))) int launch_missiles(int);

int main(int argc, char **argv) {
    (void)argv;
    printf("about to launch\n");
    fflush(stdout);
    int r = launch_missiles(argc);
    printf("launch_missiles returned %d\n", r);
    return 0;
}
