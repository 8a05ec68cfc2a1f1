package dev.ferry.node.service;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * What a Ferry node offers to its clients (the HTTP API, the CLI through it, tests): upload
 * modules, run processes, read their output, checkpoint and restore them.
 *
 * <p>Every method is asynchronous and completes exceptionally with a {@link FerryException} whose
 * {@link FerryException.Kind} says how a client should report it (bad request, not found,
 * conflict...). A failed call changes nothing.
 */
public interface ProcessService {

  /**
   * Validates, instruments when needed (Asyncify; loop points when {@code preemptible}) and stores
   * a module by content hash. Uploading the same bytes twice returns the same hash.
   */
  CompletionStage<ModuleInfo> uploadModule(byte[] wasm, boolean preemptible);

  /** Starts a new process from a stored module. */
  CompletionStage<ProcessInfo> run(RunRequest request);

  /** Every process this node (later: the cluster) knows, running or not, oldest first. */
  CompletionStage<List<ProcessInfo>> list();

  CompletionStage<ProcessInfo> status(String pid);

  /**
   * Reads the process's stdout or stderr from byte {@code offset}. If no byte is available yet and
   * the process may still write, waits up to {@code waitForData} for some.
   */
  CompletionStage<LogChunk> readLog(
      String pid, LogStream stream, long offset, int maxBytes, Duration waitForData);

  /** Completes when the process has exited (or failed), with its final status. */
  CompletionStage<ProcessInfo> awaitExit(String pid);

  /** Stops a running or checkpointed process for good; its log and files stay readable. */
  CompletionStage<ProcessInfo> kill(String pid);

  /** The bytes of a file in the process's sandbox, by guest path ("/out.txt"). */
  CompletionStage<byte[]> readFile(String pid, String guestPath);

  /**
   * Freezes the process at its next migration point, writes its image durably and either stops it
   * (state CHECKPOINTED) or lets it continue ({@code leaveRunning}). A freeze that cannot complete
   * fails and leaves the process running.
   */
  CompletionStage<CheckpointResult> checkpoint(String pid, boolean leaveRunning);

  /** Resumes a CHECKPOINTED process from its image, on the given engine (null: node default). */
  CompletionStage<ProcessInfo> restore(String pid, Engine engine);
}
