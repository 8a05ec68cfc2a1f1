package dev.ferry.integration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A JDK (or JRE) a node JVM runs on, and the flags a node needs on it.
 *
 * <p>Every node gets the options the {@code ferry} launcher gives every command, from {@code
 * ferry.jvm-options} at the repository root ({@code --add-opens} for lmdbjava, when HotSpot
 * compiles the migration path). From Java 22 on, lmdbjava's native library loader (jffi) and its
 * use of {@code sun.misc.Unsafe} print warnings on every start; the flags for those are added by
 * version so that node logs stay clean. It does not check that the JDK works beyond reading its
 * {@code release} file.
 *
 * @param home the JDK's home directory (what {@code JAVA_HOME} would be)
 * @param feature its feature version: 17, 21, 25...
 */
public record JavaRuntime(Path home, int feature) {
  private static final Pattern JAVA_VERSION =
      Pattern.compile("^JAVA_VERSION=\"(\\d+)(?:[.\"+-]|$)", Pattern.MULTILINE);

  /** The JVM running the tests. */
  public static JavaRuntime current() {
    return new JavaRuntime(Path.of(System.getProperty("java.home")), Runtime.version().feature());
  }

  /** The JDK at {@code home}, if it has a {@code bin/java} and a readable {@code release} file. */
  public static Optional<JavaRuntime> at(Path home) {
    Path release = home.resolve("release");
    if (!Files.isExecutable(home.resolve("bin").resolve("java")) || !Files.isRegularFile(release)) {
      return Optional.empty();
    }
    try {
      Matcher m = JAVA_VERSION.matcher(Files.readString(release));
      return m.find()
          ? Optional.of(new JavaRuntime(home, Integer.parseInt(m.group(1))))
          : Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /**
   * The Java 25 the build names in {@code ferry.it.jdk25} (integration/pom.xml), if it is there.
   */
  static Optional<JavaRuntime> jdk25() {
    String home = System.getProperty("ferry.it.jdk25", "/usr/lib/jvm/temurin-25-jdk-amd64");
    return at(Path.of(home)).filter(j -> j.feature() >= 25);
  }

  Path javaBinary() {
    return home.resolve("bin").resolve("java");
  }

  /** The JVM flags every node needs on this version. */
  List<String> nodeFlags() {
    List<String> flags = new ArrayList<>(launcherOptions());
    if (feature >= 22) {
      // JEP 472: jffi's System.load is a restricted method; allowed, but warned about.
      flags.add("--enable-native-access=ALL-UNNAMED");
    }
    if (feature >= 23) {
      // JEP 471/498: lmdbjava, Pekko and protobuf use sun.misc.Unsafe memory access.
      flags.add("--sun-misc-unsafe-memory-access=allow");
    }
    return flags;
  }

  /**
   * The options in {@code ferry.jvm-options}, the launcher's argument file: words separated by
   * white space (the file uses no quotes), lines starting with # left out.
   */
  static List<String> launcherOptions() {
    Path file = RepoFiles.find("ferry.jvm-options");
    try {
      List<String> options = new ArrayList<>();
      for (String line : Files.readAllLines(file)) {
        String l = line.strip();
        if (!l.isEmpty() && !l.startsWith("#")) {
          options.addAll(List.of(l.split("\\s+")));
        }
      }
      return options;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot read " + file, e);
    }
  }

  @Override
  public String toString() {
    return "Java " + feature + " at " + home;
  }
}
