package dev.ferry.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Typed reads over a {@link Config} that turn every Typesafe Config failure into an {@link
 * InvalidSettingsException} naming the key and the value found.
 */
final class SettingsReader {
  private final Config config;

  SettingsReader(Config config) {
    this.config = config;
  }

  String string(String path) {
    return read(path, "a string", config::getString);
  }

  long integer(String path) {
    ConfigValue value = value(path);
    return WholeNumbers.of(value)
        .orElseThrow(
            () -> new InvalidSettingsException(path, "must be an integer, got " + render(value)));
  }

  /** A whole number in a range, checked before narrowing so the message shows the real value. */
  int integer(String path, int min, int max) {
    return (int) Check.range(path, integer(path), min, max);
  }

  long bytes(String path) {
    return read(path, "a size in bytes such as 64MiB or 4096", config::getBytes);
  }

  Duration duration(String path) {
    return read(path, "a duration such as 10s or 250ms", config::getDuration);
  }

  Path path(String path) {
    String text = string(path);
    try {
      return Path.of(text);
    } catch (InvalidPathException e) {
      throw new InvalidSettingsException(path, "is not a valid path: " + e.getMessage(), e);
    }
  }

  List<String> stringList(String path) {
    return read(path, "a list of strings", config::getStringList);
  }

  /** The section at {@code path}; an error if it is not an object. */
  ConfigObject section(String path) {
    ConfigValue value = value(path);
    if (value.valueType() != ConfigValueType.OBJECT) {
      throw new InvalidSettingsException(path, "must be a section { ... }, got " + render(value));
    }
    return (ConfigObject) value;
  }

  /** Rejects any key directly under {@code path} that is not in {@code known}. */
  void rejectUnknownKeys(String path, Set<String> known) {
    for (String key : new TreeSet<>(section(path).keySet())) {
      if (!known.contains(key)) {
        String suggestion = closest(key, known);
        throw new InvalidSettingsException(
            path + "." + ConfigUtil.joinPath(key),
            "unknown setting"
                + (suggestion == null ? "" : " (did you mean " + path + "." + suggestion + "?)")
                + "; known settings under "
                + path
                + ": "
                + String.join(", ", new TreeSet<>(known)));
      }
    }
  }

  private <T> T read(String path, String expected, Function<String, T> getter) {
    ConfigValue value = value(path);
    try {
      return getter.apply(path);
    } catch (ConfigException e) {
      throw new InvalidSettingsException(path, "must be " + expected + ", got " + render(value), e);
    }
  }

  private ConfigValue value(String path) {
    try {
      if (!config.hasPathOrNull(path)) {
        throw new InvalidSettingsException(
            path, "is missing (is the configuration loaded with reference.conf as fallback?)");
      }
      if (config.getIsNull(path)) {
        throw new InvalidSettingsException(path, "must be set, got null");
      }
      return config.getValue(path);
    } catch (ConfigException e) {
      // A parent of the path is not an object, e.g. "ferry.node = 5".
      throw new InvalidSettingsException(path, problemOf(e), e);
    }
  }

  private static String problemOf(ConfigException e) {
    String message = e.getMessage();
    int at = message.lastIndexOf(": ");
    return "cannot be read: " + (at < 0 ? message : message.substring(at + 2));
  }

  static String render(ConfigValue value) {
    String text = value.render(ConfigRenderOptions.concise());
    return text.length() > 80 ? text.substring(0, 77) + "..." : text;
  }

  /** The known key nearest to {@code key} in edit distance, if close enough to be a typo. */
  private static String closest(String key, Set<String> known) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (String candidate : known) {
      int distance = editDistance(key, candidate);
      if (distance < bestDistance) {
        best = candidate;
        bestDistance = distance;
      }
    }
    return bestDistance <= Math.max(2, key.length() / 3) ? best : null;
  }

  private static int editDistance(String a, String b) {
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j] + 1, current[j - 1] + 1));
      }
      int[] swap = previous;
      previous = current;
      current = swap;
    }
    return previous[b.length()];
  }
}
