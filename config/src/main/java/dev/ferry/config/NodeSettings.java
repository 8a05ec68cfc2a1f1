package dev.ferry.config;

import java.nio.file.Path;
import java.util.List;

/**
 * This node's identity in the cluster, where it keeps its data, and which nodes it joins ({@code
 * ferry.node}).
 *
 * <p>The constructor validates (so hand-built settings in tests obey the same rules as loaded ones)
 * and fills in an empty {@code name} as {@code host:port}. It does not check that the host
 * resolves, that the port is free, or that {@code dataDir} exists or is writable: those are found
 * out when the node binds and opens its store. {@code dataDir} is kept as given; a relative path is
 * relative to the daemon's working directory.
 *
 * @param name the node's name in the cluster; never empty after construction
 * @param host address the cluster transport binds and advertises
 * @param port cluster transport port, 1..65535
 * @param dataDir where LMDB, process sandboxes and logs live
 * @param engine default engine, {@link #INTERPRETER} or {@link #COMPILED}
 * @param seeds nodes to join, each {@code "host:port"}; empty means a one-node cluster
 */
public record NodeSettings(
    String name, String host, int port, Path dataDir, String engine, List<String> seeds) {

  /** Chicory's interpreter. */
  public static final String INTERPRETER = "interpreter";

  /** Chicory's runtime compiler to JVM bytecode. */
  public static final String COMPILED = "compiled";

  /** The values {@code ferry.node.engine} accepts. */
  public static final List<String> ENGINES = List.of(INTERPRETER, COMPILED);

  /** Validates every field; see the class comment. */
  public NodeSettings {
    host = Check.notBlank("ferry.node.host", host);
    Check.range("ferry.node.port", port, 1, 65535);
    Check.notNull("ferry.node.data-dir", dataDir);
    if (dataDir.toString().isEmpty()) {
      throw new InvalidSettingsException("ferry.node.data-dir", "must not be empty");
    }
    Check.oneOf("ferry.node.engine", engine, ENGINES);
    Check.notNull("ferry.node.seeds", seeds);
    for (String seed : seeds) {
      Check.hostPort("ferry.node.seeds", seed);
    }
    seeds = List.copyOf(seeds);
    if (name == null || name.isEmpty()) {
      name = defaultName(host, port);
    } else if (name.isBlank()) {
      throw new InvalidSettingsException(
          "ferry.node.name", "must not be blank (leave it empty to use host:port)");
    }
  }

  /** {@code host:port}, with an IPv6 literal host in brackets. */
  private static String defaultName(String host, int port) {
    boolean ipv6 = host.indexOf(':') >= 0 && !host.startsWith("[");
    return (ipv6 ? "[" + host + "]" : host) + ":" + port;
  }
}
