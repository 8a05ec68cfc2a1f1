package dev.ferry.strategies;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the strategies that move a paged process's memory through its paging file share (gfvm,
 * pre-copy, post-copy, flushing): the process freezes with its memory left out of the image, the
 * bundle (image without memory, logs, sandbox files, module if needed) moves like data-segment's
 * and tells the destination where the paging file is ({@link #plan}), and the destination resumes
 * it in answer to the last chunk with no page resident.
 */
abstract class PagingStrategy implements MigrationStrategy {
  private final SectionReader.Transfer transfer;

  PagingStrategy(SectionReader.Transfer transfer) {
    this.transfer = transfer;
  }

  @Override
  public Optional<String> refuse(String pid, String toNode, Optional<PagingView> paging) {
    if (paging.isEmpty()) {
      return Optional.of(
          "process "
              + pid
              + " does not run on paged memory: "
              + name()
              + " moves paged processes (started with ferry run --paged); use --strategy"
              + " data-segment");
    }
    return Optional.ofNullable(paging.get().busy());
  }

  /** The module goes ahead, while the process runs ({@link ModuleAhead}). */
  @Override
  public void prepare(MigrationContext ctx) throws MigrationException {
    ModuleAhead.send(ctx, transfer.chunkBytes());
  }

  /**
   * Where the destination finds the paging file once the process runs there. Default: the same
   * file, replicated where the last page report says (gfvm, pre-copy).
   */
  PagingPlan plan(MigrationContext ctx) {
    return PagingPlan.replicated(ctx.pageReport().replicas());
  }

  /**
   * The nodes whose copies of the paging file survive the commit. Default: the replicas the last
   * page report names, and the destination.
   */
  List<String> keepCopiesOn(MigrationContext ctx) {
    List<String> keep = new ArrayList<>(ctx.pageReport().replicas());
    keep.add(ctx.destination().name());
    return keep;
  }

  /**
   * Freezes the process with its memory left out of the image and, while it stands still, writes
   * its dirty pages out (to the paging file and every replica; {@code mustHold} must take them,
   * {@code fullCopyTo} gets the whole file), reporting progress and then what moved, with the pages
   * moved before the freeze, the rounds and the replicas afterwards as given. If anything fails the
   * process resumes at once.
   */
  static Capture freezeAndWriteOut(
      MigrationContext ctx,
      String mustHold,
      String fullCopyTo,
      long dirtyEstimate,
      long beforeFreeze,
      int rounds,
      List<String> replicasAfter)
      throws MigrationException {
    Capture c = ctx.source().freezePaged();
    return whileFrozen(
        ctx,
        c,
        () -> {
          PageFlush f =
              ctx.source()
                  .flushFrozen(
                      c,
                      mustHold,
                      fullCopyTo,
                      (written, left) ->
                          ctx.pages(
                              new PageReport(
                                  dirtyEstimate,
                                  beforeFreeze,
                                  0,
                                  0,
                                  rounds,
                                  written,
                                  replicasAfter,
                                  0,
                                  left)));
          ctx.bytesMoved(f.bytesSent());
          ctx.pages(
              new PageReport(
                  f.dirtyPages(),
                  beforeFreeze,
                  f.pagesWritten() + f.fullCopyPages(),
                  0,
                  rounds,
                  f.bytesSent(),
                  replicasAfter,
                  0,
                  0));
        });
  }

  /** Paging of the process, or a clear error. */
  static PagingView paging(MigrationContext ctx) throws MigrationException {
    return ctx.source()
        .paging()
        .orElseThrow(
            () -> new MigrationException("process " + ctx.pid() + " does not run on paged memory"));
  }

  /** Runs {@code step} on a frozen capture; if it fails the process resumes at once. */
  static Capture whileFrozen(MigrationContext ctx, Capture c, Step step) throws MigrationException {
    try {
      step.run();
      return c;
    } catch (MigrationException | RuntimeException e) {
      ctx.source().resume(c);
      throw e;
    }
  }

  /** A step that may fail. */
  @FunctionalInterface
  interface Step {
    void run() throws MigrationException;
  }

  @Override
  public void transfer(MigrationContext ctx, Capture capture) throws MigrationException {
    boolean needModule = !ctx.destination().hasModule(capture.image().getModuleHash());
    Payload bytes = ctx.source().bundle(capture, needModule, false, plan(ctx));
    if (ctx.cancelled()) {
      throw new MigrationException("cancelled");
    }
    ctx.destination().transferAndActivate(bytes, transfer.chunkBytes(), transfer.window(), null);
    ctx.bytesMoved(bytes.size());
  }

  @Override
  public void restore(MigrationContext ctx, Capture capture) throws MigrationException {
    // The destination resumed the process, with no page resident, in answer to the last chunk.
  }

  @Override
  public void commit(MigrationContext ctx, Capture capture) {
    ctx.source().discardKeepingCopies(capture, false, keepCopiesOn(ctx));
  }

  @Override
  public void abort(MigrationContext ctx, Capture capture, Throwable cause) {
    ctx.destination().abort();
    if (capture != null) {
      ctx.source().resume(capture);
    }
  }
}
