package dev.ferry.integration.bench;

import dev.ferry.integration.DaemonProcess;
import dev.ferry.integration.FreePorts;
import dev.ferry.integration.JavaRuntime;
import dev.ferry.integration.LiveProcesses;
import dev.ferry.integration.NodeClasspath;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The benchmark's node JVMs: a cluster of {@code size} nodes on loopback, launched like the
 * integration tests' nodes ({@link DaemonProcess}, from {@link NodeClasspath}'s private copy of the
 * class path, so a concurrent {@code mvn install} cannot rewrite a jar under a running node) but
 * with the benchmark's heap and JVM options, and stopped whatever happens: by {@link #close()}, or
 * by a JVM shutdown hook on Ctrl-C / SIGTERM / an uncaught failure. The node OS pids are also
 * written to {@code pidFile} so that the benchmark's script ({@code scripts/bench-java.sh}) can
 * kill them should this JVM itself be killed.
 */
final class BenchCluster implements AutoCloseable {
  private final Path dir;
  private final Path pidFile;
  private final List<DaemonProcess> nodes = new ArrayList<>();
  private final Thread hook;
  private volatile boolean closed;

  BenchCluster(Path dir, Path pidFile) {
    this.dir = dir;
    this.pidFile = pidFile;
    this.hook = new Thread(this::stopAll, "bench-stop-nodes");
    Runtime.getRuntime().addShutdownHook(hook);
  }

  /** True once the nodes are being stopped (by {@link #close()} or the shutdown hook). */
  boolean stopping() {
    return closed;
  }

  List<DaemonProcess> nodes() {
    return List.copyOf(nodes);
  }

  /**
   * Starts {@code size} nodes: the first forms the cluster, the others join it in parallel. Returns
   * once every node answers {@code /v1/health} (an Up member).
   */
  List<DaemonProcess> start(
      int size, String engine, Path javaHome, String heap, List<String> jvmOptions) {
    return start(size, engine, javaHome, heap, jvmOptions, null);
  }

  /** As above, every node with {@code config} (HOCON settings; null for none) as its --config. */
  List<DaemonProcess> start(
      int size, String engine, Path javaHome, String heap, List<String> jvmOptions, String config) {
    JavaRuntime java =
        JavaRuntime.at(javaHome)
            .orElseThrow(() -> new IllegalStateException("no JDK at " + javaHome));
    List<String> options = new ArrayList<>();
    options.add("-Xmx" + heap);
    options.addAll(jvmOptions);
    List<String> seeds = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      String name = "n" + (i + 1);
      DaemonProcess n =
          new DaemonProcess(
              new DaemonProcess.Spec(
                  name,
                  FreePorts.next(),
                  FreePorts.next(),
                  dir.resolve(name),
                  engine,
                  java,
                  List.copyOf(seeds),
                  List.copyOf(options)),
              NodeClasspath.snapshot(),
              LiveProcesses.instance());
      synchronized (this) {
        if (closed) {
          throw new IllegalStateException("stopping");
        }
        nodes.add(n);
        n.config(config);
        n.launch();
        recordPid(n.pid());
      }
      if (i == 0) {
        n.awaitReady();
        seeds.add("127.0.0.1:" + n.spec().clusterPort());
      }
    }
    for (DaemonProcess n : nodes) {
      n.awaitReady();
    }
    return nodes();
  }

  /** Stops every node (SIGTERM, in parallel, SIGKILL after a minute). */
  @Override
  public void close() {
    stopAll();
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // already shutting down: the hook is running or has run
    }
  }

  private synchronized void stopAll() {
    if (closed) {
      return;
    }
    closed = true;
    // SIGTERM: the daemon checkpoints its processes and exits 0
    nodes.parallelStream()
        .filter(DaemonProcess::isAlive)
        .forEach(
            n -> {
              try {
                n.stop();
              } catch (AssertionError e) {
                System.err.println("[bench] " + e.getMessage());
              }
            });
  }

  private void recordPid(long pid) {
    if (pidFile == null) {
      return;
    }
    try {
      Files.createDirectories(pidFile.toAbsolutePath().getParent());
      Files.writeString(
          pidFile,
          pid + "\n",
          StandardCharsets.US_ASCII,
          StandardOpenOption.CREATE,
          StandardOpenOption.APPEND);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
