package dev.ferry.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * All of a node's settings, typed and validated, plus the raw {@link Config} for the sections this
 * module does not own ({@code ferry.strategies.<name>}, Pekko's own settings).
 *
 * <p>{@link #load(Config)} checks every key under {@code ferry.node}, {@code ferry.http}, {@code
 * ferry.runtime} and {@code ferry.store} (type, range, and that no unknown key is present) and that
 * each {@code ferry.strategies.<name>} is a section; it fails on the first problem with an {@link
 * InvalidSettingsException} naming the key. It does not validate the contents of strategy sections
 * (each strategy does), nor keys elsewhere under {@code ferry} that other modules may define, nor
 * anything that needs the outside world (free ports, existing paths, wasm-opt).
 *
 * @param node {@code ferry.node}
 * @param http {@code ferry.http}
 * @param runtime {@code ferry.runtime}
 * @param store {@code ferry.store}
 * @param config the whole configuration the settings were read from, reference.conf included
 */
public record FerrySettings(
    NodeSettings node,
    HttpSettings http,
    RuntimeSettings runtime,
    StoreSettings store,
    Config config) {

  private static final Set<String> NODE_KEYS =
      Set.of("name", "host", "port", "data-dir", "engine", "seeds");
  private static final Set<String> HTTP_KEYS = Set.of("host", "port", "token", "max-upload-bytes");
  private static final Set<String> RUNTIME_KEYS =
      Set.of(
          "wasm-opt",
          "asyncify-buffer-bytes",
          "freeze-timeout",
          "max-memory-pages",
          "log-flush-interval");
  private static final Set<String> STORE_KEYS = Set.of("map-size");

  /** Requires every section; the records have validated their own fields. */
  public FerrySettings {
    Objects.requireNonNull(node, "node");
    Objects.requireNonNull(http, "http");
    Objects.requireNonNull(runtime, "runtime");
    Objects.requireNonNull(store, "store");
    Objects.requireNonNull(config, "config");
  }

  /**
   * Reads and validates the settings from {@code config}.
   *
   * <p>{@code config} is normally already resolved with reference.conf as fallback (as {@link
   * ConfigFactory#load()} returns it); keys it lacks fall back to this module's reference.conf
   * anyway, and it is resolved if it was not.
   *
   * @throws InvalidSettingsException on the first invalid, mistyped or unknown setting
   */
  public static FerrySettings load(Config config) {
    Objects.requireNonNull(config, "config");
    Config full;
    try {
      full =
          config
              .withFallback(ConfigFactory.defaultReference(FerrySettings.class.getClassLoader()))
              .resolve();
    } catch (ConfigException e) {
      throw InvalidSettingsException.unreadable(e.getMessage(), e);
    }
    SettingsReader reader = new SettingsReader(full);
    reader.section("ferry");
    reader.rejectUnknownKeys("ferry.node", NODE_KEYS);
    reader.rejectUnknownKeys("ferry.http", HTTP_KEYS);
    reader.rejectUnknownKeys("ferry.runtime", RUNTIME_KEYS);
    reader.rejectUnknownKeys("ferry.store", STORE_KEYS);
    for (String name : new TreeSet<>(reader.section("ferry.strategies").keySet())) {
      reader.section(ConfigUtil.joinPath("ferry", "strategies", name));
    }

    NodeSettings node =
        new NodeSettings(
            reader.string("ferry.node.name"),
            reader.string("ferry.node.host"),
            reader.integer("ferry.node.port", 1, 65535),
            reader.path("ferry.node.data-dir"),
            reader.string("ferry.node.engine"),
            reader.stringList("ferry.node.seeds"));
    HttpSettings http =
        new HttpSettings(
            reader.string("ferry.http.host"),
            reader.integer("ferry.http.port", 1, 65535),
            reader.string("ferry.http.token"),
            reader.bytes("ferry.http.max-upload-bytes"));
    int maxMemoryPages = reader.integer("ferry.runtime.max-memory-pages", 1, 65536);
    long asyncifyBufferBytes = reader.bytes("ferry.runtime.asyncify-buffer-bytes");
    RuntimeSettings.checkAsyncifyBuffer(asyncifyBufferBytes, maxMemoryPages);
    RuntimeSettings runtime =
        new RuntimeSettings(
            reader.string("ferry.runtime.wasm-opt"),
            (int) asyncifyBufferBytes,
            reader.duration("ferry.runtime.freeze-timeout"),
            maxMemoryPages,
            reader.duration("ferry.runtime.log-flush-interval"));
    StoreSettings store = new StoreSettings(reader.bytes("ferry.store.map-size"));
    return new FerrySettings(node, http, runtime, store, full);
  }

  /**
   * Loads the settings the standard way ({@link ConfigFactory#load()}: system properties, then
   * application.conf or {@code -Dconfig.file}, then reference.conf) and validates them.
   *
   * @throws InvalidSettingsException on a file that cannot be parsed or an invalid setting
   */
  public static FerrySettings load() {
    Config config;
    try {
      config = ConfigFactory.load(FerrySettings.class.getClassLoader());
    } catch (ConfigException e) {
      throw InvalidSettingsException.unreadable(e.getMessage(), e);
    }
    return load(config);
  }

  /**
   * The operator settings of one strategy, {@code ferry.strategies.<name>}, for the strategy to
   * read and validate itself.
   *
   * @throws InvalidSettingsException if there is no such section
   */
  public Config strategy(String name) {
    Objects.requireNonNull(name, "name");
    String path = ConfigUtil.joinPath("ferry", "strategies", name);
    try {
      ConfigValue section = config.getObject("ferry.strategies").get(name);
      if (section instanceof ConfigObject object) {
        return object.toConfig();
      }
    } catch (ConfigException e) {
      throw new InvalidSettingsException("ferry.strategies", "must be a section { ... }", e);
    }
    throw new InvalidSettingsException(
        path, "no such strategy section; configured strategies: " + strategyNames());
  }

  /** The names of the configured strategy sections, sorted. */
  public Set<String> strategyNames() {
    try {
      return new TreeSet<>(config.getObject("ferry.strategies").keySet());
    } catch (ConfigException e) {
      throw new InvalidSettingsException("ferry.strategies", "must be a section { ... }", e);
    }
  }

  /** The typed sections only: the raw config is long and may hold secrets. */
  @Override
  public String toString() {
    return "FerrySettings[node="
        + node
        + ", http="
        + http
        + ", runtime="
        + runtime
        + ", store="
        + store
        + "]";
  }
}
