package dev.ferry.strategies;

import com.typesafe.config.Config;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Flushing, Sprite's way (Douglis, Ousterhout): the process's backing file lives on a file server
 * ({@code file-server}, a node); at migration the process freezes, its dirty pages are flushed to
 * the file server, and it resumes at the destination with no page there: each page it touches is
 * read from the file server over the network, and its dirty pages are written back there. The
 * freeze costs the dirty pages (plus, the first time, a whole copy if the file server held none);
 * every page-in after it is remote.
 */
public final class FlushingStrategy extends PagingStrategy {
  public static final String NAME = "flushing";
  private static final String PREFIX = "ferry.strategies.flushing.";
  private static final Set<String> KEYS =
      Set.of("file-server", "chunk-bytes", "window", "transfer-timeout");

  private final String fileServer;

  private FlushingStrategy(SectionReader r) {
    super(r.transfer());
    this.fileServer = r.string("file-server").trim();
  }

  /** Reads and validates {@code ferry.strategies.flushing}; errors name the full key. */
  public static FlushingStrategy from(Config c) {
    return new FlushingStrategy(new SectionReader(c, PREFIX, KEYS));
  }

  public String fileServer() {
    return fileServer;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Optional<String> refuse(String pid, String toNode, Optional<PagingView> paging) {
    if (fileServer.isEmpty()) {
      return Optional.of(
          "flushing needs a file server: set ferry.strategies.flushing.file-server to the name of"
              + " the node that keeps flushed pages");
    }
    return super.refuse(pid, toNode, paging);
  }

  @Override
  public Capture freezeAndCapture(MigrationContext ctx) throws MigrationException {
    PagingView paging = paging(ctx);
    boolean onServer = ctx.sourceNode().equals(fileServer);
    // Dirty pages to the file server; a whole copy first if it holds none.
    String copyTo = onServer || paging.replicas().contains(fileServer) ? null : fileServer;
    return freezeAndWriteOut(
        ctx, onServer ? null : fileServer, copyTo, paging.dirty(), 0, 0, List.of(fileServer));
  }

  @Override
  PagingPlan plan(MigrationContext ctx) {
    if (ctx.destination().name().equals(fileServer)) {
      // Moving onto the file server: its copy is local there.
      return PagingPlan.replicated(List.of());
    }
    return new PagingPlan(null, List.of(fileServer), fileServer, null, true);
  }

  @Override
  List<String> keepCopiesOn(MigrationContext ctx) {
    return List.of(fileServer);
  }
}
