package dev.ferry.strategies;

/** The migrating process as it is at its source node. Implemented by the node. */
public interface SourceProcess {
  /** Freezes the process at its next migration point and captures its image. */
  Capture freeze() throws MigrationException;

  /**
   * What the destination needs to resume the frozen process, a {@link
   * dev.ferry.transport.proto.MigrationBundle}: its record, image and logs, the module if asked,
   * and the sandbox's files unless {@code sharedFiles}. It is serialized as it is sent, once.
   */
  Payload bundle(Capture capture, boolean includeModule, boolean sharedFiles)
      throws MigrationException;

  /** Abort: the process continues at the source, where it stopped. */
  void resume(Capture capture);

  /** Commit: the source's copy (thread, image, sandbox unless shared) is discarded. */
  void discard(Capture capture, boolean sharedFiles);
}
