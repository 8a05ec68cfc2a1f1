package dev.ferry.node.cluster;

import com.google.protobuf.UnsafeByteOperations;
import com.typesafe.config.Config;
import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.FerryException;
import dev.ferry.strategies.Capture;
import dev.ferry.strategies.Destination;
import dev.ferry.strategies.MigrationContext;
import dev.ferry.strategies.MigrationException;
import dev.ferry.strategies.MigrationStrategy;
import dev.ferry.strategies.SourceProcess;
import dev.ferry.transport.proto.AbortIncoming;
import dev.ferry.transport.proto.Activate;
import dev.ferry.transport.proto.MigrationBundle;
import dev.ferry.transport.proto.MigrationFinished;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessImage;
import dev.ferry.transport.proto.TransferChunk;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one migration, on the source node, through its strategy's phases, and records each phase's
 * time and bytes. The protocol:
 *
 * <pre>
 *   source (this)                                    destination (its NodeAgent)
 *   freeze at a migration point, capture image
 *   TransferChunk 0..n-1 (window; 0 announces) ────► assemble
 *   last chunk (crc32c) ───────────────────────────► verify, store bundle durably, sync
 *                       ◄─────────────────────────── Ack            (until here: abort = resume here)
 *   place the process's shard at the destination
 *   Activate ──────────────────────────────────────► restore image, run
 *                       ◄─────────────────────────── ProcessInfo    COMMIT
 *   discard the frozen copy (thread, image, sandbox)
 * </pre>
 *
 * Any failure or a cancel before the destination runs the process aborts: the destination drops
 * what it received, the shard goes back to the source, and the process resumes where it froze. If
 * the destination's answer to Activate is lost, the coordinator asks it whether it runs the process
 * before deciding, so there are never two live copies.
 */
