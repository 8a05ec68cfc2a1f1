package dev.ferry.strategies;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.Set;

/**
 * Settings of the {@code data-segment} strategy, under {@code ferry.strategies.data-segment}.
 *
 * @param files {@code copy}: the sandbox moves with the process; {@code shared}: every node sees
 *     the same sandbox directory ({@code ferry.strategies.data-segment.shared-dir}), files are
 *     reopened in place
 * @param sharedDir the directory every node shares when {@code files} is {@code shared}
 * @param chunkBytes size of each transfer chunk
 * @param window chunks in flight before the sender waits for acknowledgements
 * @param transferTimeout how long one chunk, the final store or the activation may take
 */
public record DataSegmentSettings(
    String files, String sharedDir, int chunkBytes, int window, Duration transferTimeout) {
  static final String PREFIX = "ferry.strategies.data-segment.";
  private static final Set<String> KEYS =
      Set.of("files", "shared-dir", "chunk-bytes", "window", "transfer-timeout");

  public boolean sharedFiles() {
    return files.equals("shared");
  }

  /** Reads and validates; errors name the full key. */
  public static DataSegmentSettings from(Config c) {
    SectionReader r = new SectionReader(c, PREFIX, KEYS);
    String files = r.string("files");
    if (!files.equals("copy") && !files.equals("shared")) {
      throw r.bad("files", "must be copy or shared, got '" + files + "'");
    }
    String sharedDir = r.string("shared-dir");
    if (files.equals("shared") && sharedDir.isBlank()) {
      throw r.bad("shared-dir", "must name the directory every node shares when files = shared");
    }
    SectionReader.Transfer t = r.transfer();
    return new DataSegmentSettings(files, sharedDir, t.chunkBytes(), t.window(), t.timeout());
  }
}
