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
public final class GfvmStrategy extends PagingStrategy {
  public static final String NAME = "gfvm";
  private final GfvmSettings settings;

  public GfvmStrategy(GfvmSettings settings) {
    super(settings.transfer());
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
  public String noDestination(String pid) {
    return "no node holding an in-sync replica of "
        + pid
        + "'s paging file is up (see ferry status "
        + pid
        + "); name one with --to, or set ferry.strategies.gfvm.allow-full-copy = true";
  }

  @Override
  public Optional<String> refuse(String pid, String toNode, Optional<PagingView> paging) {
    Optional<String> no = super.refuse(pid, toNode, paging);
    if (no.isPresent() || toNode == null) {
      return no;
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
    PagingView paging = paging(ctx);
    String to = ctx.destination().name();
    boolean holds = paging.replicas().contains(to);
    return freezeAndWriteOut(
        ctx, to, holds ? null : to, paging.dirty(), 0, 0, replicasAfter(paging, to, ctx));
  }

  /**
   * The replicas once the process runs at {@code to}: the source (whose copy is current) and the
   * old ones but {@code to}, as many as before.
   */
  public static List<String> replicasAfter(PagingView paging, String to, MigrationContext ctx) {
    List<String> after = new ArrayList<>();
    after.add(ctx.sourceNode());
    for (String r : paging.replicas()) {
      if (!r.equals(to)) {
        after.add(r);
      }
    }
    return List.copyOf(after.subList(0, Math.min(after.size(), paging.replicas().size())));
  }
}
