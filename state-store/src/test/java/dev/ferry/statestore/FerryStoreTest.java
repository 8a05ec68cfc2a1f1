package dev.ferry.statestore;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class FerryStoreTest {
  private static final long MAP_SIZE = 2L << 30;

  @TempDir Path tmp;
  private Path dir;
  private FerryStore store;

  @BeforeEach
  void openStore() {
    dir = tmp.resolve("store");
    store = FerryStore.open(dir, MAP_SIZE);
  }

  @AfterEach
  void closeStore() {
    store.close();
  }

  private static byte[] bytes(String s) {
    return s.getBytes(UTF_8);
  }

  private static byte[] random(int size, long seed) {
    byte[] data = new byte[size];
    new Random(seed).nextBytes(data);
    return data;
  }

  @Test
  void putsGetsAndDeletesAValue() {
    Table modules = store.table(TableName.MODULES);

    modules.put("sha256:abc", bytes("wasm"));

    assertArrayEquals(bytes("wasm"), modules.get("sha256:abc").orElseThrow());
    assertTrue(modules.contains("sha256:abc"));
    assertEquals(4, modules.valueSize("sha256:abc"));
    assertTrue(modules.delete("sha256:abc"));
    assertEquals(Optional.empty(), modules.get("sha256:abc"));
    assertFalse(modules.contains("sha256:abc"));
    assertFalse(modules.delete("sha256:abc"));
  }

  @Test
  void reportsAMissingKeyAsEmptyWithSizeMinusOne() {
    Table meta = store.table(TableName.META);

    assertTrue(meta.get("nope").isEmpty());
    assertEquals(-1, meta.valueSize("nope"));
  }

  @Test
  void overwritingAValueReplacesIt() {
    Table meta = store.table(TableName.META);

    meta.put("k", bytes("first, longer value"));
    meta.put("k", bytes("second"));

    assertArrayEquals(bytes("second"), meta.get("k").orElseThrow());
    assertEquals(List.of("k"), meta.keys());
  }

  @Test
  void storesAnEmptyValue() {
    Table meta = store.table(TableName.META);

    meta.put("empty", new byte[0]);

    assertArrayEquals(new byte[0], meta.get("empty").orElseThrow());
    assertEquals(0, meta.valueSize("empty"));
  }

  @Test
  void listsKeysSortedAndByPrefix() {
    Table pages = store.table(TableName.PAGES);
    for (String key : List.of("b", "a/2", "ab", "a", "c", "a/1")) {
      pages.put(key, bytes(key));
    }

    assertEquals(List.of("a", "a/1", "a/2", "ab", "b", "c"), pages.keys());
    assertEquals(List.of("a", "a/1", "a/2", "ab"), pages.keys("a"));
    assertEquals(List.of("a/1", "a/2"), pages.keys("a/"));
    assertEquals(List.of(), pages.keys("z"));
    assertEquals(pages.keys(), pages.keys(""));
  }

  @Test
  void keepsTablesApart() {
    store.table(TableName.IMAGES).put("p1", bytes("image"));
    store.table(TableName.PROCESSES).put("p1", bytes("process"));

    assertArrayEquals(bytes("image"), store.table(TableName.IMAGES).get("p1").orElseThrow());
    assertArrayEquals(bytes("process"), store.table(TableName.PROCESSES).get("p1").orElseThrow());
    assertEquals(List.of(), store.table(TableName.TRACES).keys());
  }

  @Test
  void rejectsEmptyOverlongAndMalformedKeys() {
    Table meta = store.table(TableName.META);

    assertThrows(IllegalArgumentException.class, () -> meta.put("", bytes("x")));
    assertThrows(IllegalArgumentException.class, () -> meta.put("k".repeat(501), bytes("x")));
    assertThrows(IllegalArgumentException.class, () -> meta.put("bad\uD800", bytes("x")));
    meta.put("k".repeat(500), bytes("x"));
    assertTrue(meta.contains("k".repeat(500)));
  }

  @ParameterizedTest
  @ValueSource(
      ints = {
        LmdbTable.CHUNK_BYTES - 2,
        LmdbTable.CHUNK_BYTES - 1,
        LmdbTable.CHUNK_BYTES,
        LmdbTable.CHUNK_BYTES + 1,
        2 * LmdbTable.CHUNK_BYTES,
        2 * LmdbTable.CHUNK_BYTES + 1
      })
  void roundTripsValuesAroundTheChunkSize(int size) {
    byte[] value = random(size, size);
    Table images = store.table(TableName.IMAGES);

    images.put("v", value);

    assertArrayEquals(value, images.get("v").orElseThrow());
    assertEquals(size, images.valueSize("v"));
    assertEquals(List.of("v"), images.keys());
  }

  @Test
  void roundTripsA300MiBValueAndFreesItsChunksOnDelete() throws Exception {
    Table images = store.table(TableName.IMAGES);
    LmdbTable table = (LmdbTable) images;
    byte[] image = random(300 << 20, 42);

    images.put("p1/image", image);
    long fileAfterFirstPut = Files.size(dir.resolve("data.mdb"));

    assertEquals(image.length, images.valueSize("p1/image"));
    assertEquals(List.of("p1/image"), images.keys());
    assertTrue(table.chunkEntries() > 0);
    byte[] read = images.get("p1/image").orElseThrow();
    assertArrayEquals(image, read);
    read = null;

    assertTrue(images.delete("p1/image"));
    assertEquals(0, table.chunkEntries());
    assertFalse(images.contains("p1/image"));

    // LMDB reuses pages freed two commits back: the same image again must not double the file.
    store.table(TableName.META).put("tick", new byte[1]);
    images.put("p2/image", image);
    long fileAfterSecondPut = Files.size(dir.resolve("data.mdb"));
    assertTrue(
        fileAfterSecondPut < fileAfterFirstPut + (fileAfterFirstPut >> 3),
        () -> "file grew from " + fileAfterFirstPut + " to " + fileAfterSecondPut);
  }

  @Test
  void overwritingALargeValueLeavesNoStaleChunks() {
    Table images = store.table(TableName.IMAGES);
    LmdbTable table = (LmdbTable) images;

    images.put("v", random(5 << 20, 1));
    long fiveMiBChunks = table.chunkEntries();
    byte[] smaller = random(2 << 20, 2);
    images.put("v", smaller);

    assertTrue(table.chunkEntries() < fiveMiBChunks);
    assertArrayEquals(smaller, images.get("v").orElseThrow());
    images.put("v", bytes("small"));
    assertEquals(0, table.chunkEntries());
    assertArrayEquals(bytes("small"), images.get("v").orElseThrow());
  }

  @Test
  void aStagedValueIsInvisibleUntilPublishedThenReadsBackWhole() {
    Table images = store.table(TableName.IMAGES);
    byte[] around = random((5 << 20) + 100, 7);
    int offset = 37;
    int length = (5 << 20) + 11;
    StagedValue v = images.stage("p1", length);
    assertEquals(6, v.pieces());
    // Out of order, as a spooler that falls behind might not, but may.
    for (int i = v.pieces() - 1; i >= 0; i--) {
      assertFalse(v.complete());
      v.writePiece(i, around, offset + i * v.pieceBytes());
      assertFalse(images.contains("p1"), "a staged value is invisible until published");
    }
    assertTrue(v.complete());
    assertThrows(IllegalStateException.class, () -> v.writePiece(0, around, offset));

    store.write(b -> b.putStaged(v));
    assertArrayEquals(
        java.util.Arrays.copyOfRange(around, offset, offset + length),
        images.get("p1").orElseThrow());
    store.close(); // a published value is the key's, like any other: kept when opened again
    store = FerryStore.open(dir, MAP_SIZE);
    images = store.table(TableName.IMAGES);
    assertArrayEquals(
        java.util.Arrays.copyOfRange(around, offset, offset + length),
        images.get("p1").orElseThrow());
    assertEquals(length, images.valueSize("p1"));
    v.discard(); // published: nothing to discard
    assertTrue(images.contains("p1"));
    assertTrue(images.delete("p1"));
    assertEquals(0, ((LmdbTable) images).chunkEntries());
  }

  @Test
  void aStoreOfTheFormatBeforeStagedValuesIsOpenedAndMarkedAsTheNewOne() {
    store.table(TableName.META).put("kept", bytes("yes"));
    store.close();
    try (org.lmdbjava.Env<java.nio.ByteBuffer> env =
        org.lmdbjava.Env.create()
            .setMaxDbs(64)
            .setMapSize(MAP_SIZE)
            .open(dir.toFile(), org.lmdbjava.EnvFlags.MDB_NOTLS)) {
      org.lmdbjava.Dbi<java.nio.ByteBuffer> format = env.openDbi("format");
      java.nio.ByteBuffer key = java.nio.ByteBuffer.allocateDirect(6).put(bytes("format")).flip();
      java.nio.ByteBuffer one = java.nio.ByteBuffer.allocateDirect(4).putInt(0, 1);
      format.put(key, one);
    }
    store = FerryStore.open(dir, MAP_SIZE);
    assertArrayEquals(bytes("yes"), store.table(TableName.META).get("kept").orElseThrow());
    store.close();
    store = FerryStore.open(dir, MAP_SIZE); // and again, now as format 2
    assertArrayEquals(bytes("yes"), store.table(TableName.META).get("kept").orElseThrow());
  }

  @Test
  void aStagedValueThatIsNotPublishedLeavesNothing() {
    final Table images = store.table(TableName.IMAGES);
    LmdbTable table = (LmdbTable) images;
    byte[] data = random(3 << 20, 8);
    images.put("old", random(2 << 20, 9));
    long before = table.chunkEntries();

    assertThrows(IllegalStateException.class, () -> images.stage("old", data.length));
    StagedValue v = images.stage("p2", data.length);
    v.writePiece(0, data, 0);
    // A missing piece: the batch fails and writes nothing.
    assertThrows(
        IllegalStateException.class,
        () ->
            store.write(
                b -> {
                  b.put(TableName.META, "marker", bytes("x"));
                  b.putStaged(v);
                }));
    assertFalse(store.table(TableName.META).contains("marker"));
    assertFalse(images.contains("p2"));
    v.discard();
    assertEquals(before, table.chunkEntries());
    assertThrows(IllegalStateException.class, () -> v.writePiece(1, data, 0));

    // A batch that publishes a whole staged value and then fails publishes nothing: the pieces
    // are still the staged value's, to discard.
    StagedValue u = images.stage("p5", data.length);
    for (int i = 0; i < u.pieces(); i++) {
      u.writePiece(i, data, i * u.pieceBytes());
    }
    assertThrows(
        IllegalStateException.class,
        () ->
            store.write(
                b -> {
                  b.putStaged(u);
                  throw new IllegalStateException("the batch fails after publishing");
                }));
    assertFalse(images.contains("p5"));
    u.discard();
    assertEquals(before, table.chunkEntries(), "the pieces of a batch that failed are left");

    // Two stagings of one key (a migration tried again while the first one's pieces are being
    // removed) write different chunks: discarding one leaves the other whole.
    byte[] other = random(3 << 20, 10);
    StagedValue first = images.stage("p4", data.length);
    StagedValue second = images.stage("p4", other.length);
    for (int i = 0; i < first.pieces(); i++) {
      first.writePiece(i, data, i * first.pieceBytes());
      second.writePiece(i, other, i * second.pieceBytes());
    }
    store.write(b -> b.putStaged(second));
    first.discard();
    assertArrayEquals(other, images.get("p4").orElseThrow());
    assertThrows(IllegalStateException.class, () -> store.write(b -> b.putStaged(first)));
    assertTrue(images.delete("p4"));

    // Pieces of a value staged when the store closed are gone when it is opened again.
    StagedValue w = images.stage("p3", data.length);
    w.writePiece(0, data, 0);
    w.writePiece(2, data, 2 * w.pieceBytes());
    store.close();
    store = FerryStore.open(dir, MAP_SIZE);
    Table reopened = store.table(TableName.IMAGES);
    assertEquals(before, ((LmdbTable) reopened).chunkEntries());
    assertFalse(reopened.contains("p3"));
    assertEquals(2 << 20, reopened.get("old").orElseThrow().length, "other values are untouched");
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 17, LmdbTable.CHUNK_BYTES - 2, LmdbTable.CHUNK_BYTES + 1, 3 << 20})
  void storesASliceOfABufferWithoutMovingIt(int size) {
    byte[] around = random(size + 40, size);
    java.nio.ByteBuffer slice = java.nio.ByteBuffer.wrap(around, 25, size).asReadOnlyBuffer();

    store.write(batch -> batch.put(TableName.IMAGES, "s", slice));

    assertArrayEquals(
        java.util.Arrays.copyOfRange(around, 25, 25 + size),
        store.table(TableName.IMAGES).get("s").orElseThrow());
    assertEquals(25, slice.position());
    assertEquals(25 + size, slice.limit());
  }

  @Test
  void commitsABatchAcrossTablesAtomically() {
    store.table(TableName.META).put("old", bytes("x"));
    byte[] image = random(3 << 20, 3);

    store.write(
        batch -> {
          batch.put(TableName.IMAGES, "p1", image);
          batch.put(TableName.MIGRATIONS, "m1", bytes("committed"));
          batch.delete(TableName.META, "old");
        });

    assertArrayEquals(image, store.table(TableName.IMAGES).get("p1").orElseThrow());
    assertArrayEquals(
        bytes("committed"), store.table(TableName.MIGRATIONS).get("m1").orElseThrow());
    assertFalse(store.table(TableName.META).contains("old"));
  }

  @Test
  void aBatchThatThrowsMidwayWritesNothing() {
    store.table(TableName.META).put("keep", bytes("x"));
    RuntimeException failure = new IllegalStateException("destination died");

    RuntimeException thrown =
        assertThrows(
            RuntimeException.class,
            () ->
                store.write(
                    batch -> {
                      batch.put(TableName.IMAGES, "p1", random(3 << 20, 4));
                      batch.put(TableName.MIGRATIONS, "m1", bytes("committed"));
                      batch.delete(TableName.META, "keep");
                      throw failure;
                    }));

    assertSame(failure, thrown);
    assertFalse(store.table(TableName.IMAGES).contains("p1"));
    assertEquals(0, ((LmdbTable) store.table(TableName.IMAGES)).chunkEntries());
    assertFalse(store.table(TableName.MIGRATIONS).contains("m1"));
    assertTrue(store.table(TableName.META).contains("keep"));
  }

  @Test
  void callsInsideABatchJoinItsTransaction() {
    Table meta = store.table(TableName.META);
    AtomicReference<Optional<byte[]>> seenInside = new AtomicReference<>();

    assertThrows(
        IllegalStateException.class,
        () ->
            store.write(
                batch -> {
                  meta.put("joined", bytes("yes"));
                  store.logs().append("p1", 1, bytes("out"), 0, 3);
                  seenInside.set(meta.get("joined"));
                  throw new IllegalStateException("roll back");
                }));

    assertArrayEquals(bytes("yes"), seenInside.get().orElseThrow());
    assertFalse(meta.contains("joined"));
    assertEquals(0, store.logs().length("p1", 1));
  }

  @Test
  void aBatchCannotBeUsedAfterItsCallback() {
    AtomicReference<WriteBatch> leaked = new AtomicReference<>();
    store.write(leaked::set);

    assertThrows(
        IllegalStateException.class, () -> leaked.get().put(TableName.META, "k", bytes("v")));
  }

  @Test
  void seesEverythingAfterCloseAndReopen() {
    byte[] image = random(5 << 20, 5);
    store.table(TableName.IMAGES).put("p1", image);
    store.table(TableName.MODULES).put("m", bytes("module"));
    store.write(batch -> batch.put(TableName.MIGRATIONS, "m1", bytes("done")));
    store.logs().append("p1", 1, bytes("hello\n"), 0, 6);
    store.sync();
    store.close();

    store = FerryStore.open(dir, MAP_SIZE);

    assertArrayEquals(image, store.table(TableName.IMAGES).get("p1").orElseThrow());
    assertArrayEquals(bytes("module"), store.table(TableName.MODULES).get("m").orElseThrow());
    assertArrayEquals(bytes("done"), store.table(TableName.MIGRATIONS).get("m1").orElseThrow());
    assertArrayEquals(bytes("hello\n"), store.logs().read("p1", 1, 0, 100));
  }

  /**
   * roomAtMost never promises less than what fits (a node refuses a migration at once when its
   * bundle is larger), shrinks as the store fills and grows back when values are deleted.
   */
  @Test
  void roomAtMostIsAnUpperBoundOfWhatStillFits() {
    try (FerryStore small = FerryStore.open(tmp.resolve("room"), 16 << 20)) {
      Table images = small.table(TableName.IMAGES);
      long empty = small.roomAtMost();
      assertTrue(empty > 15 << 20 && empty <= 16 << 20, "an empty 16 MiB store: " + empty);
      long written = 0;
      int i = 0;
      try {
        while (true) {
          images.put("v" + i, random(1 << 20, i));
          written += 1 << 20;
          i++;
          assertTrue(small.roomAtMost() <= empty - written, "after " + written + " bytes");
        }
      } catch (StoreFullException full) {
        // as much as fits
      }
      assertTrue(written > 10 << 20 && written <= empty, written + " fit, room was " + empty);
      long full = small.roomAtMost();
      assertTrue(full < 2 << 20, "room when full: " + full);
      for (int k = 0; k < i; k++) {
        images.delete("v" + k);
      }
      assertTrue(small.roomAtMost() > 14 << 20, "after deleting: " + small.roomAtMost());
    }
  }

  @Test
  void aFullMapGivesStoreFullExceptionAndSmallerWritesStillWork() {
    try (FerryStore small = FerryStore.open(tmp.resolve("small"), 1 << 20)) {
      Table images = small.table(TableName.IMAGES);

      StoreFullException e =
          assertThrows(StoreFullException.class, () -> images.put("big", random(2 << 20, 6)));

      assertTrue(e.getMessage().startsWith("store full: "), e::getMessage);
      assertTrue(e.getMessage().contains("increase ferry.store.map-size"), e::getMessage);
      assertFalse(images.contains("big"));
      images.put("small", bytes("fits"));
      assertArrayEquals(bytes("fits"), images.get("small").orElseThrow());
      assertThrows(
          StoreFullException.class,
          () -> small.write(batch -> batch.put(TableName.PAGES, "big", random(2 << 20, 7))));
      AtomicReference<RuntimeException> seenInside = new AtomicReference<>();
      assertThrows(
          StoreFullException.class,
          () ->
              small.write(
                  batch -> {
                    try {
                      images.put("joined", random(2 << 20, 8));
                    } catch (RuntimeException failure) {
                      seenInside.set(failure);
                      throw failure;
                    }
                  }));
      assertInstanceOf(StoreFullException.class, seenInside.get());
      small.logs().append("p", 1, bytes("still works"), 0, 11);
      assertEquals(11, small.logs().length("p", 1));
      small.sync();
    }
  }

  /**
   * An incoming image that does not fit: its pieces fill the store until one fails; discarding them
   * must give the room back, so that the next value that fits is stored.
   */
  @Test
  void aStagedValueThatFilledTheStoreGivesItsRoomBackWhenDiscarded() {
    try (FerryStore small = FerryStore.open(tmp.resolve("small"), 16 << 20)) {
      Table images = small.table(TableName.IMAGES);
      byte[] big = random(24 << 20, 11);
      StagedValue v = images.stage("big", big.length);
      int written = 0;
      StoreFullException full = null;
      for (int i = 0; i < v.pieces() && full == null; i++) {
        try {
          v.writePiece(i, big, i * v.pieceBytes());
          written++;
        } catch (StoreFullException e) {
          full = e;
        }
      }
      assertNotNull(full, "24 MiB of pieces fitted into a 16 MiB store");
      assertTrue(written >= 8, "only " + written + " pieces fitted");
      v.discard();
      small.sync();

      // (LMDB's own pages take a little of it: a few more copy-on-write pages each transaction)
      byte[] fits = random((written - 2) * v.pieceBytes(), 12);
      StagedValue w = images.stage("fits", fits.length);
      for (int i = 0; i < w.pieces(); i++) {
        w.writePiece(i, fits, i * w.pieceBytes());
      }
      small.write(b -> b.putStaged(w));
      assertArrayEquals(fits, images.get("fits").orElseThrow());
    }
  }

  @Test
  void aStoreAllowedToGrowTakesWhatDoesNotFitAndKeepsItWhenOpenedSmallerAgain() {
    Path small = tmp.resolve("grows");
    byte[] big = random(40 << 20, 13);
    try (FerryStore s = FerryStore.open(small, 16 << 20)) {
      assertThrows(StoreFullException.class, () -> s.table(TableName.IMAGES).put("big", big));
      s.growWhenFull();
      s.table(TableName.IMAGES).put("big", big);
    }
    try (FerryStore s = FerryStore.open(small, 16 << 20)) {
      assertArrayEquals(big, s.table(TableName.IMAGES).get("big").orElseThrow());
    }
  }

  @Test
  void refusesToOpenTheSameDirectoryTwice() {
    StoreException e = assertThrows(StoreException.class, () -> FerryStore.open(dir, MAP_SIZE));

    assertTrue(e.getMessage().contains("already open"), e::getMessage);
  }

  @Test
  void failsCleanlyAfterClose() {
    Table meta = store.table(TableName.META);
    store.close();

    assertThrows(StoreException.class, () -> meta.get("k"));
    assertThrows(StoreException.class, () -> meta.put("k", bytes("v")));
    assertThrows(StoreException.class, () -> store.logs().length("p", 1));
    assertThrows(StoreException.class, store::sync);
    store.close();
  }

  @Test
  void refusesToCloseFromInsideABatch() {
    assertThrows(IllegalStateException.class, () -> store.write(batch -> store.close()));

    store.table(TableName.META).put("still", bytes("open"));
  }

  @Test
  void servesManyThreadsReadingAndWritingAtOnce() throws Exception {
    int threads = 8;
    int perThread = 300;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int id = t;
        futures.add(
            pool.submit(
                () -> {
                  Table processes = store.table(TableName.PROCESSES);
                  for (int i = 0; i < perThread; i++) {
                    String key = "t" + id + "/" + i;
                    byte[] value = bytes(key.repeat(1 + i % 7));
                    if (i % 50 == 0) {
                      store.write(batch -> batch.put(TableName.PROCESSES, key, value));
                    } else {
                      processes.put(key, value);
                    }
                    assertArrayEquals(value, processes.get(key).orElseThrow());
                    store.logs().append("shared", 1, bytes(String.format("%08d", id)), 0, 8);
                    processes.keys("t" + id + "/");
                  }
                }));
      }
      for (Future<?> future : futures) {
        future.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }

    assertEquals(threads * perThread, store.table(TableName.PROCESSES).keys().size());
    long length = store.logs().length("shared", 1);
    assertEquals((long) threads * perThread * 8, length);
    byte[] log = store.logs().read("shared", 1, 0, (int) length);
    int[] counts = new int[threads];
    for (int i = 0; i < log.length; i += 8) {
      counts[Integer.parseInt(new String(log, i, 8, UTF_8))]++;
    }
    for (int count : counts) {
      assertEquals(perThread, count);
    }
  }
}
