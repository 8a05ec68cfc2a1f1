package dev.ferry.strategies;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.ferry.config.InvalidSettingsException;
import java.time.Duration;
import java.util.Set;

/**
 * Settings of the {@code data-segment} strategy, under {@code ferry.strategies.data-segment}.
 *
 * @param files {@code copy}: the sandbox moves with the process; {@code shared}: every node sees
 *     the same sandbox directory ({@code ferry.node.shared-dir}...), files are reopened in place
 * @param chunkBytes size of each transfer chunk
 * @param window chunks in flight before the sender waits for acknowledgements
 * @param transferTimeout how long one chunk, the final store or the activation may take
 */
public record DataSegmentSettings(
    String files, String sharedDir, int chunkBytes, int window, Duration transferTimeout) {
  static final String PREFIX = "ferry.strategies.data-segment.";
  private static final Set<String> KEYS =
      Set.of("files", "shared-dir", "chunk-bytes", "window", "transfer-timeout");

  public boolean sharedFiles() {
    return files.equals("shared");
  }

  /** Reads and validates; errors name the full key. */
  public static DataSegmentSettings from(Config c) {
    for (String k : c.root().keySet()) {
      if (!KEYS.contains(k)) {
        throw new InvalidSettingsException(PREFIX + k, "unknown setting; known: " + KEYS);
      }
    }
    String files = string(c, "files");
    if (!files.equals("copy") && !files.equals("shared")) {
      throw new InvalidSettingsException(
          PREFIX + "files", "must be copy or shared, got '" + files + "'");
    }
    String sharedDir = string(c, "shared-dir");
    if (files.equals("shared") && sharedDir.isBlank()) {
      throw new InvalidSettingsException(
          PREFIX + "shared-dir", "must name the directory every node shares when files = shared");
    }
    long chunk;
    int window;
    Duration timeout;
    try {
      chunk = c.getBytes("chunk-bytes");
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + "chunk-bytes", "must be a size, like 1MiB", e);
    }
    if (chunk < 4096 || chunk > 1536 * 1024) {
      throw new InvalidSettingsException(
          PREFIX + "chunk-bytes",
          "must be between 4KiB and 1536KiB (the most a destination buffers for one chunk), got "
              + chunk);
    }
    try {
      window = c.getInt("window");
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + "window", "must be a whole number", e);
    }
    if (window < 1 || window > 256) {
      throw new InvalidSettingsException(
          PREFIX + "window", "must be between 1 and 256, got " + window);
    }
    try {
      timeout = c.getDuration("transfer-timeout");
    } catch (ConfigException e) {
      throw new InvalidSettingsException(
          PREFIX + "transfer-timeout", "must be a duration, like 30s", e);
    }
    if (timeout.isZero() || timeout.isNegative()) {
      throw new InvalidSettingsException(PREFIX + "transfer-timeout", "must be > 0");
    }
    return new DataSegmentSettings(files, sharedDir, (int) chunk, window, timeout);
  }

  private static String string(Config c, String key) {
    try {
      return c.getString(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(PREFIX + key, "must be a string", e);
    }
  }
}
