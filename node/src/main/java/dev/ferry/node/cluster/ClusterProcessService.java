package dev.ferry.node.cluster;

import dev.ferry.node.process.NodeProcesses;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ModuleInfo;
import dev.ferry.node.service.NodeInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.node.service.RunRequest;
import dev.ferry.strategies.MigrationStrategy;
import dev.ferry.transport.proto.CancelMigration;
import dev.ferry.transport.proto.Checkpoint;
import dev.ferry.transport.proto.Empty;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.Migrate;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessReply;
import dev.ferry.transport.proto.ReadFile;
import dev.ferry.transport.proto.ReadLog;
import dev.ferry.transport.proto.Restore;
import dev.ferry.transport.proto.StartProcess;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The {@link ClusterService} of a clustered node: requests for a process travel to its sharded
 * entity, on whichever node runs it; listings ask every node's agent; new processes start on this
 * node (their shard is placed here before the first message).
 */
public final class ClusterProcessService implements ClusterService {
  private static final SecureRandom RANDOM = new SecureRandom();

  /** Sent only locally to a subscriber actor to stop it. */
  private static final FerryEvent STOP = FerryEvent.newBuilder().setNode("\0stop").build();

  private final ClusterRuntime rt;
  private final NodeProcesses local;

  public ClusterProcessService(ClusterRuntime rt) {
    this.rt = rt;
    this.local = rt.processes;
  }

  // ---------------------------------------------------------------------------------------------
  // Process requests

  private CompletionStage<ProcessReply> ask(
      String pid, ProcessCommand.Builder cmd, Duration timeout) {
    if (pid == null || pid.isBlank()) {
      return CompletableFuture.failedFuture(FerryException.badRequest("no process id given"));
    }
    if (local.has(pid)) {
      return viaSharding(pid, cmd, timeout);
    }
    // A process placed on a node that has left the cluster: said at once. Through sharding, the
    // request would wait for the coordinator to place the process's shard anew, which waits for
    // a majority of the nodes to store that (5 s or more while the node that left is still
    // counted), only for the entity to find the same placement.
    return rt.placementHere(pid)
        .exceptionally(e -> java.util.Optional.empty())
        .thenCompose(
            at ->
                at.isPresent() && !rt.isMember(at.get())
                    ? CompletableFuture.<ProcessReply>failedFuture(
                        ProcessEntity.nodeGone(rt, pid, at.get()))
                    : viaSharding(pid, cmd, timeout));
  }

  private CompletionStage<ProcessReply> viaSharding(
      String pid, ProcessCommand.Builder cmd, Duration timeout) {
    return rt.entity(pid)
        .<ProcessReply>ask(
            replyTo ->
                cmd.setPid(pid).setReplyTo(rt.resolver.toSerializationFormat(replyTo)).build(),
            timeout)
        .handle(
            (r, e) -> {
              if (e != null) {
                throw new FerryException(
                    FerryException.Kind.UNAVAILABLE,
                    "process "
                        + pid
                        + " did not answer within "
                        + timeout.toSeconds()
                        + " s: "
                        + e.getMessage(),
                    e);
              }
              if (r.hasError()) {
                throw Wire.exception(r.getError());
              }
              return r;
            });
  }

  private CompletionStage<ProcessReply> ask(String pid, ProcessCommand.Builder cmd) {
    return ask(pid, cmd, rt.askTimeout);
  }

  /**
   * Asks again when an attempt gets no answer. Pekko's shard regions drop the messages they hold
   * for a shard when that shard starts moving (to keep their order), which happens at the end of
   * every migration; a request that is safe to repeat (a read) is therefore sent again after {@code
   * attempt} until {@link ClusterRuntime#askTimeout} has passed: delayed, never failed.
   */
  private CompletionStage<ProcessReply> askIdempotent(
      String pid, ProcessCommand.Builder cmd, Duration attempt) {
    long deadline = System.nanoTime() + rt.askTimeout.toNanos();
    return askUntil(pid, cmd, attempt, deadline, false);
  }

