package dev.ferry.integration.bench;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.ZipFile;

/**
 * The benchmark's node JVMs: a cluster of {@code size} nodes on loopback, started from a private
 * copy of this JVM's class path (so a concurrent {@code mvn install} cannot rewrite a jar under a
 * running node), and stopped whatever happens: by {@link #close()}, or by a JVM shutdown hook on
 * Ctrl-C / SIGTERM / an uncaught failure. The node OS pids are also written to {@code pidFile} so
 * that {@code scripts/bench-migration.sh} can kill them should this JVM itself be killed.
 */
final class BenchCluster implements AutoCloseable {
  private static final int LOW_PORT = 20000;
  private static final int HIGH_PORT = 32000;

  private final Path dir;
  private final Path pidFile;
  private final List<BenchNode> nodes = new ArrayList<>();
  private final Set<Integer> usedPorts = new HashSet<>();
  private final Thread hook;
  private List<Path> classpath;
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

  List<BenchNode> nodes() {
    return List.copyOf(nodes);
  }

  /**
   * Starts {@code size} nodes: the first forms the cluster, the others join it in parallel. Returns
   * once every node answers {@code /v1/health} (an Up member).
   */
  List<BenchNode> start(int size, String engine, Path java, String heap, List<String> jvmOptions) {
    List<String> seeds = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      String name = "n" + (i + 1);
      BenchNode n =
          new BenchNode(
              new BenchNode.Spec(
                  name,
                  freePort(),
                  freePort(),
                  dir.resolve(name),
                  engine,
                  java,
                  heap,
                  jvmOptions,
                  List.copyOf(seeds)),
              classpath());
      synchronized (this) {
        if (closed) {
          throw new IllegalStateException("stopping");
        }
        nodes.add(n);
        n.launch();
        recordPid(n.pid());
      }
      if (i == 0) {
        n.awaitReady();
        seeds.add("127.0.0.1:" + n.spec().clusterPort());
      }
    }
    for (BenchNode n : nodes) {
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
    for (BenchNode n : nodes) {
      if (n.isAlive()) {
        n.process().destroy(); // SIGTERM: the daemon checkpoints its processes and exits 0
      }
    }
    for (BenchNode n : nodes) {
      Process p = n.process();
      if (p == null) {
        continue;
      }
      try {
        if (!p.waitFor(BenchNode.STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
          System.err.println("[bench] node " + n.name() + " ignored SIGTERM; killing it");
          p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
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

  private int freePort() {
    int start = LOW_PORT + ThreadLocalRandom.current().nextInt(HIGH_PORT - LOW_PORT);
    for (int i = 0; i < HIGH_PORT - LOW_PORT; i++) {
      int port = LOW_PORT + (start - LOW_PORT + i) % (HIGH_PORT - LOW_PORT);
      if (!usedPorts.contains(port) && isFree(port)) {
        usedPorts.add(port);
        return port;
      }
    }
    throw new IllegalStateException("no free loopback port in " + LOW_PORT + "-" + HIGH_PORT);
  }

  private static boolean isFree(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(false);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  // ------------------------------------------------------------------ class path copy

  /** This JVM's class path minus its own classes, copied once under {@code <dir>/classpath}. */
  private List<Path> classpath() {
    if (classpath == null) {
      Path own = ownCodeSource();
      Path to = dir.resolve("classpath");
      List<Path> copied = new ArrayList<>();
      try {
        Files.createDirectories(to);
        int i = 0;
        for (String e : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
          if (e.isBlank()) {
            continue;
          }
          Path p = Path.of(e).toAbsolutePath().normalize();
          if (p.equals(own) || !Files.exists(p)) {
            continue;
          }
          Path target = to.resolve(String.format("%03d-%s", i++, p.getFileName()));
          if (Files.isDirectory(p)) {
            copyTree(p, target);
          } else {
            copyJar(p, target);
          }
          copied.add(target);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot copy the node class path to " + to, e);
      }
      String main = "dev/ferry/api/cli/FerryCli.class";
      if (copied.stream().noneMatch(p -> contains(p, main))) {
        throw new IllegalStateException(
            "dev.ferry.api.cli.FerryCli is not on the class path "
                + copied
                + " (is ferry-api built?)");
      }
      classpath = List.copyOf(copied);
    }
    return classpath;
  }

  private static Path ownCodeSource() {
    try {
      return Path.of(BenchCluster.class.getProtectionDomain().getCodeSource().getLocation().toURI())
          .toAbsolutePath()
          .normalize();
    } catch (Exception e) {
      return null;
    }
  }

  private static boolean contains(Path entry, String resource) {
    if (Files.isDirectory(entry)) {
      return Files.isRegularFile(entry.resolve(resource));
    }
    try (ZipFile z = new ZipFile(entry.toFile())) {
      return z.getEntry(resource) != null;
    } catch (IOException e) {
      return false;
    }
  }

  /** Copies a jar; one caught mid-rewrite by a concurrent build is copied again. */
  private static void copyJar(Path from, Path to) throws IOException {
    IOException last = null;
    for (int attempt = 0; attempt < 10; attempt++) {
      Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
      try (ZipFile z = new ZipFile(to.toFile())) {
        if (z.size() > 0) {
          return;
        }
      } catch (IOException e) {
        last = e;
      }
      MigrationBench.sleep(500);
    }
    throw new IOException("jar " + from + " could not be copied intact", last);
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        Path t = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(t);
        } else {
          Files.copy(p, t, StandardCopyOption.REPLACE_EXISTING);
        }
      }
    }
  }

  /** Deletes the copied class path (node data and logs stay for a look). */
  void deleteClasspathCopy() {
    Path cp = dir.resolve("classpath");
    if (!Files.exists(cp)) {
      return;
    }
    try (Stream<Path> s = Files.walk(cp)) {
      for (Path p :
          (Iterable<Path>) s.sorted((a, b) -> b.getNameCount() - a.getNameCount())::iterator) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // best effort: it is under target/
    }
  }
}