final class MigrationCoordinator implements MigrationContext {
  private static final Logger log = LoggerFactory.getLogger(MigrationCoordinator.class);
  private static final ExecutorService THREADS =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "ferry-migration");
            t.setDaemon(true);
            return t;
          });

  private final ClusterRuntime rt;
  private final String id;
  private final String pid;
  private final String toNode;
  private final MigrationStrategy strategy;
  private final ActorRef<ProcessCommand> entity;
  private final Config strategySettings;
  private final Duration stepTimeout;
  private final Source source = new Source();
  private final AgentDestination destination = new AgentDestination();
  private volatile boolean cancelled;
  private volatile boolean committing;
  private MigrationRecord.Builder rec; // guarded by this

  MigrationCoordinator(
      ClusterRuntime rt,
      String id,
      String pid,
      String toNode,
      MigrationStrategy strategy,
      ActorRef<ProcessCommand> entity) {
    this.rt = rt;
    this.id = id;
    this.pid = pid;
    this.toNode = toNode;
    this.strategy = strategy;
    this.entity = entity;
    this.strategySettings = rt.settings.strategy(strategy.name());
    this.stepTimeout =
        strategySettings.hasPath("transfer-timeout")
            ? strategySettings.getDuration("transfer-timeout")
            : Duration.ofSeconds(30);
    this.rec =
        MigrationRecord.newBuilder()
            .setId(id)
            .setPid(pid)
            .setFromNode(rt.nodeName)
            .setToNode(toNode)
            .setStrategy(strategy.name())
            .setState(MigrationRecord.State.PENDING)
            .setRequestedAtMicros(Wire.nowMicros());
  }

  synchronized MigrationRecord record() {
    return rec.build();
  }

  void start() {
    rt.running.put(id, this);
    publish();
    THREADS.execute(this::run);
  }

  /** Asks the migration to stop; honoured until the destination has been told to run it. */
  void cancel() {
    cancelled = true;
  }

  private void run() {
    long t0 = System.nanoTime();
    MigrationRecord.State finalState = MigrationRecord.State.ABORTED;
    long frozenAt = 0;
    Capture capture = null;
    boolean placedAtDestination = false;
    try {
      strategy.prepare(this);
      checkCancelled();
      state(MigrationRecord.State.FREEZING);
      frozenAt = System.nanoTime();
      capture = strategy.freezeAndCapture(this);
      Capture c = capture;
      update(
          r ->
              r.setFreezeMicros(c.freezeMicros())
                  .setCaptureMicros(c.captureMicros())
                  .setImageBytes(c.image().getSerializedSize())
                  .setFromEngine(c.image().getCapturedOnEngine()));
      checkCancelled();

      state(MigrationRecord.State.TRANSFERRING);
      long tr = System.nanoTime();
      strategy.transfer(this, capture);
      update(r -> r.setTransferMicros(micros(System.nanoTime() - tr)));
      checkCancelled();

      state(MigrationRecord.State.RESTORING);
      long rs = System.nanoTime();
      Address to =
          rt.address(toNode)
              .orElseThrow(() -> new MigrationException("node " + toNode + " left the cluster"));
      rt.place(pid, to).toCompletableFuture().get(stepTimeout.toMillis(), TimeUnit.MILLISECONDS);
      placedAtDestination = true;
      committing = true;
      strategy.restore(this, capture);
      long restored = System.nanoTime();
      long frozen = frozenAt;
      update(
          r ->
              r.setRestoreMicros(micros(restored - rs))
                  .setTotalFreezeMicros(micros(restored - frozen)));
      strategy.commit(this, capture);
      rt.knownModules.add(toNode + "/" + capture.image().getModuleHash());
      finalState = MigrationRecord.State.COMMITTED;
    } catch (Throwable e) {
      String why = cancelled && !committing ? "cancelled by the operator" : message(e);
      log.warn("migration {} of {} to {} aborted: {}", id, pid, toNode, why);
      if (placedAtDestination) {
        rt.place(pid, rt.selfAddress());
      }
      try {
        strategy.abort(this, capture, e);
      } catch (RuntimeException ex) {
        log.error("abort of migration {} failed: {}", id, ex.toString());
      }
      long resumedAt = System.nanoTime();
      long frozen = frozenAt;
      finalState =
          cancelled && !committing
              ? MigrationRecord.State.CANCELLED
              : MigrationRecord.State.ABORTED;
      synchronized (this) {
        rec.setError(why);
        if (frozen != 0) {
          rec.setTotalFreezeMicros(micros(resumedAt - frozen));
        }
      }
    } finally {
      // The final state, the total and the end time become visible together.
      long total = System.nanoTime() - t0;
      MigrationRecord.State end = finalState;
      update(
          r -> r.setState(end).setTotalMicros(micros(total)).setFinishedAtMicros(Wire.nowMicros()));
      rt.running.remove(id);
      MigrationRecord r = record();
      entity.tell(
          ProcessCommand.newBuilder()
              .setPid(pid)
              .setMigrationFinished(
                  MigrationFinished.newBuilder()
                      .setMigrationId(id)
                      .setCommitted(r.getState() == MigrationRecord.State.COMMITTED)
                      .setToNode(toNode))
              .build());
    }
  }

  private static String message(Throwable e) {
    Throwable c = e;
    while ((c instanceof java.util.concurrent.ExecutionException
            || c instanceof java.util.concurrent.CompletionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    return c.getMessage() != null ? c.getMessage() : c.toString();
  }

  private void checkCancelled() throws MigrationException {
    if (cancelled) {
      throw new MigrationException("cancelled by the operator");
    }
  }

  private void state(MigrationRecord.State s) {
    update(r -> r.setState(s));
  }

  private MigrationRecord.State published;

  /**
   * Applies a change to the record and saves it; publishes an event when the state changed (so
   * subscribers see each phase once, with the times known by then).
   */
  private void update(java.util.function.Consumer<MigrationRecord.Builder> change) {
    synchronized (this) {
      change.accept(rec);
    }
    publish();
  }

  private void publish() {
    MigrationRecord r = record();
    rt.saveMigration(r);
    boolean changed;
    synchronized (this) {
      changed = r.getState() != published;
      published = r.getState();
    }
    if (changed) {
      rt.publish(rt.event().setMigration(r).build());
    }
  }

  private static long micros(long nanos) {
    return nanos / 1000;
  }

  // ---------------------------------------------------------------------------------------------
  // MigrationContext

  @Override
  public String migrationId() {
    return id;
  }

  @Override
  public String pid() {
    return pid;
  }

  @Override
  public SourceProcess source() {
    return source;
  }

  @Override
  public Destination destination() {
    return destination;
  }

  @Override
  public Config settings() {
    return strategySettings;
  }

  @Override
  public void bytesMoved(long bytes) {
    update(r -> r.setBytesMoved(r.getBytesMoved() + bytes));
  }

  @Override
  public boolean cancelled() {
    return cancelled && !committing;
  }

  // ---------------------------------------------------------------------------------------------
  // The process at this node

  private record FrozenCapture(WasmProcess.Frozen frozen) implements Capture {
    @Override
    public ProcessImage image() {
      return frozen.image();
    }

    @Override
    public long freezeMicros() {
      return frozen.freezeNanos() / 1000;
    }

    @Override
    public long captureMicros() {
      return frozen.captureNanos() / 1000;
    }
  }

  private final class Source implements SourceProcess {
    @Override
    public Capture freeze() throws MigrationException {
      try {
        return new FrozenCapture(rt.processes.freezeForMigration(pid));
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public MigrationBundle bundle(Capture c, boolean includeModule, boolean sharedFiles)
        throws MigrationException {
      try {
        return rt.processes.bundle(pid, ((FrozenCapture) c).frozen(), includeModule, sharedFiles);
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public void resume(Capture c) {
      rt.processes.resumeAfterAbort(pid, ((FrozenCapture) c).frozen());
    }

    @Override
    public void discard(Capture c, boolean sharedFiles) {
      rt.processes.discardAfterCommit(pid, ((FrozenCapture) c).frozen(), sharedFiles, toNode);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The destination, through its agent

  private final class AgentDestination implements Destination {
    @Override
    public String name() {
      return toNode;
    }

    private ActorRef<NodeRequest> agent() throws MigrationException {
      return rt.agent(toNode)
          .orElseThrow(() -> new MigrationException("node " + toNode + " is not in the cluster"));
    }

    private NodeReply ask(NodeRequest.Builder req) throws MigrationException {
      checkReachable();
      try {
        NodeReply r =
            awaitCancellable(NodeAgent.ask(rt, agent(), req, stepTimeout).toCompletableFuture());
        if (r.hasError()) {
          throw new MigrationException(toNode + ": " + r.getError().getMessage());
        }
        return r;
      } catch (MigrationException e) {
        throw e;
      } catch (Exception e) {
        throw new MigrationException("node " + toNode + " did not answer: " + message(e), e);
      }
    }

    /** Waits for an answer, but gives up as soon as the migration is cancelled. */
    private <T> T awaitCancellable(CompletableFuture<T> f) throws Exception {
      long deadline = System.nanoTime() + stepTimeout.toNanos() + 1_000_000_000L;
      while (true) {
        if (cancelled()) {
          throw new MigrationException("cancelled by the operator");
        }
        try {
          return f.get(50, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
          if (System.nanoTime() > deadline) {
            throw e;
          }
          checkReachable();
        }
      }
    }

    private void checkReachable() throws MigrationException {
      // An agent the receptionist no longer lists is on a node that is unreachable or gone.
      ActorRef<NodeRequest> agent =
          rt.agent(toNode)
              .orElseThrow(
                  () -> new MigrationException("node " + toNode + " is unreachable or has left"));
      Cluster c = Cluster.get(rt.system);
      for (Member m : c.state().getUnreachable()) {
        if (agent.path().address().equals(m.address())) {
          throw new MigrationException("node " + toNode + " is unreachable");
        }
      }
    }

    @Override
    public boolean hasModule(String moduleHash) throws MigrationException {
      // Modules never leave a node's store: once known there, no need to ask again.
      if (rt.knownModules.contains(toNode + "/" + moduleHash)) {
        return true;
      }
      boolean present =
          ask(NodeRequest.newBuilder().setModuleHash(moduleHash)).getAck().getPresent();
      if (present) {
        rt.knownModules.add(toNode + "/" + moduleHash);
      }
      return present;
    }

    @Override
    public void transfer(byte[] bytes, int chunkBytes, int window) throws MigrationException {
      ActorRef<NodeRequest> agent = agent();
      Semaphore inFlight = new Semaphore(window);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      int chunks = Math.max(1, (bytes.length + chunkBytes - 1) / chunkBytes);
      int crc = crc32c(bytes);
      for (int seq = 0; seq < chunks; seq++) {
        int off = seq * chunkBytes;
        int n = Math.min(chunkBytes, bytes.length - off);
        TransferChunk.Builder c =
            TransferChunk.newBuilder()
                .setMigrationId(id)
                .setSeq(seq)
                // no copy: the bundle's bytes are never changed after serialization
                .setData(UnsafeByteOperations.unsafeWrap(bytes, off, n));
        if (seq == 0) {
          c.setTotalBytes(bytes.length).setPid(pid).setFromNode(rt.nodeName);
        }
        if (seq == chunks - 1) {
          // The last chunk is answered once the destination holds the bundle durably.
          c.setLast(true).setCrc32C(crc);
          acquire(inFlight, window);
          if (failure.get() != null) {
            throw new MigrationException(
                "transfer to " + toNode + " failed: " + message(failure.get()));
          }
          NodeReply last = ask(NodeRequest.newBuilder().setTransferChunk(c));
          update(
              r ->
                  r.setStreamMicros(last.getAck().getStreamMicros())
                      .setStoreMicros(last.getAck().getStoreMicros()));
          return;
        }
        acquire(inFlight, 1);
        if (failure.get() != null) {
          throw new MigrationException(
              "transfer to " + toNode + " failed: " + message(failure.get()));
        }
        NodeAgent.ask(rt, agent, NodeRequest.newBuilder().setTransferChunk(c), stepTimeout)
            .whenComplete(
                (r, e) -> {
                  if (e != null) {
                    failure.compareAndSet(null, e);
                  } else if (r.hasError()) {
                    failure.compareAndSet(null, new MigrationException(r.getError().getMessage()));
                  }
                  inFlight.release();
                });
      }
    }

    /** Waits for acknowledgements (window permits), checking for cancellation and reachability. */
    private void acquire(Semaphore inFlight, int permits) throws MigrationException {
      long deadline = System.nanoTime() + stepTimeout.toNanos();
      try {
        while (!inFlight.tryAcquire(permits, 50, TimeUnit.MILLISECONDS)) {
          if (cancelled()) {
            throw new MigrationException("cancelled by the operator");
          }
          if (System.nanoTime() > deadline) {
            throw new MigrationException(
                "node " + toNode + " acknowledged no chunk for " + stepTimeout);
          }
          checkReachable();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new MigrationException("interrupted");
      }
    }

    @Override
    public void activate(String engine) throws MigrationException {
      try {
        NodeReply r =
            ask(
                NodeRequest.newBuilder()
                    .setActivate(
                        Activate.newBuilder()
                            .setMigrationId(id)
                            .setEngine(engine == null ? "" : engine)));
        update(x -> x.setToEngine(r.getInfo().getRecord().getEngine()));
      } catch (MigrationException e) {
        if (e.getMessage().startsWith(toNode + ": ")) {
          throw e; // the destination said it could not run it: safe to resume here
        }
        // No answer: it may run the process already. Ask before deciding.
        if (runsThere()) {
          log.warn(
              "migration {}: no answer to activate, but {} runs {}; committing", id, toNode, pid);
          return;
        }
        throw e;
      }
    }

    private boolean runsThere() {
      for (int attempt = 0; attempt < 3; attempt++) {
        try {
          NodeReply r =
              NodeAgent.ask(
                      rt,
                      agent(),
                      NodeRequest.newBuilder()
                          .setListProcesses(dev.ferry.transport.proto.Empty.getDefaultInstance()),
                      stepTimeout)
                  .toCompletableFuture()
                  .get(stepTimeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
          return r.getProcesses().getProcessesList().stream()
              .anyMatch(p -> p.getRecord().getId().equals(pid));
        } catch (Exception ignored) {
          // try again
        }
      }
      return false;
    }

    @Override
    public void abort() {
      rt.agent(toNode)
          .ifPresent(
              a ->
                  NodeAgent.ask(
                          rt,
                          a,
                          NodeRequest.newBuilder()
                              .setAbortIncoming(AbortIncoming.newBuilder().setMigrationId(id)),
                          Duration.ofSeconds(5))
                      .exceptionally(e -> null));
    }
  }

  static int crc32c(byte[] bytes) {
    java.util.zip.CRC32C c = new java.util.zip.CRC32C();
    c.update(bytes, 0, bytes.length);
    return (int) c.getValue();
  }
}
