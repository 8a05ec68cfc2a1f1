package dev.ferry.strategies;

/**
 * A destination without the process's module gets it in {@link MigrationStrategy#prepare}, while
 * the process still runs: storing it and compiling it for the compiled engine take hundreds of
 * milliseconds on a node that has never run it, which would otherwise all be spent while the
 * process stands still (the bundle would carry it).
 */
final class ModuleAhead {
  private ModuleAhead() {}

  static void send(MigrationContext ctx, int chunkBytes) throws MigrationException {
    String hash = ctx.source().moduleHash();
    if (!ctx.destination().hasModule(hash)) {
      ctx.bytesMoved(ctx.destination().sendModule(hash, chunkBytes));
    }
  }
}
