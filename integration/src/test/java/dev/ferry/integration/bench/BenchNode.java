package dev.ferry.integration.bench;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * One {@code ferry daemon} JVM started by the benchmark. It is launched like {@code ./ferry daemon}
 * (the JVM's own defaults: G1 on this machine) plus a fixed heap ({@code -Xmx}, given by the
 * benchmark because the harness's {@code DaemonProcess} fixes 256 MiB, too little for 64 MiB
 * images, which a migration holds several copies of). stdout and stderr go to {@code <data
 * dir>/node.log}.
 */
final class BenchNode {
  static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
  static final Duration STOP_TIMEOUT = Duration.ofSeconds(60);

  /**
   * What a node is.
   *
   * @param java the JDK home whose {@code bin/java} runs the node
   * @param heap the {@code -Xmx} value, like {@code 2g}
   * @param seeds {@code host:port} of cluster transports to join; empty for a new cluster
   */
  record Spec(
      String name,
      int clusterPort,
      int httpPort,
      Path dataDir,
      String engine,
      Path java,
      String heap,
      List<String> jvmOptions,
      List<String> seeds) {}

  private final Spec spec;
  private final List<Path> classpath;
  private final BenchClient api;
  private Process process;

  BenchNode(Spec spec, List<Path> classpath) {
    this.spec = spec;
    this.classpath = List.copyOf(classpath);
    this.api = new BenchClient(URI.create("http://127.0.0.1:" + spec.httpPort()));
  }

  String name() {
    return spec.name();
  }

  Spec spec() {
    return spec;
  }

  BenchClient api() {
    return api;
  }

  Path logFile() {
    return spec.dataDir().resolve("node.log");
  }

  boolean isAlive() {
    return process != null && process.isAlive();
  }

  long pid() {
    return process.pid();
  }

  Process process() {
    return process;
  }

  /** Starts the JVM without waiting for it to be ready. */
  void launch() {
    try {
      Files.createDirectories(spec.dataDir());
      List<String> cmd = command();
      Files.writeString(
          logFile(),
          String.format(
              "===== bench: start of %s at %s%n===== %s%n",
              name(), Instant.now(), String.join(" ", forLog(cmd))),
          StandardCharsets.UTF_8,
          StandardOpenOption.CREATE,
          StandardOpenOption.APPEND);
      ProcessBuilder pb =
          new ProcessBuilder(cmd)
              .directory(spec.dataDir().toFile())
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile().toFile()))
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      Map<String, String> env = pb.environment();
      env.keySet()
          .removeIf(
              k ->
                  k.startsWith("FERRY_")
                      || k.equals("JAVA_TOOL_OPTIONS")
                      || k.equals("JDK_JAVA_OPTIONS")
                      || k.equals("_JAVA_OPTIONS"));
      process = pb.start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start node " + name(), e);
    }
  }

  /** Waits until {@code GET /v1/health} answers 200; fails early if the JVM exits. */
  void awaitReady() {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (true) {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            "node "
                + name()
                + " exited with code "
                + process.exitValue()
                + " before it was ready; see "
                + logFile());
      }
      if (api.isHealthy()) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "node "
                + name()
                + " did not answer /v1/health within "
                + READY_TIMEOUT
                + "; see "
                + logFile());
      }
      MigrationBench.sleep(100);
    }
  }

  /** SIGTERM, then waits; SIGKILL after {@link #STOP_TIMEOUT}. Returns the exit code. */
  int stop() {
    if (process == null) {
      return 0;
    }
    process.destroy();
    try {
      if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    return process.isAlive() ? -1 : process.exitValue();
  }

  private List<String> command() {
    List<String> cmd = new ArrayList<>();
    cmd.add(spec.java().resolve("bin").resolve("java").toString());
    // What ./ferry passes (lmdbjava, Chicory's compiler).
    cmd.add("--add-opens");
    cmd.add("java.base/java.nio=ALL-UNNAMED");
    cmd.add("--add-opens");
    cmd.add("java.base/sun.nio.ch=ALL-UNNAMED");
    cmd.add("-Xmx" + spec.heap());
    cmd.addAll(spec.jvmOptions());
    cmd.add("-cp");
    cmd.add(classpath.stream().map(Path::toString).collect(Collectors.joining(File.pathSeparator)));
    cmd.add("dev.ferry.api.cli.FerryCli");
    cmd.add("daemon");
    cmd.add("--name");
    cmd.add(spec.name());
    cmd.add("--host");
    cmd.add("127.0.0.1");
    cmd.add("--port");
    cmd.add(Integer.toString(spec.clusterPort()));
    cmd.add("--http-port");
    cmd.add(Integer.toString(spec.httpPort()));
    cmd.add("--data-dir");
    cmd.add(spec.dataDir().toString());
    for (String seed : spec.seeds()) {
      cmd.add("--seed");
      cmd.add(seed);
    }
    cmd.add("--engine");
    cmd.add(spec.engine());
    return cmd;
  }

  /** The node's JVM flags (everything between {@code java} and {@code -cp}), for the report. */
  List<String> jvmFlags() {
    List<String> cmd = command();
    return List.copyOf(cmd.subList(1, cmd.indexOf("-cp")));
  }

  private List<String> forLog(List<String> cmd) {
    List<String> shown = new ArrayList<>(cmd);
    int cp = shown.indexOf("-cp");
    if (cp >= 0 && !classpath.isEmpty()) {
      shown.set(
          cp + 1, "<" + classpath.size() + " entries in " + classpath.get(0).getParent() + ">");
    }
    return shown;
  }

  @Override
  public String toString() {
    return name()
        + " ("
        + spec.engine()
        + ", HTTP "
        + spec.httpPort()
        + ", cluster "
        + spec.clusterPort()
        + ")";
  }
}
