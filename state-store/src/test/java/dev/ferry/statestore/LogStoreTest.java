package dev.ferry.statestore;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LogStoreTest {
  private static final int STDOUT = 1;
  private static final int STDERR = 2;

  @TempDir Path tmp;
  private FerryStore store;
  private LogStore logs;

  @BeforeEach
  void openStore() {
    store = FerryStore.open(tmp.resolve("store"), 256L << 20);
    logs = store.logs();
  }

  @AfterEach
  void closeStore() {
    store.close();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(UTF_8);
  }

  private long append(String pid, int stream, String text) {
    byte[] data = bytes(text);
    return logs.append(pid, stream, data, 0, data.length);
  }

  private byte[] readAll(String pid, int stream) {
    return logs.read(pid, stream, 0, Integer.MAX_VALUE);
  }

  @Test
  void appendReturnsTheNewLengthAndReadReturnsTheBytes() {
    assertEquals(6, append("p1", STDOUT, "hello\n"));
    assertEquals(12, append("p1", STDOUT, "world\n"));

    assertEquals(12, logs.length("p1", STDOUT));
    assertArrayEquals(bytes("hello\nworld\n"), readAll("p1", STDOUT));
    assertArrayEquals(bytes("lo\nwo"), logs.read("p1", STDOUT, 3, 5));
  }

  @Test
  void appendsOnlyTheGivenSliceOfTheArray() {
    byte[] data = bytes("xxhelloxx");

    assertEquals(5, logs.append("p1", STDOUT, data, 2, 5));

    assertArrayEquals(bytes("hello"), readAll("p1", STDOUT));
    assertEquals(5, logs.append("p1", STDOUT, data, 0, 0));
  }

  @Test
  void readsAcrossChunkBoundaries() {
    Random random = new Random(7);
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    while (expected.size() < 100_000) {
      byte[] piece = new byte[1 + random.nextInt(random.nextBoolean() ? 60 : 5000)];
      random.nextBytes(piece);
      expected.writeBytes(piece);
      assertEquals(expected.size(), logs.append("p1", STDOUT, piece, 0, piece.length));
    }
    byte[] all = expected.toByteArray();

    assertArrayEquals(all, readAll("p1", STDOUT));
    for (int i = 0; i < 500; i++) {
      int offset = random.nextInt(all.length);
      int max = random.nextInt(3 * LmdbLogStore.CHUNK_BYTES);
      byte[] want = Arrays.copyOfRange(all, offset, Math.min(all.length, offset + max));
      assertArrayEquals(want, logs.read("p1", STDOUT, offset, max), "offset " + offset);
    }
    for (int boundary = 0; boundary < all.length; boundary += LmdbLogStore.CHUNK_BYTES) {
      byte[] want = Arrays.copyOfRange(all, boundary, Math.min(all.length, boundary + 10));
      assertArrayEquals(want, logs.read("p1", STDOUT, boundary, 10));
    }
  }

  @Test
  void aLargeAppendIsReadBackWhole() {
    byte[] big = new byte[3 << 20];
    new Random(8).nextBytes(big);
    append("p1", STDOUT, "head");

    assertEquals(4 + big.length, logs.append("p1", STDOUT, big, 0, big.length));

    byte[] all = readAll("p1", STDOUT);
    assertArrayEquals(bytes("head"), Arrays.copyOf(all, 4));
    assertArrayEquals(big, Arrays.copyOfRange(all, 4, all.length));
  }

  @Test
  void readAtOrPastTheEndReturnsNoBytes() {
    append("p1", STDOUT, "abc");

    assertEquals(0, logs.read("p1", STDOUT, 3, 100).length);
    assertEquals(0, logs.read("p1", STDOUT, 1000, 100).length);
    assertEquals(0, logs.read("p1", STDOUT, 0, 0).length);
    assertEquals(0, logs.read("unknown", STDOUT, 0, 100).length);
    assertEquals(0, logs.length("unknown", STDOUT));
  }

  @Test
  void truncateThenAppendContinuesWithoutRepeatingBytes() {
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 1000; i++) {
      text.append(String.format(Locale.ROOT, "line %04d\n", i));
    }
    append("p1", STDOUT, text.toString());

    logs.truncate("p1", STDOUT, 4321);
    assertEquals(4321, logs.length("p1", STDOUT));
    assertEquals(4321 + 8, append("p1", STDOUT, "resumed\n"));

    assertArrayEquals(bytes(text.substring(0, 4321) + "resumed\n"), readAll("p1", STDOUT));
  }

  @Test
  void truncatesAtAChunkBoundaryToZeroAndNotPastTheEnd() {
    byte[] data = new byte[5 * LmdbLogStore.CHUNK_BYTES];
    new Random(9).nextBytes(data);
    logs.append("p1", STDOUT, data, 0, data.length);

    logs.truncate("p1", STDOUT, 2L * LmdbLogStore.CHUNK_BYTES);
    assertArrayEquals(Arrays.copyOf(data, 2 * LmdbLogStore.CHUNK_BYTES), readAll("p1", STDOUT));
    logs.truncate("p1", STDOUT, 1_000_000);
    assertEquals(2L * LmdbLogStore.CHUNK_BYTES, logs.length("p1", STDOUT));
    logs.truncate("p1", STDOUT, 0);
    assertEquals(0, logs.length("p1", STDOUT));
    assertEquals(3, append("p1", STDOUT, "new"));
    assertArrayEquals(bytes("new"), readAll("p1", STDOUT));
  }

  @Test
  void keepsStreamsAndProcessesApart() {
    append("p", STDOUT, "p-out");
    append("p", STDERR, "p-err");
    append("p2", STDOUT, "p2-out");
    append("p\u0000", STDOUT, "nul-out");
    append("p", 0, "p-0");
    append("p", 255, "p-255");

    assertArrayEquals(bytes("p-out"), readAll("p", STDOUT));
    assertArrayEquals(bytes("p-err"), readAll("p", STDERR));
    assertArrayEquals(bytes("p2-out"), readAll("p2", STDOUT));
    assertArrayEquals(bytes("nul-out"), readAll("p\u0000", STDOUT));
    assertArrayEquals(bytes("p-0"), readAll("p", 0));
    assertArrayEquals(bytes("p-255"), readAll("p", 255));
    assertEquals(5, logs.length("p", STDOUT));
  }

  @Test
  void deleteRemovesEveryStreamOfOneProcessOnly() {
    append("p", STDOUT, "out");
    append("p", STDERR, "err");
    append("p2", STDOUT, "other");

    logs.delete("p");

    assertEquals(0, logs.length("p", STDOUT));
    assertEquals(0, logs.length("p", STDERR));
    assertArrayEquals(bytes("other"), readAll("p2", STDOUT));
  }

  @Test
  void rejectsBadArguments() {
    byte[] data = bytes("abc");

    assertThrows(IllegalArgumentException.class, () -> logs.append("p", 256, data, 0, 3));
    assertThrows(IllegalArgumentException.class, () -> logs.append("p", -1, data, 0, 3));
    assertThrows(IllegalArgumentException.class, () -> logs.append("", 1, data, 0, 3));
    assertThrows(IndexOutOfBoundsException.class, () -> logs.append("p", 1, data, 2, 2));
    assertThrows(IllegalArgumentException.class, () -> logs.read("p", 1, -1, 10));
    assertThrows(IllegalArgumentException.class, () -> logs.truncate("p", 1, -1));
  }

  @Test
  void keepsUpWithAHundredThousandSmallAppends() {
    int appends = 100_000;
    byte[][] lines = new byte[appends][];
    for (int i = 0; i < appends; i++) {
      lines[i] = bytes(String.format(Locale.ROOT, "%06d the quick brown fox jumps over\n", i));
    }
    long total = 0;

    long start = System.nanoTime();
    for (byte[] line : lines) {
      total = logs.append("busy", STDOUT, line, 0, line.length);
    }
    long elapsed = System.nanoTime() - start;
    store.sync();

    System.out.printf(
        Locale.ROOT,
        "append throughput: %d appends of %d bytes in %.2f s = %.0f appends/s (%.1f us each)%n",
        appends,
        lines[0].length,
        elapsed / 1e9,
        appends / (elapsed / 1e9),
        elapsed / 1e3 / appends);
    assertEquals((long) appends * lines[0].length, total);
    byte[] all = readAll("busy", STDOUT);
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    for (byte[] line : lines) {
      expected.writeBytes(line);
    }
    assertArrayEquals(expected.toByteArray(), all);
  }
}
