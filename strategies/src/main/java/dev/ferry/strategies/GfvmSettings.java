package dev.ferry.strategies;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.Set;

/**
 * Settings of the {@code gfvm} strategy and of the paging files it relies on, under {@code
 * ferry.strategies.gfvm}.
 *
 * @param replicationFactor copies of each paged process's paging file, counting the one on the node
 *     that runs it (1: no replica on another node)
 * @param pageSize bytes per page of paged memory (a power of two from 4KiB to 64KiB)
 * @param flushInterval how often the background flusher looks for pages to write out
 * @param quietTime a dirty page is written out in the background once nothing wrote it for this
 *     long (0: at the next pass)
 * @param allowFullCopy whether an explicit destination that holds no replica is accepted (the whole
 *     paging file is then copied to it while the process is frozen)
 * @param chunkBytes size of each chunk of the process's bundle (image without memory, logs, files)
 * @param window bundle chunks in flight before waiting for acknowledgements
 * @param transferTimeout how long one step of the bundle transfer may take; also bounds every page
 *     request between nodes, whatever the strategy (replica and file-server writes, pre-copy and
 *     post-copy pages, faults)
 */
public record GfvmSettings(
    int replicationFactor,
    int pageSize,
    Duration flushInterval,
    Duration quietTime,
    boolean allowFullCopy,
    int chunkBytes,
    int window,
    Duration transferTimeout) {
  static final String PREFIX = "ferry.strategies.gfvm.";
  private static final Set<String> KEYS =
      Set.of(
          "replication-factor",
          "page-size",
          "flush-interval",
          "quiet-time",
          "allow-full-copy",
          "chunk-bytes",
          "window",
          "transfer-timeout");

  /** The defaults (as in reference.conf), for code that runs without settings. */
  public static final GfvmSettings DEFAULTS =
      new GfvmSettings(
          2,
          4096,
          Duration.ofMillis(500),
          Duration.ofSeconds(1),
          false,
          1 << 20,
          8,
          Duration.ofSeconds(30));

  /** How the bundle moves. */
  SectionReader.Transfer transfer() {
    return new SectionReader.Transfer(chunkBytes, window, transferTimeout);
  }

  /** Reads and validates; errors name the full key. */
  public static GfvmSettings from(Config c) {
    SectionReader r = new SectionReader(c, PREFIX, KEYS);
    int factor = r.integer("replication-factor", 1, 16);
    long page = r.bytes("page-size", 4096, 65536);
    if (Long.bitCount(page) != 1) {
      throw r.bad("page-size", "must be a power of two from 4KiB to 64KiB, got " + page);
    }
    SectionReader.Transfer t = r.transfer();
    return new GfvmSettings(
        factor,
        (int) page,
        r.duration("flush-interval", false),
        r.duration("quiet-time", true),
        r.bool("allow-full-copy"),
        t.chunkBytes(),
        t.window(),
        t.timeout());
  }
}