  /**
   * Sends {@code cmd} until it is answered or {@code deadline} passes: again after every {@code
   * attempt} without an answer, and, unless {@code onlyUnanswered}, again after an answer that says
   * the process is unavailable for now.
   */
  private CompletionStage<ProcessReply> askUntil(
      String pid,
      ProcessCommand.Builder cmd,
      Duration attempt,
      long deadline,
      boolean onlyUnanswered) {
    return ask(pid, cmd.clone(), attempt)
        .handle(
            (r, e) -> {
              if (e == null) {
                return CompletableFuture.completedFuture(r);
              }
              FerryException fe = FerryException.of(e);
              boolean unanswered = unanswered(e);
              boolean again =
                  onlyUnanswered
                      ? unanswered
                      : fe.kind() == FerryException.Kind.UNAVAILABLE
                          && !(fe instanceof FerryException.NodeGone);
              if (again && System.nanoTime() < deadline) {
                return askUntil(pid, cmd, attempt, deadline, onlyUnanswered);
              }
              if (unanswered) {
                fe =
                    new FerryException(
                        FerryException.Kind.UNAVAILABLE,
                        "process "
                            + pid
                            + " did not answer within "
                            + rt.askTimeout.toSeconds()
                            + " s (asked every "
                            + attempt.toMillis()
                            + " ms)",
                        e);
              }
              return CompletableFuture.<ProcessReply>failedFuture(fe);
            })
        .thenCompose(x -> x);
  }

  private static final Duration ATTEMPT = Duration.ofSeconds(1);

