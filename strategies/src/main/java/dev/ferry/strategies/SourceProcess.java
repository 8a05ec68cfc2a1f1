package dev.ferry.strategies;

import java.util.List;
import java.util.Optional;

/** The migrating process as it is at its source node. Implemented by the node. */
public interface SourceProcess {
  /** Freezes the process at its next migration point and captures its image. */
  Capture freeze() throws MigrationException;

  /** The hash of the module the process runs. */
  String moduleHash() throws MigrationException;

  /**
   * What the destination needs to resume the frozen process, a {@link
   * dev.ferry.transport.proto.MigrationBundle}: its record, image and logs, the module if asked,
   * and the sandbox's files unless {@code sharedFiles}. It is serialized as it is sent, once.
   */
  Payload bundle(Capture capture, boolean includeModule, boolean sharedFiles)
      throws MigrationException;

  /**
   * {@link #bundle(Capture, boolean, boolean)} for a paged process whose paging file, once it runs
   * at the destination, is found as {@code plan} says.
   */
  Payload bundle(Capture capture, boolean includeModule, boolean sharedFiles, PagingPlan plan)
      throws MigrationException;

  /** Abort: the process continues at the source, where it stopped. */
  void resume(Capture capture);

  /**
   * Commit: the source's copy (thread, image, sandbox unless shared) is discarded, and so is its
   * paging file, everywhere, if it has one.
   */
  void discard(Capture capture, boolean sharedFiles);

  /**
   * Commit of a paging strategy: as {@link #discard(Capture, boolean)}, but copies of the paging
   * file on {@code keepCopiesOn} (this node included, if named) are kept; the others are dropped.
   */
  void discardKeepingCopies(Capture capture, boolean sharedFiles, List<String> keepCopiesOn);

  /**
   * Pre-copy, while the process runs: the first round makes {@code node} hold a complete copy of
   * the paging file; each round writes every dirty page to it (and to the file and its replicas).
   * {@code bandwidth} bytes per second at most (0: no limit). Returns the pages sent to {@code
   * node} and the bytes sent to every node (replicas included).
   */
  long[] copyRound(String node, boolean first, long bandwidth) throws MigrationException;

  /** Pre-copy aborted: {@code node}'s copy is dropped. */
  void dropCopy(String node);

  /** Post-copy: the frozen process serves its pages to other nodes; returns the file's name. */
  String servePages(Capture capture) throws MigrationException;

  /**
   * Post-copy, once the destination runs the process: pushes every non-zero page into {@code
   * node}'s {@code file}, at most {@code bandwidth} bytes per second (0: no limit), and tells it
   * the file is complete; {@code progress} gets pages and bytes pushed so far. Returns pages
   * pushed, bytes, and the pages the destination fetched on faults.
   */
  long[] pushPages(
      Capture capture,
      String node,
      String file,
      long bandwidth,
      java.util.function.BiConsumer<Long, Long> progress)
      throws MigrationException;

  /** A fresh name for the process's paging file. */
  String newPagingFile();

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
   * {@code progress} is told the bytes of dirty pages written so far and still to write.
   */
  PageFlush flushFrozen(
      Capture capture,
      String mustHold,
      String fullCopyTo,
      java.util.function.BiConsumer<Long, Long> progress)
      throws MigrationException;
}
