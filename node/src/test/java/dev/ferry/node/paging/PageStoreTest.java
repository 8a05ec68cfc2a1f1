package dev.ferry.node.paging;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.statestore.FerryStore;
import dev.ferry.strategies.GfvmSettings;
import dev.ferry.transport.proto.Empty;
import dev.ferry.transport.proto.PageList;
import dev.ferry.transport.proto.PageReply;
import dev.ferry.transport.proto.PageRequest;
import dev.ferry.transport.proto.PageWrite;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A node's copies of paging files, and the page channel requests that other nodes send. */
class PageStoreTest {
  static final int PAGE = 4096;
  @TempDir Path dir;
  FerryStore store;
  PageStore pages;

  @BeforeEach
  void open() {
    store = FerryStore.open(dir.resolve("store"), 1L << 30);
    pages = new PageStore(store);
  }

  @AfterEach
  void close() {
    store.close();
  }

  static byte[] page(int fill) {
    byte[] b = new byte[PAGE];
    Arrays.fill(b, (byte) fill);
    return b;
  }

  static byte[] concat(byte[]... parts) {
    byte[] out = new byte[parts.length * PAGE];
    for (int i = 0; i < parts.length; i++) {
      System.arraycopy(parts[i], 0, out, i * PAGE, PAGE);
    }
    return out;
  }

  @Test
  void storesReadsZeroesResetsAndDropsPagesOfOneFileOnly() {
    pages.write(
        "p-1@a", PAGE, new int[] {0, 7}, concat(page(1), page(7)), 0, new int[0], false, true);
    pages.write("p-2@b", PAGE, new int[] {0}, page(9), 0, new int[0], false, true);
    assertArrayEquals(page(7), pages.read("p-1@a", 7));
    assertNull(pages.read("p-1@a", 3), "a page never written reads as zeros (null)");
    assertArrayEquals(new int[] {0, 7}, pages.pages("p-1@a"));
    assertEquals(Set.of("p-1@a", "p-2@b"), pages.files());

    // A page written back as zeros is removed; another written in the same transaction stays.
    pages.write("p-1@a", PAGE, new int[] {3}, page(3), 0, new int[] {7}, false, false);
    assertNull(pages.read("p-1@a", 7));
    assertArrayEquals(new int[] {0, 3}, pages.pages("p-1@a"));

    // reset: a new copy starts; the other file is untouched.
    pages.write("p-1@a", PAGE, new int[] {5}, page(5), 0, new int[0], true, true);
    assertArrayEquals(new int[] {5}, pages.pages("p-1@a"));
    assertArrayEquals(page(9), pages.read("p-2@b", 0));

    pages.drop("p-1@a");
    assertEquals(0, pages.count("p-1@a"));
    assertEquals(Set.of("p-2@b"), pages.files());
    assertThrows(
        IllegalArgumentException.class,
        () -> pages.write("p-3@c", PAGE, new int[] {0, 1}, page(1), 0, new int[0], false, false),
        "two pages announced, one given");
  }

  @Test
  void servesThePageChannelAndRefusesBadRequestsWithAnError() {
    try (PagingFiles files =
        new PagingFiles("n1", pages, GfvmSettings.DEFAULTS, (pid, what, detail) -> {})) {
      PageReply w =
          files.serve(
              PageRequest.newBuilder()
                  .setFile("p-1@a")
                  .setPageSize(PAGE)
                  .setWrite(
                      PageWrite.newBuilder()
                          .addAllPages(List.of(2, 4))
                          .setData(ByteString.copyFrom(concat(page(2), page(4))))
                          .setSync(true))
                  .build());
      assertEquals(2, w.getStored(), w.toString());
      PageReply r =
          files.serve(
              PageRequest.newBuilder()
                  .setFile("p-1@a")
                  .setRead(PageList.newBuilder().addAllPages(List.of(1, 4)))
                  .build());
      assertEquals(List.of(4), r.getPagesList(), "page 1 is zeros: not sent");
      assertArrayEquals(page(4), r.getData().toByteArray());

      PageReply bad =
          files.serve(
              PageRequest.newBuilder()
                  .setFile("p-1@a")
                  .setPageSize(PAGE)
                  .setWrite(
                      PageWrite.newBuilder().addPages(1).setData(ByteString.copyFrom(new byte[10])))
                  .build());
      assertTrue(bad.hasError(), "a write whose data is not whole pages is refused");
      assertTrue(
          files.serve(PageRequest.newBuilder().setFile("../x").build()).hasError(),
          "a file name with a '/' is refused");
      assertTrue(
          files
              .serve(
                  PageRequest.newBuilder()
                      .setFile("p-9@z")
                      .setComplete(Empty.getDefaultInstance())
                      .build())
              .hasError(),
          "complete for a file no process here runs on is refused");
      assertEquals(2, pages.count("p-1@a"), "refused requests changed nothing");

      files.serve(
          PageRequest.newBuilder().setFile("p-1@a").setDrop(Empty.getDefaultInstance()).build());
      assertEquals(0, pages.count("p-1@a"));
    }
  }
}
