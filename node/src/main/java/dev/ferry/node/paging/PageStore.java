package dev.ferry.node.paging;

import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.TableName;
import java.nio.ByteBuffer;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * This node's copies of paging files, in the store's PAGES table: one entry per page that is not
 * all zeros, under {@code <file>/<page number as 8 hex digits>}; a missing page reads as zeros.
 * Whether a copy is a primary (its process runs here) or a replica is not recorded here: a copy is
 * just pages.
 */
public final class PageStore {
  private final FerryStore store;

  public PageStore(FerryStore store) {
    this.store = store;
  }

  static String key(String file, int page) {
    return file + "/" + String.format("%08x", page);
  }

  private static String prefix(String file) {
    return file + "/";
  }

  /** Page {@code page} of {@code file}, or null if this copy holds none (zeros). */
  public byte[] read(String file, int page) {
    return store.table(TableName.PAGES).get(key(file, page)).orElse(null);
  }

  /**
   * Stores {@code pages} (back to back in {@code data}, {@code pageSize} bytes each, from {@code
   * offset}), removes {@code zeroPages}, in one transaction; with {@code reset} every page of the
   * file is dropped first; with {@code sync} the store is synced before returning.
   */
  public void write(
      String file,
      int pageSize,
      int[] pages,
      byte[] data,
      int offset,
      int[] zeroPages,
      boolean reset,
      boolean sync) {
    write(
        file,
        pageSize,
        pages,
        ByteBuffer.wrap(data, offset, data.length - offset),
        zeroPages,
        reset,
        sync);
  }

  /**
   * {@link #write(String, int, int[], byte[], int, int[], boolean, boolean)} with the pages in
   * {@code data} from its position, stored from there without a copy (a received frame's bytes).
   */
  public void write(
      String file,
      int pageSize,
      int[] pages,
      ByteBuffer data,
      int[] zeroPages,
      boolean reset,
      boolean sync) {
    if ((long) pages.length * pageSize > data.remaining()) {
      throw new IllegalArgumentException(
          pages.length + " pages of " + pageSize + " bytes but " + data.remaining() + " bytes");
    }
    int base = data.position();
    store.write(
        b -> {
          if (reset) {
            for (String k : store.table(TableName.PAGES).keys(prefix(file))) {
              b.delete(TableName.PAGES, k);
            }
          }
          for (int i = 0; i < pages.length; i++) {
            int at = base + i * pageSize;
            b.put(
                TableName.PAGES,
                key(file, pages[i]),
                data.duplicate().limit(at + pageSize).position(at));
          }
          for (int z : zeroPages) {
            b.delete(TableName.PAGES, key(file, z));
          }
        });
    if (sync) {
      store.sync();
    }
  }

  /** The page numbers this copy holds, in increasing order. */
  public int[] pages(String file) {
    List<String> keys = store.table(TableName.PAGES).keys(prefix(file));
    int[] out = new int[keys.size()];
    int n = prefix(file).length();
    for (int i = 0; i < out.length; i++) {
      out[i] = Integer.parseUnsignedInt(keys.get(i).substring(n), 16);
    }
    return out;
  }

  /** How many pages this copy holds. */
  public int count(String file) {
    return store.table(TableName.PAGES).keys(prefix(file)).size();
  }

  /** Deletes this copy, durably. */
  public void drop(String file) {
    List<String> keys = store.table(TableName.PAGES).keys(prefix(file));
    if (keys.isEmpty()) {
      return;
    }
    store.write(
        b -> {
          for (String k : keys) {
            b.delete(TableName.PAGES, k);
          }
        });
    store.sync();
  }

  /** The files this node holds a copy of. */
  public Set<String> files() {
    Set<String> out = new LinkedHashSet<>();
    for (String k : store.table(TableName.PAGES).keys()) {
      out.add(k.substring(0, k.lastIndexOf('/')));
    }
    return out;
  }
}
