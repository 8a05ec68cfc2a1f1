package dev.ferry.strategies;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Global File Virtual Memory (Sato, Yano, Maeda: <i>Design of Process Migration Mechanism using
 * Global File Virtual Memory</i>). A paged process's memory is backed by its own paging file, kept
 * in the local store and replicated, written in parallel, on other nodes; a background flusher
 * writes out dirty pages that have gone quiet. At migration the process freezes, only the pages
 * dirtied since they were last written go out (to the paging file and every replica), and the
 * process resumes on a node that holds a replica with no page resident: every page-in there is a
 * local read. Freeze time grows with the dirty bytes, not with the size of the address space.
 *
 * <p>The destination is chosen among the replica holders (least loaded); an explicit one that holds
 * no replica is refused unless {@code allow-full-copy} is set, in which case the whole paging file
 * is copied to it during the freeze. After the move the destination holds the primary copy and the
 * source keeps its (current) copy as a replica: the replica set follows the process.
 */
public final class GfvmStrategy implements MigrationStrategy {
  public static final String NAME = "gfvm";
  private final GfvmSettings settings;

  public GfvmStrategy(GfvmSettings settings) {
    this.settings = settings;
  }

  public GfvmSettings settings() {
    return settings;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Optional<String> chooseDestination(List<NodeCandidate> candidates) {
    Comparator<NodeCandidate> leastLoaded =
        Comparator.comparingDouble(NodeCandidate::load).thenComparing(NodeCandidate::name);
    Optional<String> holder =
        candidates.stream()
            .filter(NodeCandidate::holdsReplica)
            .min(leastLoaded)
            .map(NodeCandidate::name);
    if (holder.isPresent() || !settings.allowFullCopy()) {
      return holder;
    }
    return candidates.stream().min(leastLoaded).map(NodeCandidate::name);
  }

  @Override
  public Optional<String> refuse(String pid, String toNode, Optional<PagingView> paging) {
    if (paging.isEmpty()) {
      return Optional.of(
          "process "
              + pid
              + " does not run on paged memory: gfvm moves paged processes (started with"
              + " ferry run --paged); use --strategy data-segment");
    }
    if (!paging.get().replicas().contains(toNode) && !settings.allowFullCopy()) {
      return Optional.of(
          "node "
              + toNode
              + " holds no replica of "
              + pid
              + "'s paging file (replicas: "
              + (paging.get().replicas().isEmpty()
                  ? "none"
                  : String.join(", ", paging.get().replicas()))
              + "); move it to one of those, or set ferry.strategies.gfvm.allow-full-copy = true"
              + " to copy the whole paging file");
    }
    return Optional.empty();
  }

  @Override
  public Capture freezeAndCapture(MigrationContext ctx) throws MigrationException {
    PagingView paging =
        ctx.source()
            .paging()
            .orElseThrow(() -> new MigrationException(ctx.pid() + " is not paged"));
    String to = ctx.destination().name();
    Capture c = ctx.source().freezePaged();
    try {
      boolean holds = paging.replicas().contains(to);
      PageFlush f = ctx.source().flushFrozen(c, to, holds ? null : to);
      ctx.bytesMoved(f.bytesSent());
      ctx.pages(
          new PageReport(
              f.dirtyPages(),
              0,
              f.pagesWritten() + f.fullCopyPages(),
              0,
              0,
              f.bytesSent(),
              replicasAfter(paging, to, ctx)));
    } catch (MigrationException | RuntimeException e) {
      ctx.source().resume(c);
      throw e;
    }
    return c;
  }

  /**
   * The replicas once the process runs at {@code to}: the old ones but {@code to}, plus the source
   * (whose copy is current), as many as before.
   */
  static List<String> replicasAfter(PagingView paging, String to, MigrationContext ctx) {
    List<String> after = new ArrayList<>();
    for (String r : paging.replicas()) {
      if (!r.equals(to)) {
        after.add(r);
      }
    }
    after.add(0, ctx.sourceNode());
    int want = Math.max(paging.replicas().size(), 0);
    while (after.size() > want && after.size() > 1) {
      after.remove(after.size() - 1);
    }
    if (want == 0) {
      after.clear();
    }
    return after;
  }

  @Override
  public void transfer(MigrationContext ctx, Capture capture) throws MigrationException {
    boolean needModule = !ctx.destination().hasModule(capture.image().getModuleHash());
    Payload bytes = ctx.source().bundle(capture, needModule, false, ctx.pageReport().replicas());
    if (ctx.cancelled()) {
      throw new MigrationException("cancelled");
    }
    ctx.destination().transferAndActivate(bytes, settings.chunkBytes(), settings.window(), null);
    ctx.bytesMoved(bytes.size());
  }

  @Override
  public void restore(MigrationContext ctx, Capture capture) {
    // The destination resumed the process, with no page resident, in answer to the last chunk.
  }

  @Override
  public void commit(MigrationContext ctx, Capture capture) {
    ctx.source().discardKeepingPagingFile(capture, false, ctx.pageReport().replicas());
  }

  @Override
  public void abort(MigrationContext ctx, Capture capture, Throwable cause) {
    ctx.destination().abort();
    if (capture != null) {
      ctx.source().resume(capture);
    }
  }
}