  /**
   * Whether {@code e} says an ask got no answer in time (rather than an answer that is an error).
   */
  private static boolean unanswered(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.util.concurrent.TimeoutException) {
        return true;
      }
    }
    return false;
  }

  /**
   * Asks for a change to a process (kill, checkpoint, restore, cancel of a migration) under a fresh
   * request id, sending it again with that id when an attempt gets no answer (see {@link
   * #askIdempotent}): the node that serves it carries it out once and answers every copy alike
   * ({@link RepeatedRequests}), so a request dropped while the process's shard moves is delayed,
   * never lost, and one that was only slow is not carried out twice. An answer, an error too, ends
   * the asking at once.
   */
  private CompletionStage<ProcessReply> askOnce(String pid, ProcessCommand.Builder cmd) {
    cmd.setRequestId(java.util.UUID.randomUUID().toString());
    return askUntil(pid, cmd, ATTEMPT, System.nanoTime() + rt.askTimeout.toNanos(), true);
  }

  @Override
  public CompletionStage<ModuleInfo> uploadModule(byte[] wasm, boolean preemptible) {
    return local.uploadModule(wasm, preemptible);
  }

  @Override
  public CompletionStage<ProcessInfo> run(RunRequest req) {
    String pid = NodeProcesses.newId();
    StartProcess.Builder s =
        StartProcess.newBuilder()
            .setModuleHash(req.moduleHash() == null ? "" : req.moduleHash())
            .setEngine(req.engine() == null ? "" : req.engine().wireName())
            .setPaged(req.paged());
    if (req.args() != null) {
      s.addAllArgs(req.args());
    }
    if (req.env() != null) {
      req.env()
          .forEach(
              (k, v) -> {
                if (k == null || k.isEmpty() || k.contains("=")) {
                  throw FerryException.badRequest("invalid environment variable name '" + k + "'");
                }
                s.addEnv(k + "=" + (v == null ? "" : v));
              });
    }
    if (req.files() != null) {
      req.files().forEach((k, v) -> s.putFiles(k, com.google.protobuf.ByteString.copyFrom(v)));
    }
    return rt.place(pid, rt.selfAddress())
        .thenCompose(done -> ask(pid, ProcessCommand.newBuilder().setStart(s)))
        .thenApply(r -> Wire.info(r.getInfo()));
  }

  @Override
  public CompletionStage<List<ProcessInfo>> list() {
    return askAllAgents(NodeRequest.newBuilder().setListProcesses(Empty.getDefaultInstance()))
        .thenApply(
            replies -> {
              List<ProcessInfo> all = new ArrayList<>();
              for (NodeReply r : replies) {
                r.getProcesses().getProcessesList().forEach(p -> all.add(Wire.info(p)));
              }
              all.sort(Comparator.comparing(ProcessInfo::startedAt).thenComparing(ProcessInfo::id));
              return all;
            });
  }

  @Override
  public CompletionStage<ProcessInfo> status(String pid) {
    return askIdempotent(
            pid, ProcessCommand.newBuilder().setStatus(Empty.getDefaultInstance()), ATTEMPT)
        .thenApply(r -> Wire.info(r.getInfo()));
  }

  @Override
  public CompletionStage<LogChunk> readLog(
      String pid, LogStream stream, long offset, int maxBytes, Duration waitForData) {
    long wait =
        waitForData == null
            ? 0
            : Math.min(waitForData.toMillis(), ProcessEntity.LONGEST_WAIT.toMillis());
    return askIdempotent(
            pid,
            ProcessCommand.newBuilder()
                .setReadLog(
                    ReadLog.newBuilder()
                        .setStderr(stream == LogStream.STDERR)
                        .setOffset(offset)
                        .setMaxBytes(maxBytes)
                        .setWaitMillis(wait)),
            ATTEMPT.plusMillis(wait))
        .thenApply(r -> Wire.logChunk(r.getLogChunk()));
  }

  @Override
  public CompletionStage<ProcessInfo> awaitExit(String pid) {
    return askIdempotent(
            pid,
            ProcessCommand.newBuilder().setAwaitExit(Empty.getDefaultInstance()),
            ATTEMPT.plus(ProcessEntity.LONGEST_WAIT))
        .thenCompose(
            r -> {
              ProcessInfo i = Wire.info(r.getInfo());
              return i.state().isFinal() ? CompletableFuture.completedFuture(i) : awaitExit(pid);
            });
  }

  @Override
  public CompletionStage<ProcessInfo> kill(String pid) {
    return askOnce(pid, ProcessCommand.newBuilder().setKill(Empty.getDefaultInstance()))
        .thenApply(r -> Wire.info(r.getInfo()));
  }

  @Override
  public CompletionStage<byte[]> readFile(String pid, String guestPath) {
    return askIdempotent(
            pid,
            ProcessCommand.newBuilder()
                .setReadFile(
                    ReadFile.newBuilder().setGuestPath(guestPath == null ? "" : guestPath)),
            ATTEMPT)
        .thenApply(r -> r.getFile().toByteArray());
  }

  @Override
  public CompletionStage<CheckpointResult> checkpoint(String pid, boolean leaveRunning) {
    return askOnce(
            pid,
            ProcessCommand.newBuilder()
                .setCheckpoint(Checkpoint.newBuilder().setLeaveRunning(leaveRunning)))
        .thenApply(
            r -> ProtoRecords.checkpoint(r.getCheckpoint().getPid(), r.getCheckpoint().getInfo()));
  }

  @Override
  public CompletionStage<ProcessInfo> restore(String pid, Engine engine) {
    return askOnce(
            pid,
            ProcessCommand.newBuilder()
                .setRestore(
                    Restore.newBuilder().setEngine(engine == null ? "" : engine.wireName())))
        .thenApply(r -> Wire.info(r.getInfo()));
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster

  private CompletionStage<List<NodeReply>> askAllAgents(NodeRequest.Builder req) {
    List<CompletableFuture<NodeReply>> asks = new ArrayList<>();
    for (ActorRef<NodeRequest> a : rt.agents().values()) {
      asks.add(
          NodeAgent.ask(rt, a, req.clone(), Duration.ofSeconds(5))
              .toCompletableFuture()
              .exceptionally(e -> null));
    }
    return CompletableFuture.allOf(asks.toArray(new CompletableFuture[0]))
        .thenApply(
            v -> {
              List<NodeReply> out = new ArrayList<>();
              for (CompletableFuture<NodeReply> f : asks) {
                NodeReply r = f.join();
                if (r != null && !r.hasError()) {
                  out.add(r);
                }
              }
              return out;
            });
  }

  @Override
  public CompletionStage<List<NodeInfo>> nodes() {
    return askAllAgents(NodeRequest.newBuilder().setNodeInfo(Empty.getDefaultInstance()))
        .thenApply(
            replies -> {
              Cluster cluster = Cluster.get(rt.system);
              java.util.Set<org.apache.pekko.actor.Address> unreachable = new java.util.HashSet<>();
              for (Member m : cluster.state().getUnreachable()) {
                unreachable.add(m.address());
              }
              Map<String, dev.ferry.transport.proto.NodeInfoMsg> byAddress =
                  new java.util.HashMap<>();
              replies.forEach(r -> byAddress.put(r.getNodeInfo().getAddress(), r.getNodeInfo()));
              List<NodeInfo> out = new ArrayList<>();
              for (Member m : cluster.state().getMembers()) {
                var i = byAddress.get(m.address().toString());
                String status =
                    unreachable.contains(m.address())
                        ? "unreachable"
                        : m.status().toString().toLowerCase(Locale.ROOT);
                out.add(
                    i == null
                        ? new NodeInfo(
                            rt.nameOf(m.address()),
                            m.address().toString(),
                            status,
                            null,
                            null,
                            -1,
                            0,
                            0,
                            null)
                        : new NodeInfo(
                            i.getName(),
                            i.getAddress(),
                            status,
                            i.getEngine(),
                            i.getJdk(),
                            i.getLoad(),
                            i.getProcesses(),
                            i.getRunning(),
                            i.getHttpUrl()));
              }
              out.sort(Comparator.comparing(NodeInfo::name));
              return out;
            });
  }

  @Override
  public CompletionStage<MigrationInfo> migrate(String pid, String toNode, String strategyName) {
    String strategy =
        strategyName == null || strategyName.isBlank() ? "data-segment" : strategyName;
    MigrationStrategy s = rt.strategies.get(strategy).orElse(null);
    if (s == null) {
      return CompletableFuture.failedFuture(
          FerryException.badRequest(
              "unknown strategy '" + strategy + "'; available: " + rt.strategies.names()));
    }
    CompletionStage<String> dest;
    if (toNode != null && !toNode.isBlank()) {
      if (rt.agent(toNode).isEmpty()) {
        return CompletableFuture.failedFuture(
            FerryException.notFound("no node '" + toNode + "' in the cluster (see ferry nodes)"));
      }
      dest = CompletableFuture.completedFuture(toNode);
    } else {
      dest =
          status(pid)
              .thenCompose(
                  p ->
                      nodes()
                          .thenApply(
                              nodes -> {
                                List<MigrationStrategy.NodeCandidate> c = new ArrayList<>();
                                if (p.paging() == null) {
                                  s.refuse(pid, null, java.util.Optional.empty())
                                      .ifPresent(
                                          why -> {
                                            throw FerryException.conflict(why);
                                          });
                                }
                                java.util.Set<String> holders = new java.util.HashSet<>();
                                if (p.paging() != null) {
                                  for (var r : p.paging().replicas()) {
                                    if ("in-sync".equals(r.state())) {
                                      holders.add(r.node());
                                    }
                                  }
                                }
                                for (NodeInfo n : nodes) {
                                  if (!n.name().equals(p.node())
                                      && "up".equals(n.status())
                                      && n.engine() != null) {
                                    c.add(
                                        new MigrationStrategy.NodeCandidate(
                                            n.name(),
                                            n.load(),
                                            n.processes(),
                                            holders.contains(n.name())));
                                  }
                                }
                                return s.chooseDestination(c)
                                    .orElseThrow(
                                        () -> FerryException.conflict(s.noDestination(pid)));
                              }));
    }
    String id = "m-" + hex(6);
    // Safe to repeat: the entity answers a known migration id with its record.
    return dest.thenCompose(
            to ->
                askIdempotent(
                    pid,
                    ProcessCommand.newBuilder()
                        .setMigrate(
                            Migrate.newBuilder()
                                .setMigrationId(id)
                                .setToNode(to)
                                .setStrategy(strategy)),
                    ATTEMPT))
        .thenApply(r -> ProtoRecords.migration(r.getMigration()));
  }

  private CompletionStage<List<MigrationRecord>> migrationRecords() {
    return askAllAgents(NodeRequest.newBuilder().setListMigrations(Empty.getDefaultInstance()))
        .thenApply(
            replies -> {
              Map<String, MigrationRecord> byId = new java.util.HashMap<>();
              for (NodeReply r : replies) {
                r.getMigrations()
                    .getMigrationsList()
                    .forEach(m -> byId.merge(m.getId(), m, ClusterProcessService::latest));
              }
              List<MigrationRecord> all = new ArrayList<>(byId.values());
              all.sort(Comparator.comparingLong(MigrationRecord::getRequestedAtMicros).reversed());
              return all;
            });
  }

  /**
   * Of two records of one migration from different nodes, the one to show: the one that ended last;
   * of two that have not ended, the destination's "in doubt" (its source's record of a migration it
   * has not settled yet says less).
   */
  private static MigrationRecord latest(MigrationRecord a, MigrationRecord b) {
    if (a.getFinishedAtMicros() != b.getFinishedAtMicros()) {
      return a.getFinishedAtMicros() > b.getFinishedAtMicros() ? a : b;
    }
    return b.getState() == MigrationRecord.State.IN_DOUBT ? b : a;
  }

  @Override
  public CompletionStage<List<MigrationInfo>> migrations() {
    return migrationRecords().thenApply(l -> l.stream().map(ProtoRecords::migration).toList());
  }

  /** One migration by id: every node is asked for that record only (the source has it). */
  private CompletionStage<MigrationRecord> migrationRecord(String id) {
    return askAllAgents(NodeRequest.newBuilder().setGetMigration(id == null ? "" : id))
        .thenApply(
            replies ->
                replies.stream()
                    .flatMap(r -> r.getMigrations().getMigrationsList().stream())
                    .reduce(ClusterProcessService::latest)
                    .orElseThrow(
                        () -> FerryException.notFound("no migration '" + id + "' in the cluster")));
  }

  @Override
  public CompletionStage<MigrationInfo> migration(String id) {
    return migrationRecord(id).thenApply(ProtoRecords::migration);
  }

  @Override
  public CompletionStage<MigrationInfo> cancelMigration(String id) {
    return migrationRecord(id)
        .thenCompose(
            m -> {
              if (ClusterRuntime.isFinal(m.getState())) {
                throw FerryException.conflict(
                    "migration "
                        + id
                        + " has already ended ("
                        + m.getState().name().toLowerCase(Locale.ROOT)
                        + ")");
              }
              if (m.getState() == MigrationRecord.State.IN_DOUBT) {
                throw FerryException.conflict(
                    "migration "
                        + id
                        + " is in doubt: node "
                        + m.getToNode()
                        + " holds the process and waits for node "
                        + m.getFromNode()
                        + " to say whether it committed; it cannot be cancelled");
              }
              return askOnce(
                  m.getPid(),
                  ProcessCommand.newBuilder()
                      .setCancelMigration(CancelMigration.newBuilder().setMigrationId(id)));
            })
        .thenApply(r -> ProtoRecords.migration(r.getMigration()));
  }

  @Override
  public CompletionStage<MigrationInfo> commitInDoubt(String id) {
    return migrationRecord(id)
        .thenCompose(
            m -> {
              if (m.getState() != MigrationRecord.State.IN_DOUBT) {
                throw FerryException.conflict(
                    "migration "
                        + id
                        + " is "
                        + m.getState().name().toLowerCase(Locale.ROOT)
                        + ", not in doubt: only a migration a destination holds in doubt can be"
                        + " committed by hand");
              }
              var agent =
                  rt.agent(m.getToNode())
                      .orElseThrow(
                          () ->
                              new FerryException(
                                  FerryException.Kind.UNAVAILABLE,
                                  "node " + m.getToNode() + " is not in the cluster"));
              // The destination asks the source first (up to 5 s).
              return NodeAgent.ask(
                  rt, agent, NodeRequest.newBuilder().setCommitInDoubt(id), Duration.ofSeconds(10));
            })
        .thenApply(
            r -> {
              if (r.hasError()) {
                throw Wire.exception(r.getError());
              }
              return ProtoRecords.migration(r.getMigrations().getMigrations(0));
            });
  }

  @Override
  public Subscription subscribe(Consumer<FerryEvent> listener) {
    ActorRef<FerryEvent> sub =
        rt.system.systemActorOf(
            Behaviors.receive(FerryEvent.class)
                .onMessage(
                    FerryEvent.class,
                    e -> {
                      if (e == STOP) {
                        return Behaviors.stopped();
                      }
                      listener.accept(e);
                      return Behaviors.same();
                    })
                .build(),
            "event-subscriber-" + hex(6),
            Props.empty());
    rt.topic().tell(Topic.subscribe(sub));
    return () -> {
      rt.topic().tell(Topic.unsubscribe(sub));
      sub.tell(STOP);
    };
  }

  private static String hex(int bytes) {
    byte[] b = new byte[bytes];
    RANDOM.nextBytes(b);
    return HexFormat.of().formatHex(b);
  }
}
