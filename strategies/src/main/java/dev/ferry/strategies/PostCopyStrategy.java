package dev.ferry.strategies;

import com.typesafe.config.Config;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Post-copy, or copy-on-reference (Accent, Zayas): the process freezes, only its image without
 * memory moves, and it resumes at once at the destination with no page there; each page it touches
 * is fetched from the source on the fault, while the source pushes every page in the background.
 * The freeze is the shortest of all, but until the push has completed the process depends on its
 * source: <b>if the source fails before then, the process is lost</b> (its next fault of a page not
 * yet pushed fails, and the process fails with that error). The migration record stays {@code
 * restoring} while pages are pushed; it becomes {@code committed} when the push is done, and from
 * then on the source is no longer needed.
 */
public final class PostCopyStrategy extends PagingStrategy {
  public static final String NAME = "post-copy";
  private static final String PREFIX = "ferry.strategies.post-copy.";
  private static final Set<String> KEYS =
      Set.of("push-bandwidth", "chunk-bytes", "window", "transfer-timeout");

  /** Per migration: the plan (the destination's new file, fetched from the source's). */
  private final Map<String, PagingPlan> plans = new ConcurrentHashMap<>();

  private final long pushBandwidth;

  private PostCopyStrategy(SectionReader r) {
    super(r.transfer());
    this.pushBandwidth = r.bytes("push-bandwidth", 0, Long.MAX_VALUE);
  }

  /** Bytes per second the background push may send; 0: no limit. */
  public long pushBandwidth() {
    return pushBandwidth;
  }

  /** Reads and validates {@code ferry.strategies.post-copy}; errors name the full key. */
  public static PostCopyStrategy from(Config c) {
    return new PostCopyStrategy(new SectionReader(c, PREFIX, KEYS));
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Capture freezeAndCapture(MigrationContext ctx) throws MigrationException {
    PagingView paging = paging(ctx);
    Capture c = ctx.source().freezePaged();
    return whileFrozen(
        ctx,
        c,
        () -> {
          String served = ctx.source().servePages(c);
          plans.put(
              ctx.migrationId(),
              new PagingPlan(
                  ctx.source().newPagingFile(), List.of(), ctx.sourceNode(), served, false));
          ctx.pages(
              new PageReport(
                  paging.dirty(), 0, 0, 0, 0, 0, List.of(), 0, paging.pages() * paging.pageSize()));
        });
  }

  @Override
  PagingPlan plan(MigrationContext ctx) {
    return plans.get(ctx.migrationId());
  }

  @Override
  List<String> keepCopiesOn(MigrationContext ctx) {
    return List.of(); // the destination has its own new file; the source's goes everywhere
  }

  /** The process runs at the destination: push every page, then let the source go. */
  @Override
  public void commit(MigrationContext ctx, Capture capture) {
    PagingPlan plan = plans.remove(ctx.migrationId());
    PageReport at = ctx.pageReport();
    long upTo = at.bytesRemaining();
    try {
      long[] pushed =
          ctx.source()
              .pushPages(
                  capture,
                  ctx.destination().name(),
                  plan.file(),
                  pushBandwidth,
                  (pages, bytes) ->
                      ctx.pages(
                          new PageReport(
                              at.dirtyAtFreeze(),
                              0,
                              0,
                              pages,
                              0,
                              0,
                              List.of(),
                              0,
                              Math.max(0, upTo - bytes))));
      ctx.bytesMoved(pushed[1]);
      ctx.pages(new PageReport(at.dirtyAtFreeze(), 0, 0, pushed[0], 0, 0, List.of(), pushed[2], 0));
    } catch (MigrationException e) {
      ctx.problem(
          e.getMessage()
              + "; the process at "
              + ctx.destination().name()
              + " fails at its next fault of a page it does not have");
    }
    super.commit(ctx, capture);
  }

  @Override
  public void abort(MigrationContext ctx, Capture capture, Throwable cause) {
    plans.remove(ctx.migrationId());
    super.abort(ctx, capture, cause);
  }
}
