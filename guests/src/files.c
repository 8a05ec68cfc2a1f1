/*
 * files.c - one file through several descriptors, with offset checks.
 *
 * Usage: files [rounds=50]    (1..1000000)
 *
 * The guest sees its sandbox directory preopened as "/" and uses absolute paths
 * (so it works from any cwd). It creates /data and keeps an in-memory model of
 * /data/a.txt and /data/b.bin; every read is compared with the model and every
 * descriptor position (lseek(fd, 0, SEEK_CUR)) with the expected one:
 *   fd A: /data/a.txt O_WRONLY|O_APPEND - appends one 32-byte record per round
 *   fd B: /data/a.txt O_RDWR            - lseek + read of a record field, and a
 *                                         pwrite that must not move its position
 *   fd C: /data/a.txt O_RDONLY          - sequential reader + pread
 *   fd D: /data/b.bin O_RDWR            - binary records: write, pwrite, pread
 * Every 5th round a temp file is written, renamed, read back and unlinked.
 * Prints "round N pos A B C ok" per round; if /in.txt exists, first prints
 * "in.txt length L checksum XXXXXXXX". Final line "files ok".
 * More than LAP (10000) rounds run in laps of LAP rounds (the last one shorter):
 * each further lap prints "lap K", truncates both files and reopens the four
 * descriptors, and starts the records and positions over (round numbers go on),
 * so the files never hold more than LAP records. Both files are checked through
 * fresh descriptors at the end of every lap.
 * Leaves /data/a.txt and /data/b.bin with deterministic content: that of a run of
 * the last lap's number of rounds.
 * On an inconsistency: "FAIL: ..." on stderr, exit 3.
 *
 * Compile with -DROOT='"/some/dir/"' to run natively against another directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ROOT
#define ROOT "/"
#endif
#define REC 32
#define BREC 16
#define LAP 10000          /* rounds per lap: the most records the files hold */
#define MAX_ROUNDS 1000000 /* over the whole run */

static char model_a[REC * LAP];
static unsigned char model_b[BREC * LAP];

static void fail(const char *why, int round, long v) {
    fprintf(stderr, "FAIL: %s (round %d, value %ld)\n", why, round, v);
    exit(3);
}

static int open_or_fail(const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd < 0) { fprintf(stderr, "FAIL: open %s: %s\n", path, strerror(errno)); exit(3); }
    return fd;
}

static long pos(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

static void expect_pos(int fd, long want, const char *what, int round) {
    long got = pos(fd);
    if (got != want) fail(what, round, got);
}

/* read() may legally return less than asked: loop until n bytes or EOF */
static long read_all(int fd, void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = read(fd, (char *)buf + done, n - done);
        if (got < 0) return -1;
        if (got == 0) break;
        done += (size_t)got;
    }
    return (long)done;
}

static void read_exact(int fd, void *buf, size_t n, int round) {
    long got = read_all(fd, buf, n);
    if (got != (long)n) fail("short read", round, got);
}

static void check_in_file(void) {
    int fd = open(ROOT "in.txt", O_RDONLY);
    if (fd < 0) return;
    unsigned char buf[4096];
    uint32_t h = 2166136261u;
    long len = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) h = (h ^ buf[i]) * 16777619u;
        len += n;
    }
    close(fd);
    printf("in.txt length %ld checksum %08x\n", len, h);
}

static void temp_file_cycle(int round) {
    char text[64];
    int len = snprintf(text, sizeof text, "temporary %d\n", round);
    int fd = open_or_fail(ROOT "data/tmp.txt", O_WRONLY | O_CREAT | O_TRUNC);
    if (write(fd, text, (size_t)len) != len) fail("temp write", round, 0);
    close(fd);
    if (rename(ROOT "data/tmp.txt", ROOT "data/tmp-renamed.txt") != 0) fail("rename", round, errno);
    struct stat st;
    if (stat(ROOT "data/tmp.txt", &st) == 0 || errno != ENOENT) fail("old name still exists", round, 0);
    char back[64];
    fd = open_or_fail(ROOT "data/tmp-renamed.txt", O_RDONLY);
    if (read_all(fd, back, sizeof back) != len || memcmp(back, text, (size_t)len) != 0)
        fail("temp file content", round, 0);
    close(fd);
    if (unlink(ROOT "data/tmp-renamed.txt") != 0) fail("unlink", round, errno);
}

/*
 * One lap: truncates both files, opens the four descriptors, runs n rounds (n <= LAP;
 * r counts within the lap and makes the records, g = g0 + r over the whole run names
 * the round), closes them and checks both files through fresh descriptors.
 */
