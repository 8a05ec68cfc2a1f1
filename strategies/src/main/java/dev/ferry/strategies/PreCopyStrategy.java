package dev.ferry.strategies;

import com.typesafe.config.Config;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Pre-copy, the V-system's way (Theimer, Lantz, Cheriton): while the process still runs, its whole
 * address space is copied to the destination, then, round after round, the pages it dirtied
 * meanwhile; when what is dirty is small ({@code stop-bytes}) or the rounds run out ({@code
 * max-rounds}) it freezes and only the last dirty pages move. The freeze is short, but the
 * destination must be known from the start and every page crosses the network at least once, hot
 * pages several times ({@code bandwidth} caps the rounds' rate). Here the copy lands in the
 * destination's copy of the process's paging file, so the process resumes there with no page
 * resident and pages in locally, as after gfvm.
 */
public final class PreCopyStrategy extends PagingStrategy {
  public static final String NAME = "pre-copy";
  private static final String PREFIX = "ferry.strategies.pre-copy.";
  private static final Set<String> KEYS =
      Set.of("max-rounds", "stop-bytes", "bandwidth", "chunk-bytes", "window", "transfer-timeout");

  private final int maxRounds;
  private final long stopBytes;
  private final long bandwidth;

  /** Per migration: whether the destination held a replica before the first round. */
  private final Map<String, Boolean> heldBefore = new ConcurrentHashMap<>();

  private PreCopyStrategy(SectionReader r) {
    super(r.transfer());
    this.maxRounds = r.integer("max-rounds", 1, 1000);
    this.stopBytes = r.bytes("stop-bytes", 0, Long.MAX_VALUE);
    this.bandwidth = r.bytes("bandwidth", 0, Long.MAX_VALUE);
  }

  /** Reads and validates {@code ferry.strategies.pre-copy}; errors name the full key. */
  public static PreCopyStrategy from(Config c) {
    return new PreCopyStrategy(new SectionReader(c, PREFIX, KEYS));
  }

  public int maxRounds() {
    return maxRounds;
  }

  public long stopBytes() {
    return stopBytes;
  }

  public long bandwidth() {
    return bandwidth;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public void prepare(MigrationContext ctx) throws MigrationException {
    super.prepare(ctx); // the module first
    PagingView start = paging(ctx);
    String to = ctx.destination().name();
    heldBefore.put(ctx.migrationId(), start.replicas().contains(to));
    List<String> after = GfvmStrategy.replicasAfter(start, to, ctx);
    long pages = 0;
    int rounds = 0;
    long remaining = start.pages() * start.pageSize();
    while (true) {
      if (ctx.cancelled()) {
        throw new MigrationException("cancelled by the operator");
      }
      long[] sent = ctx.source().copyRound(to, rounds == 0, bandwidth);
      pages += sent[0];
      rounds++;
      ctx.bytesMoved(sent[1]);
      PagingView now = paging(ctx);
      remaining = now.dirty() * now.pageSize();
      ctx.pages(new PageReport(0, pages, 0, 0, rounds, 0, after, 0, remaining));
      if (remaining <= stopBytes || rounds >= maxRounds) {
        return;
      }
    }
  }

  @Override
  public Capture freezeAndCapture(MigrationContext ctx) throws MigrationException {
    PageReport before = ctx.pageReport();
    return freezeAndWriteOut(
        ctx,
        ctx.destination().name(),
        null,
        0,
        before.beforeFreeze(),
        before.rounds(),
        before.replicas());
  }

  @Override
  public void commit(MigrationContext ctx, Capture capture) {
    heldBefore.remove(ctx.migrationId());
    super.commit(ctx, capture);
  }

  @Override
  public void abort(MigrationContext ctx, Capture capture, Throwable cause) {
    super.abort(ctx, capture, cause);
    Boolean held = heldBefore.remove(ctx.migrationId());
    if (held != null && !held) {
      ctx.source().dropCopy(ctx.destination().name());
    }
  }
}
