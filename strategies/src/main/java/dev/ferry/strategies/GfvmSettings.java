package dev.ferry.strategies;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.ferry.config.InvalidSettingsException;
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
 * @param transferTimeout how long one step (a chunk, a page write on a replica) may take
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

  /** Reads and validates; errors name the full key. */
  public static GfvmSettings from(Config c) {
    for (String k : c.root().keySet()) {
      if (!KEYS.contains(k)) {
        throw new InvalidSettingsException(PREFIX + k, "unknown setting; known: " + KEYS);
      }
    }
    int r = integer(c, "replication-factor");
    if (r < 1 || r > 16) {
      throw new InvalidSettingsException(
          PREFIX + "replication-factor", "must be between 1 and 16, got " + r);
    }
    long page = bytes(c, "page-size");
    if (page < 4096 || page > 65536 || Long.bitCount(page) != 1) {
      throw new InvalidSettingsException(
          PREFIX + "page-size", "must be a power of two from 4KiB to 64KiB, got " + page);
    }
    Duration interval = duration(c, "flush-interval");
    if (interval.isZero() || interval.isNegative()) {
      throw new InvalidSettingsException(PREFIX + "flush-interval", "must be > 0");
    }
    Duration quiet = duration(c, "quiet-time");
    if (quiet.isNegative()) {
      throw new InvalidSettingsException(PREFIX + "quiet-time", "must be >= 0");
    }
    boolean full;
    try {
      full = c.getBoolean("allow-full-copy");
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + "allow-full-copy", "must be true or false", e);
    }
    long chunk = bytes(c, "chunk-bytes");
    if (chunk < 4096 || chunk > 1536 * 1024) {
      throw new InvalidSettingsException(
          PREFIX + "chunk-bytes", "must be between 4KiB and 1536KiB, got " + chunk);
    }
    int window = integer(c, "window");
    if (window < 1 || window > 256) {
      throw new InvalidSettingsException(
          PREFIX + "window", "must be between 1 and 256, got " + window);
    }
    Duration timeout = duration(c, "transfer-timeout");
    if (timeout.isZero() || timeout.isNegative()) {
      throw new InvalidSettingsException(PREFIX + "transfer-timeout", "must be > 0");
    }
    return new GfvmSettings(r, (int) page, interval, quiet, full, (int) chunk, window, timeout);
  }

  private static int integer(Config c, String key) {
    try {
      return c.getInt(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + key, "must be a whole number", e);
    }
  }

  private static long bytes(Config c, String key) {
    try {
      return c.getBytes(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + key, "must be a size, like 4KiB", e);
    }
  }

  private static Duration duration(Config c, String key) {
    try {
      return c.getDuration(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + key, "must be a duration, like 500ms", e);
    }
  }
}
