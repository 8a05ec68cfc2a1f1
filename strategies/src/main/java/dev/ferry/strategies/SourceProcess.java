package dev.ferry.strategies;

import java.util.List;
import java.util.Optional;

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

  /**
   * {@link #bundle(Capture, boolean, boolean)} for a paged process whose paging file's replicas,
   * once it runs at the destination, are {@code replicasAfter}.
   */
  Payload bundle(
      Capture capture, boolean includeModule, boolean sharedFiles, List<String> replicasAfter)
      throws MigrationException;

  /** Abort: the process continues at the source, where it stopped. */
  void resume(Capture capture);

  /**
   * Commit: the source's copy (thread, image, sandbox unless shared) is discarded, and so is its
   * paging file, everywhere, if it has one.
   */
  void discard(Capture capture, boolean sharedFiles);

  /**
   * Commit of a paging strategy: as {@link #discard(Capture, boolean)}, but the paging file moved
   * with the process: the source keeps its copy as a replica if it is among {@code replicasAfter},
   * and copies on nodes that are neither there nor the destination are dropped.
   */
  void discardKeepingPagingFile(Capture capture, boolean sharedFiles, List<String> replicasAfter);

  /** The process's paging file, or empty if it does not run on paged memory. */
  Optional<PagingView> paging();

  /**
   * Freezes like {@link #freeze()}, but leaves linear memory out of the image: it is in the paging
   * file (see {@link #flushFrozen}). Only for a paged process.
   */
  Capture freezePaged() throws MigrationException;

  /**
   * While the process stands still: writes every dirty page to the paging file and to every
   * replica, durably, in parallel; if {@code fullCopyTo} is not null, also copies the whole file to
   * that node, which then holds a replica. Fails if the write to {@code mustHold} (the destination)
   * or to the local file fails; a replica that fails otherwise is reported lost and replaced later.
   */
  PageFlush flushFrozen(Capture capture, String mustHold, String fullCopyTo)
      throws MigrationException;
}
