package dev.ferry.node.cluster;

import com.google.protobuf.UnsafeByteOperations;
import com.typesafe.config.Config;
import dev.ferry.node.DaemonThreads;
import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.strategies.Capture;
import dev.ferry.strategies.Destination;
import dev.ferry.strategies.MigrationContext;
import dev.ferry.strategies.MigrationException;
import dev.ferry.strategies.MigrationStrategy;
import dev.ferry.strategies.Payload;
import dev.ferry.strategies.SourceProcess;
import dev.ferry.transport.proto.AbortIncoming;
import dev.ferry.transport.proto.Ack;
import dev.ferry.transport.proto.MigrationFinished;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessImage;
import dev.ferry.transport.proto.TransferChunk;
import dev.ferry.transport.proto.TransferEndpoint;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
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
 *   source (this)                                    destination (its TransferServer)
 *   connect ─────────────────────────────────────────► (accepted while the source freezes)
 *   freeze at a migration point, capture image
 *   TransferChunk 0..n-1 (window; 0 announces) ────► assemble
 *   last chunk (crc32c, engine) ───────────────────► verify; store bundle durably (sync)
 *                                                    while the image is restored, held
 *                       ◄─────────────────────────── Ack + ProcessInfo   COMMIT
 *                                                    the process runs; place shard here
 *   discard the frozen copy (thread, image, logs; sandbox moved aside and deleted in the
 *   background); place the shard at the destination
 * </pre>
 *
 * Any failure or a cancel before the last chunk is sent aborts: the destination drops what it
 * received and the process resumes where it froze. Once the last chunk has left, cancelling is no
 * longer possible; a destination that answers with an error has dropped the process, and if no
 * answer comes the coordinator asks the destination whether it runs the process before deciding, so
 * there are never two live copies. The process's shard (where requests for it are routed) moves
 * only after the commit; until it has, the entity here forwards requests to the destination.
 *
 * <p>A destination that stops between its durable store and the (unsynced) record that the process
 * runs there comes back holding the process in doubt and asks this node how the migration ended
 * ({@link ClusterRuntime#outcome}): committed, it runs it; not, it drops it.
 */
final class MigrationCoordinator implements MigrationContext {
  private static final Logger log = LoggerFactory.getLogger(MigrationCoordinator.class);
  private static final java.util.concurrent.ScheduledExecutorService WATCHDOG =
      Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("ferry-migration-watchdog"));
  private static final ExecutorService THREADS =
      Executors.newCachedThreadPool(DaemonThreads.named("ferry-migration"));

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
            .setRequestedAtMicros(ProtoRecords.nowMicros());
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
    try {
      strategy.prepare(this);
      checkCancelled();
      // The transfer connection opens while the process freezes, not after (and not before a
      // long prepare, e.g. pre-copy rounds: the destination would give up on a silent one).
      destination.preconnect();
      state(MigrationRecord.State.FREEZING);
      frozenAt = System.nanoTime();
      capture = strategy.freezeAndCapture(this);
      Capture c = capture;
      // Capture is writing the state out: the image, and for a paging strategy what it wrote
      // while the process stood still (dirty pages to the paging file and its replicas).
      long captured =
          Math.max(c.captureMicros(), micros(System.nanoTime() - frozenAt) - c.freezeMicros());
      update(
          r ->
              r.setFreezeMicros(c.freezeMicros())
                  .setCaptureMicros(captured)
                  .setImageBytes(c.image().getSerializedSize())
                  .setFromEngine(c.image().getCapturedOnEngine()));
      checkCancelled();

      state(MigrationRecord.State.TRANSFERRING);
      long tr = System.nanoTime();
      strategy.transfer(this, capture);
      long transferred = System.nanoTime();
      // A strategy may have the destination resume the process with the transfer's last
      // message: its restore time, measured there, is then not part of the transfer.
      long remoteRestore = destination.activated() ? destination.restoreMicros() : 0;
      update(r -> r.setTransferMicros(Math.max(0, micros(transferred - tr) - remoteRestore)));
      checkCancelled();

      state(MigrationRecord.State.RESTORING);
      long rs = System.nanoTime();
      committing = true;
      strategy.restore(this, capture);
      long restored = System.nanoTime();
      long frozen = frozenAt;
      update(
          r ->
              r.setRestoreMicros(remoteRestore + micros(restored - rs))
                  .setTotalFreezeMicros(micros(restored - frozen)));
      strategy.commit(this, capture);
      rt.knownModules.add(toNode + "/" + capture.image().getModuleHash());
      finalState = MigrationRecord.State.COMMITTED;
    } catch (Throwable e) {
      if (destination.activated()) {
        // The destination runs the process: whatever failed after that, the source must not
        // resume it too (two live copies). Its frozen copy stays frozen here.
        String why = "committed, but the source could not finish: " + message(e);
        log.error("migration {} of {} to {}: {}", id, pid, toNode, why, e);
        synchronized (this) {
          rec.setError(why);
        }
        finalState = MigrationRecord.State.COMMITTED;
        return;
      }
      String why = cancelled && !committing ? "cancelled by the operator" : message(e);
      log.warn("migration {} of {} to {} aborted: {}", id, pid, toNode, why);
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
      destination.closeUnused();
      // The final state, the total and the end time become visible together.
      long total = System.nanoTime() - t0;
      MigrationRecord.State end = finalState;
      update(
          r ->
              r.setState(end)
                  .setTotalMicros(micros(total))
                  .setFinishedAtMicros(ProtoRecords.nowMicros()));
      MigrationRecord r = record();
      java.util.concurrent.CompletableFuture<Void> forgot = source.forgotten;
      if (forgot == null) {
        recordEnd(r);
      } else {
        // Stored only once the source's copy has left its store: a node that stops before then
        // finds the migration unfinished at its next start and settles it with the destination
        // (which drops that copy), instead of a committed record beside a copy of the process.
        // Until then the record is served from memory (rt.running).
        forgot.whenComplete(
            (v, failure) -> {
              MigrationRecord last = r;
              if (failure != null) {
                String why =
                    "committed, but the source could not remove its copy of the process: "
                        + message(failure);
                log.error("migration {} of {} to {}: {}", id, pid, toNode, why);
                synchronized (this) {
                  last = rec.setError(why).build();
                }
              }
              recordEnd(last);
            });
      }
      if (end == MigrationRecord.State.COMMITTED) {
        // The process runs at the destination: move its shard there (the destination does the
        // same once it runs it). Until the shard has moved, the entity here forwards requests.
        rt.address(toNode).ifPresent(a -> rt.place(pid, a));
      }
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

  /** Stores the final record; from then on it is served from the store. */
  private void recordEnd(MigrationRecord r) {
    try {
      rt.saveMigration(r);
    } finally {
      rt.running.remove(id);
    }
  }

  /** What went wrong, under the wrappers of futures. */
  static String message(Throwable e) {
    Throwable c = e;
    while ((c instanceof java.util.concurrent.ExecutionException
            || c instanceof java.util.concurrent.CompletionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    return c.getMessage() != null ? c.getMessage() : c.toString();
  }

  private void checkCancelled() throws MigrationException {
    if (cancelled()) {
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

  private volatile boolean progressEvent;

  private void publish() {
    MigrationRecord r = record();
    boolean changed;
    synchronized (this) {
      changed = r.getState() != published || progressEvent;
      progressEvent = false;
      published = r.getState();
    }
    // Only the first and the final record are stored (the final one by run(), after the source's
    // copy is gone): while it runs, a migration is served from memory (rt.running), and the writes
    // stay off the frozen process's path.
    if (r.getState() == MigrationRecord.State.PENDING) {
      rt.saveMigration(r);
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

  @Override
  public String sourceNode() {
    return rt.nodeName;
  }

  private volatile dev.ferry.strategies.PageReport pageReport;

  private volatile long lastProgressEvent;

  @Override
  public void pages(dev.ferry.strategies.PageReport report) {
    pageReport = report;
    long now = System.nanoTime();
    if (now - lastProgressEvent > 200_000_000L) {
      // Progress of a long step (pre-copy rounds, a post-copy push) also goes out as an event,
      // a few times a second at most, with the state unchanged.
      lastProgressEvent = now;
      progressEvent = true;
    }
    update(
        r ->
            r.setPagesDirtyAtFreeze(report.dirtyAtFreeze())
                .setPagesBeforeFreeze(report.beforeFreeze())
                .setPagesDuringFreeze(report.duringFreeze())
                .setPagesAfterFreeze(report.afterFreeze())
                .setRounds(report.rounds())
                .setBytesDuringFreeze(report.bytesDuringFreeze())
                .setRemoteFaultsAfterResume(report.remoteFaultsAfterResume())
                .setBytesRemaining(report.bytesRemaining())
                .clearReplicas()
                .addAllReplicas(report.replicas()));
  }

  @Override
  public dev.ferry.strategies.PageReport pageReport() {
    return pageReport;
  }

  @Override
  public void problem(String message) {
    log.warn("migration {} of {} to {}: {}", id, pid, toNode, message);
    update(r -> r.setError(message));
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
    public String moduleHash() throws MigrationException {
      try {
        return rt.processes.moduleOf(pid);
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public Capture freeze() throws MigrationException {
      try {
        return new FrozenCapture(rt.processes.freezeForMigration(pid));
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public Payload bundle(Capture c, boolean includeModule, boolean sharedFiles)
        throws MigrationException {
      try {
        return rt.processes.bundle(pid, ((FrozenCapture) c).frozen(), includeModule, sharedFiles);
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public Payload bundle(
        Capture c, boolean includeModule, boolean sharedFiles, dev.ferry.strategies.PagingPlan plan)
        throws MigrationException {
      try {
        return rt.processes.bundle(
            pid, ((FrozenCapture) c).frozen(), includeModule, sharedFiles, plan);
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public void resume(Capture c) {
      rt.processes.resumeAfterAbort(pid, ((FrozenCapture) c).frozen());
    }

    /** Completes when the discarded copy has left this node's store (set by a discard). */
    volatile java.util.concurrent.CompletableFuture<Void> forgotten;

    @Override
    public void discard(Capture c, boolean sharedFiles) {
      forgotten =
          rt.processes.discardAfterCommit(pid, ((FrozenCapture) c).frozen(), sharedFiles, toNode);
    }

    @Override
    public void discardKeepingCopies(
        Capture c, boolean sharedFiles, java.util.List<String> keepCopiesOn) {
      forgotten =
          rt.processes.discardAfterCommit(
              pid, ((FrozenCapture) c).frozen(), sharedFiles, toNode, keepCopiesOn);
    }

    @Override
    public long[] copyRound(String node, boolean first, long bandwidth) throws MigrationException {
      try {
        return rt.processes
            .paging()
            .precopyRound(
                pid, node, first, new dev.ferry.node.paging.PagingFiles.Throttle(bandwidth));
      } catch (IOException | RuntimeException e) {
        throw new MigrationException("copying pages to " + node + " failed: " + e.getMessage(), e);
      }
    }

    @Override
    public void dropCopy(String node) {
      rt.processes.paging().dropReplica(pid, node);
    }

    @Override
    public String servePages(Capture c) throws MigrationException {
      try {
        return rt.processes.paging().serveFrozen(pid);
      } catch (IOException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public long[] pushPages(
        Capture c,
        String node,
        String file,
        long bandwidth,
        java.util.function.BiConsumer<Long, Long> progress)
        throws MigrationException {
      try {
        var r =
            rt.processes
                .paging()
                .push(
                    pid,
                    node,
                    file,
                    new dev.ferry.node.paging.PagingFiles.Throttle(bandwidth),
                    progress);
        return new long[] {r.pages(), r.bytes(), r.remoteFaults()};
      } catch (IOException | RuntimeException e) {
        throw new MigrationException("pushing pages to " + node + " failed: " + e.getMessage(), e);
      }
    }

    @Override
    public String newPagingFile() {
      return dev.ferry.node.paging.PagingFiles.newFile(pid);
    }

    @Override
    public java.util.Optional<dev.ferry.strategies.PagingView> paging() {
      return rt.processes.pagingView(pid);
    }

    @Override
    public Capture freezePaged() throws MigrationException {
      try {
        return new FrozenCapture(rt.processes.freezeForMigration(pid, true));
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
    }

    @Override
    public dev.ferry.strategies.PageFlush flushFrozen(
        Capture c,
        String mustHold,
        String fullCopyTo,
        java.util.function.BiConsumer<Long, Long> progress)
        throws MigrationException {
      try {
        return rt.processes.flushFrozen(pid, mustHold, fullCopyTo, progress);
      } catch (IOException | RuntimeException e) {
        throw new MigrationException("writing the dirty pages out failed: " + e.getMessage(), e);
      }
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
          throw new Refused(toNode, r.getError().getMessage());
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
    public long sendModule(String moduleHash, int chunkBytes) throws MigrationException {
      byte[] module;
      try {
        module = rt.processes.moduleBytes(moduleHash);
      } catch (FerryException e) {
        throw new MigrationException(e.getMessage(), e);
      }
      Connection conn = newConnection();
      long deadline = System.nanoTime() + stepTimeout.toNanos();
      Frames.OnTimeout check =
          () -> {
            if (cancelled()) {
              throw new IOException(
                  "cancelled", new MigrationException("cancelled by the operator"));
            }
            if (System.nanoTime() > deadline) {
              throw new IOException(
                  "node " + toNode + " did not take the module within " + stepTimeout);
            }
          };
      java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      crc.update(module);
      int chunk = Math.max(1, chunkBytes);
      try (Socket socket = conn.socket()) {
        socket.setSoTimeout(50);
        DataOutputStream out =
            new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
        Frames.Reader in = new Frames.Reader(socket.getInputStream());
        for (long seq = 0, off = 0; ; seq++, off += chunk) {
          check.check();
          int n = (int) Math.min(chunk, module.length - off);
          boolean last = off + n >= module.length;
          TransferChunk.Builder c =
              TransferChunk.newBuilder()
                  .setMigrationId(id)
                  .setSeq(seq)
                  .setData(UnsafeByteOperations.unsafeWrap(module, (int) off, n));
          if (seq == 0) {
            c.setModule(true)
                .setTotalBytes(module.length)
                .setPid(pid)
                .setFromNode(rt.nodeName)
                .setSecret(conn.endpoint().getSecret());
          }
          if (last) {
            c.setLast(true).setCrc32C((int) crc.getValue());
          }
          Frames.write(out, c.build());
          out.flush();
          NodeReply r = NodeReply.parseFrom(in.next(check));
          if (r.hasError()) {
            throw new Refused(toNode, r.getError().getMessage());
          }
          if (!r.hasAck() || r.getAck().getSeq() != seq) {
            throw new MigrationException(
                "node " + toNode + " answered chunk " + seq + " of the module unexpectedly");
          }
          if (last) {
            break;
          }
        }
      } catch (IOException e) {
        if (e.getCause() instanceof MigrationException m) {
          throw m;
        }
        throw new MigrationException(
            "sending the module to node " + toNode + " failed: " + message(e), e);
      }
      rt.knownModules.add(toNode + "/" + moduleHash);
      return module.length;
    }

    private volatile boolean activated;
    private volatile long restoreMicros;

    @Override
    public boolean activated() {
      return activated;
    }

    @Override
    public long restoreMicros() {
      return restoreMicros;
    }

    /** A connection to the destination's receiver, opened ahead of the transfer. */
    private record Connection(Socket socket, TransferEndpoint endpoint, long openedAt) {}

    private CompletableFuture<Connection> preconnected;

    /**
     * Starts opening the transfer connection in the background, so that it is ready when the
     * process has frozen. If that fails, {@link #transferAndActivate} connects again itself.
     */
    void preconnect() {
      preconnected =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return open(endpoint(false));
                } catch (MigrationException | IOException e) {
                  throw new java.util.concurrent.CompletionException(e);
                }
              },
              THREADS);
    }

    /** Closes a connection opened ahead that no transfer took (the migration ended before). */
    void closeUnused() {
      CompletableFuture<Connection> p = preconnected;
      preconnected = null;
      if (p != null) {
        p.thenAccept(c -> closeQuietly(c.socket()));
      }
    }

    /** The connection opened ahead, if it opened (waits for it); else a new one. */
    private Connection connection() throws MigrationException {
      CompletableFuture<Connection> p = preconnected;
      preconnected = null;
      if (p != null) {
        try {
          Connection c = awaitCancellable(p);
          // The destination gives up on a connection silent for its receiver's limit
          // (data-segment's transfer-timeout, whatever this migration's strategy): one opened
          // before a long freeze (a large write-out) is not used.
          long limit = Math.min(stepTimeout.toNanos(), rt.receiverSilence.toNanos());
          if (System.nanoTime() - c.openedAt() < limit / 2) {
            return c;
          }
          closeQuietly(c.socket());
        } catch (Exception e) {
          p.thenAccept(c -> closeQuietly(c.socket()));
          if (cancelled()) {
            throw new MigrationException("cancelled by the operator");
          }
          // otherwise connect again, below, asking for the endpoint afresh if need be
        }
      }
      return newConnection();
    }

    /** A new connection to the destination's receiver. */
    private Connection newConnection() throws MigrationException {
      try {
        try {
          return open(endpoint(false));
        } catch (IOException e) {
          // The node may have restarted on another port: ask it again, once.
          return open(endpoint(true));
        }
      } catch (IOException e) {
        throw new MigrationException("cannot connect to node " + toNode + ": " + e.getMessage(), e);
      }
    }

    /** A new connection to {@code ep}. */
    private Connection open(TransferEndpoint ep) throws IOException {
      Socket s = new Socket();
      try {
        connect(s, ep);
      } catch (IOException e) {
        closeQuietly(s);
        throw e;
      }
      return new Connection(s, ep, System.nanoTime());
    }

    @Override
    public void transferAndActivate(Payload payload, int chunkBytes, int window, String engine)
        throws MigrationException {
      Connection conn = connection();
      TransferEndpoint ep = conn.endpoint();
      Socket socket = conn.socket();
      AtomicReference<MigrationException> why = new AtomicReference<>();
      long[] lastProgress = {System.nanoTime()};
      // A write that blocks (the destination stopped reading) is ended by closing the socket.
      java.util.concurrent.ScheduledFuture<?> watchdog =
          WATCHDOG.scheduleWithFixedDelay(
              () -> {
                MigrationException stop = stopReason(lastProgress[0]);
                if (stop != null && why.compareAndSet(null, stop)) {
                  closeQuietly(socket);
                }
              },
              50,
              50,
              TimeUnit.MILLISECONDS);
      Chunks chunks = null;
      try (socket) {
        socket.setSoTimeout(50);
        chunks =
            new Chunks(
                new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16)),
                new Frames.Reader(socket.getInputStream()),
                () -> {
                  MigrationException stop =
                      why.get() != null ? why.get() : stopReason(lastProgress[0]);
                  if (stop != null) {
                    throw new IOException(stop.getMessage(), stop);
                  }
                },
                payload.size(),
                chunkBytes,
                window,
                engine,
                ep,
                lastProgress);
        payload.writeTo(chunks);
        chunks.finish();
        chunks.awaitAcks(chunks.seq - 1);
        Ack ack = chunks.reply().getAck();
        if (dev.ferry.node.Failpoint.at("source-halt-on-answer")) {
          dev.ferry.node.Failpoint.halt("source-halt-on-answer");
        }
        if (ack.getSeq() != chunks.seq - 1) {
          throw new MigrationException(
              "node " + toNode + " acknowledged chunk " + ack.getSeq() + " last");
        }
        restoreMicros = ack.getRestoreMicros();
        activated = true;
        update(
            r ->
                r.setStreamMicros(ack.getStreamMicros())
                    .setStoreMicros(ack.getStoreMicros())
                    .setToEngine(ack.getInfo().getRecord().getEngine()));
      } catch (MigrationException | IOException e) {
        MigrationException m = failure(e, why.get());
        if (m instanceof Refused || chunks == null || !chunks.lastSent) {
          throw m; // the destination said no, or never got the whole bundle: resume here
        }
        // No answer to the last chunk: the destination may run the process already.
        if (!runsThere()) {
          throw m;
        }
        log.warn(
            "migration {}: no answer to the last chunk, but {} runs {}; committing",
            id,
            toNode,
            pid);
        activated = true;
      } finally {
        watchdog.cancel(false);
      }
    }

    /** What ended a transfer, as the migration's error. */
    private MigrationException failure(Exception e, MigrationException stoppedBy) {
      if (e instanceof MigrationException m) {
        return m;
      }
      if (e.getCause() instanceof Refused r) {
        return r; // the destination's own word comes first
      }
      if (stoppedBy != null) {
        return stoppedBy; // the watchdog closed the socket, or a read timeout found a reason
      }
      if (e.getCause() instanceof MigrationException m) {
        return m; // thrown while writing the payload (an unexpected answer, a cancel)
      }
      return new MigrationException("transfer to " + toNode + " failed: " + e.getMessage(), e);
    }

    /**
     * The connection as an output stream: bytes written are cut into chunks of {@code chunkBytes},
     * each sent as a frame once full, with at most {@code window} unacknowledged; {@link #finish}
     * sends the rest as the last chunk, with the checksum, which has the destination resume the
     * process.
     */
    private final class Chunks extends java.io.OutputStream {
      private final DataOutputStream out;
      private final Frames.Reader in;
      private final Frames.OnTimeout check;
      private final long size;
      private final byte[] buffer;
      private final int window;
      private final String engine;
      private final TransferEndpoint ep;
      private final long[] lastProgress;
      private final java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      private int filled;
      private long sent;
      long seq; // chunks sent
      private long acked; // chunks acknowledged
      boolean lastSent;

      Chunks(
          DataOutputStream out,
          Frames.Reader in,
          Frames.OnTimeout check,
          long size,
          int chunkBytes,
          int window,
          String engine,
          TransferEndpoint ep,
          long[] lastProgress) {
        this.out = out;
        this.in = in;
        this.check = check;
        this.size = size;
        this.buffer = new byte[(int) Math.max(1, Math.min(chunkBytes, size))];
        this.window = window;
        this.engine = engine;
        this.ep = ep;
        this.lastProgress = lastProgress;
      }

      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        if (sent + filled + len > size) {
          throw new IOException("the bundle is larger than the " + size + " bytes announced");
        }
        while (len > 0) {
          if (filled == buffer.length) {
            emit(false); // full, and more is coming: not the last chunk
          }
          int n = Math.min(len, buffer.length - filled);
          System.arraycopy(b, off, buffer, filled, n);
          filled += n;
          off += n;
          len -= n;
        }
      }

      /** Sends what remains as the last chunk. */
      void finish() throws IOException {
        if (sent + filled != size) {
          throw new IOException("the bundle has " + (sent + filled) + " of " + size + " bytes");
        }
        emit(true);
      }

      private void emit(boolean last) throws IOException {
        TransferChunk.Builder c =
            TransferChunk.newBuilder()
                .setMigrationId(id)
                .setSeq(seq)
                // no copy: the buffer is reused only after the frame has been written
                .setData(UnsafeByteOperations.unsafeWrap(buffer, 0, filled));
        crc.update(buffer, 0, filled);
        if (seq == 0) {
          c.setTotalBytes(size).setPid(pid).setFromNode(rt.nodeName).setSecret(ep.getSecret());
        }
        // A last chunk waits for every earlier one: from it on, no more cancelling.
        awaitAcks(last ? seq : seq - window + 1);
        if (last) {
          if (cancelled()) {
            throw new IOException("cancelled", new MigrationException("cancelled by the operator"));
          }
          // From here on the destination may run the process.
          committing = true;
          c.setLast(true).setCrc32C((int) crc.getValue()).setEngine(engine == null ? "" : engine);
          lastSent = true;
        }
        Frames.write(out, c.build());
        out.flush();
        sent += filled;
        filled = 0;
        seq++;
      }

      /** Reads acknowledgements, in order, until chunks {@code 0..upTo-1} are acknowledged. */
      void awaitAcks(long upTo) throws IOException {
        while (acked < upTo) {
          long got = reply().getAck().getSeq();
          if (got != acked) {
            throw new IOException(
                "unexpected acknowledgement",
                new MigrationException(
                    "node " + toNode + " acknowledged chunk " + got + ", expected " + acked));
          }
          acked++;
          lastProgress[0] = System.nanoTime();
        }
      }

      /** The next answer: an acknowledgement, or the destination's refusal. */
      NodeReply reply() throws IOException {
        NodeReply r = NodeReply.parseFrom(in.next(check));
        if (r.hasError()) {
          throw new IOException("refused", new Refused(toNode, r.getError().getMessage()));
        }
        if (!r.hasAck()) {
          throw new IOException(
              "unexpected answer",
              new MigrationException("node " + toNode + " answered " + r.getResultCase()));
        }
        return r;
      }
    }

    private void connect(Socket s, TransferEndpoint ep) throws IOException {
      s.setTcpNoDelay(true);
      s.setSendBufferSize(1 << 20);
      s.connect(
          new InetSocketAddress(ep.getHost(), ep.getPort()),
          (int) Math.min(stepTimeout.toMillis(), 10_000));
    }

    /** Why the transfer must stop now, if it must: a cancel, a silent or unreachable node. */
    private MigrationException stopReason(long lastProgress) {
      if (cancelled()) {
        return new MigrationException("cancelled by the operator");
      }
      if (System.nanoTime() - lastProgress > stepTimeout.toNanos()) {
        return new MigrationException(
            "node " + toNode + " acknowledged nothing for " + stepTimeout);
      }
      try {
        checkReachable();
      } catch (MigrationException e) {
        return e;
      }
      return null;
    }

    /** The destination's migration receiver; asked of its agent once, then remembered. */
    private TransferEndpoint endpoint(boolean fresh) throws MigrationException {
      TransferEndpoint ep = fresh ? null : rt.endpoints.get(toNode);
      if (ep == null) {
        NodeReply r =
            ask(
                NodeRequest.newBuilder()
                    .setTransferEndpoint(dev.ferry.transport.proto.Empty.getDefaultInstance()));
        if (!r.hasEndpoint()) {
          throw new MigrationException("node " + toNode + " did not say where it receives");
        }
        ep = r.getEndpoint();
        rt.endpoints.put(toNode, ep);
      }
      return ep;
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

  /** The destination answered with an error: it does not have or run the process. */
  private static final class Refused extends MigrationException {
    private static final long serialVersionUID = 1L;

    Refused(String node, String message) {
      super(node + ": " + message);
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }
}
