package dev.ferry.integration;

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
 * One {@code ferry daemon} JVM on loopback, started, stopped and restarted by a test: always with
 * the same name, ports and data directory, so a restart finds the node's store again.
 *
 * <p>Its stdout and stderr are appended to {@code <data dir>/node.log}, with a header line per
 * start written by the harness. {@link #stop} is SIGTERM (the daemon checkpoints its processes and
 * exits 0), {@link #kill} is SIGKILL. Not thread-safe: one test drives one node.
 */
public final class DaemonProcess {
  static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
  static final Duration STOP_TIMEOUT = Duration.ofSeconds(60);
  private static final int LOG_TAIL_LINES = 80;

  /**
   * What a node is.
   *
   * @param seeds {@code host:port} of the cluster transports to join; empty for its own cluster
   */
  public record Spec(
      String name,
      int clusterPort,
      int httpPort,
      Path dataDir,
      String engine,
      JavaRuntime java,
      List<String> seeds,
      List<String> jvmOptions) {

    /** A node with the small heap the tests give every node. */
    public Spec(
        String name,
        int clusterPort,
        int httpPort,
        Path dataDir,
        String engine,
        JavaRuntime java,
        List<String> seeds) {
      this(name, clusterPort, httpPort, dataDir, engine, java, seeds, TEST_JVM_OPTIONS);
    }
  }

  /** JVM options of test nodes: small heaps, so several fit on a 2-core CI machine. */
  static final List<String> TEST_JVM_OPTIONS = List.of("-Xmx256m", "-Xss2m", "-XX:+UseSerialGC");

  private final Spec spec;
  private final List<Path> classpath;
  private final LiveProcesses live;
  private final NodeApi api;
  private Process process;
  private int starts;
  private String config;
  private Map<String, String> environment = Map.of();
  private volatile boolean paused;

  public DaemonProcess(Spec spec, List<Path> classpath, LiveProcesses live) {
    this.spec = spec;
    this.classpath = List.copyOf(classpath);
    this.live = live;
    this.api = new NodeApi(URI.create("http://127.0.0.1:" + spec.httpPort()));
  }

  public Spec spec() {
    return spec;
  }

  public String name() {
    return spec.name();
  }

  /** The node's HTTP API. */
  public NodeApi api() {
    return api;
  }

  public URI apiUri() {
    return api.base();
  }

  public Path logFile() {
    return spec.dataDir().resolve("node.log");
  }

  /**
   * Settings (HOCON, e.g. {@code ferry.strategies.data-segment.transfer-timeout = 3s}) for this
   * node's next starts: written to {@code <data dir>/test.conf} and passed as {@code --config}.
   * Null for none.
   */
  public void config(String hocon) {
    this.config = hocon;
  }

  /**
   * Environment variables for this node's next starts (e.g. {@code FERRY_TEST_FAILPOINT}); an empty
   * map for none.
   */
  public void environment(Map<String, String> variables) {
    this.environment = Map.copyOf(variables);
  }

  private Path configFile() {
    return spec.dataDir().resolve("test.conf");
  }

  public boolean isAlive() {
    return process != null && process.isAlive();
  }

  /** The OS process id of the current JVM. */
  public long pid() {
    return process.pid();
  }

  /** Launches the JVM (a restart when it ran before) without waiting for it to be ready. */
  public void launch() {
    if (isAlive()) {
      throw new IllegalStateException("node " + name() + " is already running");
    }
    try {
      Files.createDirectories(spec.dataDir());
      if (config != null) {
        Files.writeString(configFile(), config + "\n", StandardCharsets.UTF_8);
      }
      starts++;
      List<String> cmd = command();
      Files.writeString(
          logFile(),
          String.format(
              "===== harness: start #%d of %s at %s on %s%n===== %s%n",
              starts, name(), Instant.now(), spec.java(), String.join(" ", cmdForLog(cmd))),
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
      withoutJvmOptions(env);
      env.put("JAVA_HOME", spec.java().home().toString());
      env.putAll(environment);
      process = pb.start();
      live.add(process);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start node " + name(), e);
    }
  }

  /**
   * Removes from {@code env} what would change a node JVM's options behind the test's back: Ferry's
   * own variables (FERRY_JAVA_OPTS…) and the JVM's option variables.
   */
  static void withoutJvmOptions(Map<String, String> env) {
    env.keySet()
        .removeIf(
            k ->
                k.startsWith("FERRY_")
                    || k.equals("JAVA_TOOL_OPTIONS")
                    || k.equals("JDK_JAVA_OPTIONS")
                    || k.equals("_JAVA_OPTIONS"));
  }

  /** Launches the JVM and waits until {@code GET /v1/health} answers. */
  void start() {
    launch();
    awaitReady();
  }

  /** Waits until the node answers {@code GET /v1/health}; fails early if the JVM exits. */
  public void awaitReady() {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (true) {
      if (!process.isAlive()) {
        throw new AssertionError(
            "node "
                + name()
                + " exited with code "
                + process.exitValue()
                + " before it was ready\n"
                + logTail());
      }
      if (api.isHealthy()) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            "node "
                + name()
                + " did not answer "
                + apiUri()
                + "/v1/health within "
                + READY_TIMEOUT
                + "\n"
                + logTail());
      }
      sleep(100);
    }
  }

  /**
   * SIGTERM, then waits for the JVM to exit; returns its exit code. A JVM still running after
   * {@link #STOP_TIMEOUT} is killed and the call fails.
   */
  public int stop() {
    requireStarted();
    unpause();
    process.destroy();
    try {
      if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        throw new AssertionError(
            "node "
                + name()
                + " did not exit within "
                + STOP_TIMEOUT
                + " of SIGTERM; killed it\n"
                + logTail());
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while stopping node " + name(), e);
    } finally {
      live.remove(process);
    }
    return process.exitValue();
  }

  /**
   * SIGSTOP: the JVM stands still (no thread runs, nothing answers, its sockets stay open), as a
   * node that hangs. {@link #unpause} (SIGCONT) lets it go on; {@link #stop} does that first
   * ({@link #kill} works on a stopped JVM as it is).
   */
  void pause() {
    requireStarted();
    signal("STOP");
    paused = true;
  }

  /** SIGCONT after {@link #pause}. */
  void unpause() {
    requireStarted();
    if (paused && process.isAlive()) {
      signal("CONT");
    }
    paused = false;
  }

  boolean isPaused() {
    return paused && isAlive();
  }

  private void signal(String name) {
    try {
      Process p =
          new ProcessBuilder("kill", "-" + name, Long.toString(process.pid()))
              .redirectErrorStream(true)
              .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("kill -" + name + " " + process.pid() + " failed: " + out);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** SIGTERM, wait for the exit, start again on the same data directory; returns the exit code. */
  int restart() {
    int code = stop();
    start();
    return code;
  }

  /** Waits for the JVM to end by itself (a failpoint's halt); returns its exit code. */
  int awaitExit(Duration timeout) {
    requireStarted();
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError("node " + name() + " still runs after " + timeout);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    } finally {
      if (!process.isAlive()) {
        live.remove(process);
      }
    }
    return process.exitValue();
  }

  /** SIGKILL: the node gets no chance to checkpoint anything. Returns the exit code (137). */
  int kill() {
    requireStarted();
    paused = false; // SIGKILL ends a stopped process too
    try {
      process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      live.remove(process);
    }
    return process.isAlive() ? -1 : process.exitValue();
  }

  /** The end of the node's log, with a header naming the file. */
  String logTail() {
    return logTail(LOG_TAIL_LINES);
  }

  String logTail(int lines) {
    Path log = logFile();
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      List<String> tail = all.subList(Math.max(0, all.size() - lines), all.size());
      return "----- last "
          + tail.size()
          + " lines of "
          + log
          + " -----\n"
          + String.join("\n", tail)
          + "\n----- end of "
          + log
          + " -----";
    } catch (IOException e) {
      return "(no log at " + log + ": " + e + ")";
    }
  }

  /** The whole log (every start), for assertions on what the node reported. */
  String log() {
    try {
      return Files.readString(logFile(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private List<String> command() {
    List<String> cmd = new ArrayList<>();
    cmd.add(spec.java().javaBinary().toString());
    cmd.addAll(spec.java().nodeFlags());
    cmd.addAll(spec.jvmOptions());
    cmd.add("-cp");
    cmd.add(classpath.stream().map(Path::toString).collect(Collectors.joining(File.pathSeparator)));
    cmd.add(NodeClasspath.MAIN_CLASS);
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
    if (config != null) {
      cmd.add("--config");
      cmd.add(configFile().toString());
    }
    return cmd;
  }

  /** The node's JVM flags (everything between {@code java} and {@code -cp}), for reports. */
  public List<String> jvmFlags() {
    List<String> cmd = command();
    return List.copyOf(cmd.subList(1, cmd.indexOf("-cp")));
  }

  /** The command with the (long) class path shortened to its directory. */
  private List<String> cmdForLog(List<String> cmd) {
    List<String> shown = new ArrayList<>(cmd);
    int cp = shown.indexOf("-cp");
    if (cp >= 0 && cp + 1 < shown.size() && !classpath.isEmpty()) {
      shown.set(
          cp + 1, "<" + classpath.size() + " entries in " + classpath.get(0).getParent() + ">");
    }
    return shown;
  }

  private void requireStarted() {
    if (process == null) {
      throw new IllegalStateException("node " + name() + " was never started");
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  @Override
  public String toString() {
    return name()
        + " ("
        + spec.engine()
        + ", Java "
        + spec.java().feature()
        + ", HTTP "
        + spec.httpPort()
        + ", cluster "
        + spec.clusterPort()
        + ")";
  }
}
