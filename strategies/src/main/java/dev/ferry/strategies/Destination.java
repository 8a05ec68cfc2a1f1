package dev.ferry.strategies;

/** The node a process moves to, as seen from the source. Implemented by the node. */
public interface Destination {
  String name();

  /** True if the destination already stores this module. */
  boolean hasModule(String moduleHash) throws MigrationException;

  /**
   * Sends a module of this node ahead of the bundle, in chunks of {@code chunkBytes}, while the
   * process runs: the destination stores it durably and prepares it for its engine before it
   * answers, and {@link #hasModule} is true from then on. Returns the bytes sent.
   */
  long sendModule(String moduleHash, int chunkBytes) throws MigrationException;

  /**
   * Sends {@code bytes} in bounded chunks; the destination stores them durably and resumes the
   * process, under {@code engine} (null: its default), in answer to the last one: the transfer and
   * the activation in one round trip. Once the last chunk is on its way the migration can no longer
   * be cancelled: it commits if the destination runs the process, and aborts (the source resumes)
   * only if it certainly does not. Afterwards {@link #activated()} is true and {@link
   * #restoreMicros()} is the destination's own restore time.
   */
  void transferAndActivate(Payload bytes, int chunkBytes, int window, String engine)
      throws MigrationException;

  /** True once the destination runs the process. */
  boolean activated();

  /** How long the destination took to restore and start the process, once {@link #activated()}. */
  long restoreMicros();

  /** Tells the destination to drop whatever it received; best effort. */
  void abort();
}
