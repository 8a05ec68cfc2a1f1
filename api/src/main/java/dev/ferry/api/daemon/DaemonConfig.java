package dev.ferry.api.daemon;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a daemon's configuration from its layers, highest first:
 *
 * <ol>
 *   <li>command-line flags ({@code --port 7411} is {@code ferry.node.port = 7411});
 *   <li>JVM system properties ({@code -Dferry.http.port=7500}, as Typesafe Config always does);
 *   <li>the {@code --config} HOCON file, which must exist;
 *   <li>{@code application.conf} on the classpath (or {@code -Dconfig.file});
 *   <li>every module's {@code reference.conf}: Ferry's defaults and Pekko's.
 * </ol>
 *
 * It only assembles and resolves; {@link dev.ferry.config.FerrySettings#load(Config)} validates.
 */
public final class DaemonConfig {
  private final Map<String, Object> flags = new LinkedHashMap<>();
  private Path file;

  /** Sets {@code path} from a flag; a null value (flag not given) sets nothing. */
  public DaemonConfig flag(String path, Object value) {
    if (value != null) {
      flags.put(path, value instanceof Path p ? p.toString() : value);
    }
    return this;
  }

  /** Sets a list-valued flag ({@code --seed} repeated); an empty list sets nothing. */
  public DaemonConfig flagList(String path, List<String> values) {
    if (values != null && !values.isEmpty()) {
      flags.put(path, List.copyOf(values));
    }
    return this;
  }

  /** The {@code --config} file, or null for none. */
  public DaemonConfig file(Path file) {
    this.file = file;
    return this;
  }

  /**
   * The resolved configuration.
   *
   * @throws IllegalArgumentException when the file is missing, unreadable or not valid HOCON, or a
   *     substitution cannot be resolved; the message names the file
   */
  public Config build() {
    Config fromFile = ConfigFactory.empty();
    if (file != null) {
      if (!Files.isRegularFile(file)) {
        throw new IllegalArgumentException(
            "config file '"
                + file
                + "' "
                + (Files.exists(file) ? "is not a regular file" : "does not exist"));
      }
      try {
        fromFile =
            ConfigFactory.parseFile(
                file.toFile(), ConfigParseOptions.defaults().setAllowMissing(false));
      } catch (ConfigException e) {
        throw new IllegalArgumentException(
            "cannot read config file '" + file + "': " + e.getMessage(), e);
      }
    }
    try {
      return ConfigFactory.parseMap(flags, "command-line flags")
          .withFallback(ConfigFactory.defaultOverrides())
          .withFallback(fromFile)
          .withFallback(ConfigFactory.defaultApplication())
          .withFallback(ConfigFactory.defaultReference())
          .resolve();
    } catch (ConfigException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }
}
