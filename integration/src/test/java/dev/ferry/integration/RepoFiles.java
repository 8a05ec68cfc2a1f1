package dev.ferry.integration;

import java.nio.file.Files;
import java.nio.file.Path;

/** Files of the repository the tests run from, found without knowing the working directory. */
final class RepoFiles {
  private RepoFiles() {}

  /**
   * {@code relative} in the nearest directory at or above the working directory that has it (the
   * repository root: tests run from the module's directory, an IDE or a script from elsewhere).
   */
  static Path find(String relative) {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.exists(d.resolve(relative))) {
        return d.resolve(relative);
      }
    }
    throw new IllegalStateException(
        "cannot find " + relative + " above " + Path.of("").toAbsolutePath());
  }
}
