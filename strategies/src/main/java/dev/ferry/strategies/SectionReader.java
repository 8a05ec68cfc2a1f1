package dev.ferry.strategies;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.ferry.config.InvalidSettingsException;
import dev.ferry.config.WholeNumbers;
import java.time.Duration;
import java.util.Set;

/** Reads one strategy's section; every error names the full key ({@code prefix + key}). */
final class SectionReader {
  private final Config c;
  private final String prefix;

  SectionReader(Config c, String prefix, Set<String> known) {
    this.c = c;
    this.prefix = prefix;
    for (String k : c.root().keySet()) {
      if (!known.contains(k)) {
        throw new InvalidSettingsException(
            prefix + k, "unknown setting; known: " + new java.util.TreeSet<>(known));
      }
    }
  }

  InvalidSettingsException bad(String key, String why) {
    return new InvalidSettingsException(prefix + key, why);
  }

  /** A whole number ({@link WholeNumbers}: a fraction is refused, not truncated) in a range. */
  int integer(String key, int min, int max) {
    com.typesafe.config.ConfigValue value;
    try {
      value = c.getValue(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(prefix + key, "must be a whole number", e);
    }
    long v =
        WholeNumbers.of(value)
            .orElseThrow(() -> bad(key, "must be a whole number, got " + value.unwrapped()));
    if (v < min || v > max) {
      throw bad(key, "must be between " + min + " and " + max + ", got " + v);
    }
    return (int) v;
  }

  long bytes(String key, long min, long max) {
    long v;
    try {
      v = c.getBytes(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(prefix + key, "must be a size, like 4KiB", e);
    }
    if (v < min || v > max) {
      throw bad(key, "must be between " + min + " and " + max + " bytes, got " + v);
    }
    return v;
  }

  Duration duration(String key, boolean zeroAllowed) {
    Duration d;
    try {
      d = c.getDuration(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(prefix + key, "must be a duration, like 500ms or 30s", e);
    }
    if (d.isNegative() || (!zeroAllowed && d.isZero())) {
      throw bad(key, zeroAllowed ? "must be >= 0" : "must be > 0");
    }
    return d;
  }

  boolean bool(String key) {
    try {
      return c.getBoolean(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(prefix + key, "must be true or false", e);
    }
  }

  String string(String key) {
    try {
      return c.getString(key);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(prefix + key, "must be a string", e);
    }
  }

  /** The bundle settings every strategy shares: chunk-bytes, window, transfer-timeout. */
  Transfer transfer() {
    long chunk = bytes("chunk-bytes", 0, Long.MAX_VALUE);
    if (chunk < 4096 || chunk > 1536 * 1024) {
      throw bad(
          "chunk-bytes",
          "must be between 4KiB and 1536KiB (the most a destination buffers for one chunk), got "
              + chunk);
    }
    return new Transfer(
        (int) chunk, integer("window", 1, 256), duration("transfer-timeout", false));
  }

  /** How a strategy sends its bundle. */
  record Transfer(int chunkBytes, int window, Duration timeout) {}
}