static void run_lap(int g0, int n) {
    close(open_or_fail(ROOT "data/a.txt", O_WRONLY | O_CREAT | O_TRUNC));
    int fa = open_or_fail(ROOT "data/a.txt", O_WRONLY | O_APPEND);
    int fb = open_or_fail(ROOT "data/a.txt", O_RDWR);
    int fc = open_or_fail(ROOT "data/a.txt", O_RDONLY);
    int fd = open_or_fail(ROOT "data/b.bin", O_RDWR | O_CREAT | O_TRUNC);

    long size_a = 0, pos_c = 0;
    for (int r = 0; r < n; r++) {
        int g = g0 + r;
        /* A: append a record; an append fd sits at the end after writing */
        char rec[REC + 8]; /* REC + 1 is enough for r < LAP; gcc cannot tell */
        snprintf(rec, sizeof rec, "rec %06d %020u\n", r, (unsigned)(r * 2654435761u));
        if (write(fa, rec, REC) != REC) fail("append write", g, 0);
        memcpy(model_a + size_a, rec, REC);
        size_a += REC;
        expect_pos(fa, size_a, "append fd position", g);

        /* B: seek into a record, read its number field */
        int target = (r * 7) % (r + 1);
        if (lseek(fb, (long)target * REC + 4, SEEK_SET) != (long)target * REC + 4) fail("lseek B", g, 0);
        char num[6];
        read_exact(fb, num, 6, g);
        if (memcmp(num, model_a + target * REC + 4, 6) != 0) fail("read via B", g, target);
        long pos_b = (long)target * REC + 10;
        expect_pos(fb, pos_b, "B position after read", g);
        /* B: pwrite a marker into the separator after the number; position unchanged */
        char mark = (char)('a' + r % 26);
        if (pwrite(fb, &mark, 1, (long)target * REC + 10) != 1) fail("pwrite B", g, 0);
        model_a[target * REC + 10] = mark;
        expect_pos(fb, pos_b, "B position after pwrite", g);

        /* C: sequential reader follows the appends, one record per round */
        char got[REC];
        read_exact(fc, got, REC, g);
        if (memcmp(got, model_a + pos_c, REC) != 0) fail("sequential read via C", g, pos_c);
        pos_c += REC;
        expect_pos(fc, pos_c, "C position after read", g);
        /* C: pread anywhere; position unchanged */
        long off = (long)((r * 40503u) % (unsigned)(size_a - 8));
        if (pread(fc, got, 8, off) != 8 || memcmp(got, model_a + off, 8) != 0) fail("pread C", g, off);
        expect_pos(fc, pos_c, "C position after pread", g);

        /* D: binary records: append one by write, patch an older one by pwrite */
        unsigned char bin[BREC];
        for (int i = 0; i < BREC; i++) bin[i] = (unsigned char)(r * 13 + i * 29);
        if (write(fd, bin, BREC) != BREC) fail("write D", g, 0);
        memcpy(model_b + r * BREC, bin, BREC);
        expect_pos(fd, (long)(r + 1) * BREC, "D position after write", g);
        long poff = (long)((r / 2) * BREC + r % BREC);
        unsigned char patch = (unsigned char)(0xF0 ^ r);
        if (pwrite(fd, &patch, 1, poff) != 1) fail("pwrite D", g, poff);
        model_b[poff] = patch;
        unsigned char back[BREC];
        if (pread(fd, back, BREC, (long)(r / 2) * BREC) != BREC ||
            memcmp(back, model_b + (r / 2) * BREC, BREC) != 0) fail("pread D", g, poff);
        expect_pos(fd, (long)(r + 1) * BREC, "D position after pwrite/pread", g);

        if (g % 5 == 4) temp_file_cycle(g);
        printf("round %d pos %ld %ld %ld ok\n", g, pos(fa), pos(fb), pos(fc));
    }
    close(fa); close(fb); close(fc); close(fd);

    /* check of both files through fresh descriptors */
    static char whole[REC * LAP];
    int f = open_or_fail(ROOT "data/a.txt", O_RDONLY);
    if (read_all(f, whole, sizeof whole) != size_a || memcmp(whole, model_a, (size_t)size_a) != 0)
        fail("final content of a.txt", g0 + n, size_a);
    close(f);
    f = open_or_fail(ROOT "data/b.bin", O_RDONLY);
    if (read_all(f, whole, sizeof whole) != (long)n * BREC ||
        memcmp(whole, model_b, (size_t)n * BREC) != 0) fail("final content of b.bin", g0 + n, 0);
    close(f);
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 50;
    if (rounds < 1 || rounds > MAX_ROUNDS) fail("rounds out of range", 0, rounds);
    setvbuf(stdout, NULL, _IONBF, 0);
    check_in_file();

    if (mkdir(ROOT "data", 0755) != 0 && errno != EEXIST) fail("mkdir /data", 0, errno);
    for (int lap = 0, g = 0; g < rounds; lap++) {
        int n = rounds - g < LAP ? (int)(rounds - g) : LAP;
        if (lap > 0) printf("lap %d\n", lap);
        run_lap(g, n);
        g += n;
    }
    printf("files ok\n");
    return 0;
}
