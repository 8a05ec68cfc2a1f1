package dev.ferry.integration;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.LifecycleMethodExecutionExceptionHandler;
import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;

/**
 * Starts real {@code ferry daemon} JVMs on loopback for one test class and makes sure none outlives
 * it. Use it as a static extension:
 *
 * <pre>
 *   &#64;RegisterExtension static final NodeHarness nodes = new NodeHarness();
 *   ...
 *   DaemonProcess n1 = nodes.start("interpreter");
 *   List&lt;DaemonProcess&gt; cluster = nodes.startCluster(3, List.of("compiled"), List.of(JavaRuntime.current()));
 * </pre>
 *
 * Each node gets its own ports and its data directory {@code <root>/<name>} (root under {@code
 * integration/target/it}), where its log {@code node.log} is. When a test (or a
 * {@code @BeforeAll}/{@code @AfterAll}) fails, the end of every node's log is attached to the
 * failure, and the root is kept for a look; otherwise it is deleted (kept anyway with {@code
 * -Dferry.it.keep=true}). After the class, every node still running is stopped with SIGTERM (a JVM
 * shutdown hook kills them if the test JVM dies first). Not thread-safe: nodes are started from the
 * test thread.
 */
final class NodeHarness
    implements AutoCloseable,
        BeforeAllCallback,
        AfterAllCallback,
        TestExecutionExceptionHandler,
        LifecycleMethodExecutionExceptionHandler {
  private final List<DaemonProcess> nodes = new ArrayList<>();
  private String label = "nodes";
  private Path root;
  private boolean failed;
  private String nodeConfig;

  /**
   * Gives every node this harness creates from now on these settings (HOCON, passed with {@code
   * --config}; see {@link DaemonProcess#config}). Returns this harness.
   */
  NodeHarness withNodeConfig(String hocon) {
    this.nodeConfig = hocon;
    return this;
  }

  /** Starts a node on the test JVM's own Java and waits until its API answers. */
  DaemonProcess start(String engine) {
    return start(engine, JavaRuntime.current());
  }

  /** Starts a node on {@code java} and waits until its API answers. */
  DaemonProcess start(String engine, JavaRuntime java) {
    DaemonProcess node = create(engine, java, List.of());
    node.start();
    return node;
  }

  /**
   * A new node, named {@code n<k>} (k counts the nodes of this harness from 1), with fresh ports
   * and data directory; not started.
   */
  DaemonProcess create(String engine, JavaRuntime java, List<String> seeds) {
    String name = "n" + (nodes.size() + 1);
    DaemonProcess node =
        new DaemonProcess(
            new DaemonProcess.Spec(
                name,
                FreePorts.next(),
                FreePorts.next(),
                root().resolve(name),
                engine,
                java,
                seeds),
            NodeClasspath.snapshot(),
            LiveProcesses.instance());
    node.config(nodeConfig);
    nodes.add(node);
    return node;
  }

  /**
   * Starts {@code size} nodes as one cluster: the first forms it, the others join it (seeded with
   * the first node's cluster port) and are started in parallel. Node i gets {@code engines[i]} and
   * {@code javas[i]}; a list of one applies to all. Returns once every node answers {@code
   * /v1/health}, which a daemon only serves once it is an Up member.
   */
  List<DaemonProcess> startCluster(int size, List<String> engines, List<JavaRuntime> javas) {
    if (size < 1
        || !(engines.size() == 1 || engines.size() == size)
        || !(javas.size() == 1 || javas.size() == size)) {
      throw new IllegalArgumentException(
          "a cluster of "
              + size
              + " needs 1 or "
              + size
              + " engines and Java runtimes, got "
              + engines
              + " and "
              + javas);
    }
    List<DaemonProcess> cluster = new ArrayList<>();
    DaemonProcess seed = create(engines.get(0), javas.get(0), List.of());
    seed.start();
    cluster.add(seed);
    List<String> seeds = List.of("127.0.0.1:" + seed.spec().clusterPort());
    for (int i = 1; i < size; i++) {
      DaemonProcess n =
          create(
              engines.get(engines.size() == 1 ? 0 : i),
              javas.get(javas.size() == 1 ? 0 : i),
              seeds);
      n.launch();
      cluster.add(n);
    }
    for (DaemonProcess n : cluster.subList(1, size)) {
      n.awaitReady();
    }
    return cluster;
  }

  /** Every node this harness created, in order. */
  List<DaemonProcess> nodes() {
    return List.copyOf(nodes);
  }

  /** The directory holding this class's nodes, created on first use. */
  Path root() {
    if (root == null) {
      String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss-SSS"));
      try {
        root = Files.createDirectories(itDir().resolve(label + "-" + stamp));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return root;
  }

  /** Where the integration tests keep nodes and the class path copy: integration/target/it. */
  static Path itDir() {
    return Path.of(
            System.getProperty("ferry.it.dir", System.getProperty("java.io.tmpdir") + "/ferry-it"))
        .toAbsolutePath();
  }

  /** The end of every node's log, for a failure report. */
  String logTails() {
    StringBuilder b = new StringBuilder();
    for (DaemonProcess n : nodes) {
      b.append("\n===== node ")
          .append(n)
          .append(n.isAlive() ? ", running" : ", not running")
          .append('\n');
      b.append(n.logTail());
    }
    return b.toString();
  }

  /**
   * Stops every node still running (SIGTERM, in parallel), then deletes the nodes' directories
   * unless something failed. Fails if a node did not stop within its timeout (it is killed) or
   * exited with another code than 0, as a daemon must after SIGTERM.
   */
  @Override
  public void close() {
    List<CompletableFuture<Void>> stops = new ArrayList<>();
    for (DaemonProcess n : nodes) {
      if (n.isAlive()) {
        stops.add(
            CompletableFuture.runAsync(
                () -> {
                  int code = n.stop();
                  if (code != 0) {
                    throw new AssertionError(
                        "node "
                            + n
                            + " exited with code "
                            + code
                            + " after SIGTERM (expected 0)\n"
                            + n.logTail());
                  }
                }));
      }
    }
    AssertionError problem = null;
    for (CompletableFuture<Void> s : stops) {
      try {
        s.join();
      } catch (CompletionException e) {
        if (problem == null) {
          problem = new AssertionError("stopping the nodes failed", e.getCause());
        } else {
          problem.addSuppressed(e.getCause());
        }
      }
    }
    if (problem != null) {
      failed = true;
      throw problem;
    }
    if (root != null) {
      if (failed || Boolean.getBoolean("ferry.it.keep")) {
        System.err.println("[ferry-it] node data and logs kept in " + root);
      } else {
        NodeClasspath.deleteQuietly(root);
      }
    }
  }

  // ------------------------------------------------------------------ JUnit callbacks

  @Override
  public void beforeAll(ExtensionContext context) {
    label = context.getRequiredTestClass().getSimpleName();
  }

  @Override
  public void afterAll(ExtensionContext context) {
    close();
  }

  @Override
  public void handleTestExecutionException(ExtensionContext context, Throwable t) throws Throwable {
    throw withLogs(t);
  }

  @Override
  public void handleBeforeAllMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw withLogs(t);
  }

  @Override
  public void handleBeforeEachMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw withLogs(t);
  }

  @Override
  public void handleAfterEachMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw withLogs(t);
  }

  @Override
  public void handleAfterAllMethodExecutionException(ExtensionContext context, Throwable t)
      throws Throwable {
    throw withLogs(t);
  }

  private Throwable withLogs(Throwable t) {
    failed = true;
    if (!nodes.isEmpty()) {
      t.addSuppressed(new NodeLogs(logTails() + "\n(node directories kept in " + root + ")"));
    }
    return t;
  }

  /** Carries the node logs into a test failure's report, without a stack trace of its own. */
  static final class NodeLogs extends Exception {
    private static final long serialVersionUID = 1L;

    NodeLogs(String logs) {
      super("node logs:" + logs, null, false, false);
    }
  }
}
