package dev.ferry.integration;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.MalformedURLException;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.ZipFile;

/**
 * The class path of the node JVMs: the test JVM's own (so the nodes run exactly the code under
 * test), copied once per test JVM into a private directory.
 *
 * <p>Why a copy: the test JVM's class path points into {@code ~/.m2} and other modules' {@code
 * target/} directories, which a concurrent {@code mvn install} rewrites in place. A node JVM that
 * loads a class lazily from a jar rewritten under it fails in odd ways (seen: processes FAILED at
 * shutdown, "the store is closed"). The copy is checked (every jar opens as a zip) and deleted when
 * the test JVM exits. It needs surefire's {@code useManifestOnlyJar=false}, else {@code
 * java.class.path} is only a booter jar.
 */
public final class NodeClasspath {
  /** The class every node runs; its presence on the class path is checked. */
  static final String MAIN_CLASS = "dev.ferry.api.cli.FerryCli";

  private static List<Path> snapshot;
  private static ClassLoader loader;

  private NodeClasspath() {}

  /**
   * The entries of the node class path, in the test JVM's order, copied under {@code
   * integration/target/it} on first use.
   */
  public static synchronized List<Path> snapshot() {
    if (snapshot == null) {
      snapshot = copy(entries(), NodeHarness.itDir());
      requireMainClass(snapshot);
    }
    return snapshot;
  }

  /**
   * A class loader over the copy, for running Ferry code in the test JVM (the in-process CLI) safe
   * from the same rewrites. Its parent is the platform loader: nothing of Ferry's is shared with
   * the test's own class loader, only the JDK.
   */
  static synchronized ClassLoader loader() {
    if (loader == null) {
      List<URL> urls = new ArrayList<>();
      for (Path p : snapshot()) {
        try {
          urls.add(p.toUri().toURL());
        } catch (MalformedURLException e) {
          throw new IllegalStateException(e);
        }
      }
      loader =
          new URLClassLoader(
              "ferry-snapshot", urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
    }
    return loader;
  }

  /** The test JVM's class path without the integration tests' own classes. */
  static List<Path> entries() {
    String cp = System.getProperty("java.class.path", "");
    List<Path> all = new ArrayList<>();
    for (String e : cp.split(File.pathSeparator)) {
      if (!e.isBlank()) {
        all.add(Path.of(e).toAbsolutePath().normalize());
      }
    }
    if (all.size() <= 2
        && all.stream().anyMatch(p -> p.getFileName().toString().startsWith("surefire"))) {
      throw new IllegalStateException(
          "java.class.path is surefire's manifest-only booter jar "
              + all
              + ": set <useManifestOnlyJar>false</useManifestOnlyJar> in integration/pom.xml");
    }
    all.remove(codeSource(NodeClasspath.class));
    return all;
  }

  /** Checks the copy has the node's main class (read from the copy, not the test's loader). */
  private static void requireMainClass(List<Path> entries) {
    String entry = MAIN_CLASS.replace('.', '/') + ".class";
    for (Path p : entries) {
      if (Files.isDirectory(p)) {
        if (Files.isRegularFile(p.resolve(entry))) {
          return;
        }
      } else {
        try (ZipFile z = new ZipFile(p.toFile())) {
          if (z.getEntry(entry) != null) {
            return;
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
    throw new IllegalStateException(
        MAIN_CLASS + " is on none of the class path entries " + entries + " (is ferry-api built?)");
  }

  private static Path codeSource(Class<?> c) {
    CodeSource cs = c.getProtectionDomain().getCodeSource();
    try {
      return Path.of(cs.getLocation().toURI()).toAbsolutePath().normalize();
    } catch (URISyntaxException e) {
      throw new IllegalStateException("odd code source of " + c + ": " + cs.getLocation(), e);
    }
  }

  private static List<Path> copy(List<Path> entries, Path root) {
    try {
      Path dir =
          Files.createDirectories(root).resolve("classpath-" + ProcessHandle.current().pid());
      deleteTree(dir);
      Files.createDirectories(dir);
      List<Path> copied = new ArrayList<>();
      int i = 0;
      for (Path e : entries) {
        if (!Files.exists(e)) {
          continue; // Maven lists target/classes of modules without main code
        }
        Path to = dir.resolve(String.format("%03d-%s", i++, e.getFileName()));
        if (Files.isDirectory(e)) {
          copyTree(e, to);
        } else {
          copyJar(e, to);
        }
        copied.add(to);
      }
      Runtime.getRuntime()
          .addShutdownHook(new Thread(() -> deleteQuietly(dir), "ferry-it-classpath-cleanup"));
      return List.copyOf(copied);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy the node class path under " + root, e);
    }
  }

  /** Copies a jar; a jar caught mid-rewrite by a concurrent build is copied again. */
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
      try {
        Thread.sleep(500);
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
        break;
      }
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

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p :
          (Iterable<Path>) s.sorted((a, b) -> b.getNameCount() - a.getNameCount())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }

  static void deleteQuietly(Path dir) {
    try {
      deleteTree(dir);
    } catch (IOException | RuntimeException e) {
      // best effort: it is under target/
    }
  }
}
