package dev.ferry.api;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds files of the repository (docs/...) from a test, wherever Maven runs it. */
public final class RepoFiles {
  private RepoFiles() {}

  /** The repository root: {@code -Dferry.repo.root}, else the first parent holding docs/. */
  public static Path root() {
    String configured = System.getProperty("ferry.repo.root");
    if (configured != null && Files.isDirectory(Path.of(configured, "docs"))) {
      return Path.of(configured).toAbsolutePath().normalize();
    }
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isDirectory(p.resolve("docs")) && Files.exists(p.resolve("pom.xml"))) {
        return p;
      }
    }
    throw new IllegalStateException("cannot find the repository root (a directory with docs/)");
  }

  public static Path docs(String name) {
    return root().resolve("docs").resolve(name);
  }
}
