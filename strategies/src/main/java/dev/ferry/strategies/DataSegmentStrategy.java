package dev.ferry.strategies;

/**
 * Heterogeneous process migration (Nagasawa, Ohgo, Aida, Saito): at the freeze the whole
 * machine-independent image — every memory page, globals, the Asyncify-unwound stack, WASI state —
 * moves at once; execution resumes at the same migration point under any engine; open files are
 * reopened by full path and repositioned to their offsets. The sandbox is copied with the process,
 * or, with {@code files = shared}, reopened in place in a directory every node shares (the paper's
 * NFS).
 *
 * <p>Freeze time is the whole transfer: it grows with the image, not with what changed. That is
 * what {@code gfvm} and {@code pre-copy} improve on.
 */
public final class DataSegmentStrategy implements MigrationStrategy {
  public static final String NAME = "data-segment";
  private final DataSegmentSettings settings;

  public DataSegmentStrategy(DataSegmentSettings settings) {
    this.settings = settings;
  }

  @Override
  public String name() {
    return NAME;
  }

  /** The module goes ahead, while the process runs ({@link ModuleAhead}). */
  @Override
  public void prepare(MigrationContext ctx) throws MigrationException {
    ModuleAhead.send(ctx, settings.chunkBytes());
  }

  @Override
  public Capture freezeAndCapture(MigrationContext ctx) throws MigrationException {
    return ctx.source().freeze();
  }

  @Override
  public void transfer(MigrationContext ctx, Capture capture) throws MigrationException {
    boolean needModule = !ctx.destination().hasModule(capture.image().getModuleHash());
    Payload bytes = ctx.source().bundle(capture, needModule, settings.sharedFiles());
    if (ctx.cancelled()) {
      throw new MigrationException("cancelled");
    }
    ctx.destination().transferAndActivate(bytes, settings.chunkBytes(), settings.window(), null);
    ctx.bytesMoved(bytes.size());
  }

  @Override
  public void restore(MigrationContext ctx, Capture capture) {
    // Nothing left to do: the destination resumed the process in answer to the last chunk.
  }

  @Override
  public void commit(MigrationContext ctx, Capture capture) {
    ctx.source().discard(capture, settings.sharedFiles());
  }

  @Override
  public void abort(MigrationContext ctx, Capture capture, Throwable cause) {
    ctx.destination().abort();
    if (capture != null) {
      ctx.source().resume(capture);
    }
  }
}
