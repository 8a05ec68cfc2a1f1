package dev.ferry.node.cluster;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.RunRequest;
import dev.ferry.strategies.MigrationStrategy;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessReply;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;

/**
 * The sharded entity of one process: every request for the process, from any node, arrives here, on
 * the node where the process's shard is placed — the node that runs it. The entity keeps no state
 * of its own; the node's process table does.
 *
 * <p>While the process migrates, requests are stashed and handled after the migration ends: here if
 * it aborted, forwarded to the destination if it committed (until the shard itself has moved
 * there). A request for a process that has left this node is forwarded to where it went.
 */
final class ProcessEntity {
  /** Longest a single wait-for-exit or wait-for-output request is held before it is answered. */
  static final Duration LONGEST_WAIT = Duration.ofSeconds(20);

  private static final Duration IN_DOUBT_RETRY = Duration.ofMillis(500);

  private final ClusterRuntime rt;
  private final String pid;
  private final ActorContext<ProcessCommand> ctx;
  private final StashBuffer<ProcessCommand> stash;

  private ProcessEntity(
      ClusterRuntime rt,
      String pid,
      ActorContext<ProcessCommand> ctx,
      StashBuffer<ProcessCommand> stash) {
    this.rt = rt;
    this.pid = pid;
    this.ctx = ctx;
    this.stash = stash;
  }

  static Behavior<ProcessCommand> create(ClusterRuntime rt, String pid) {
    return Behaviors.withStash(
        100_000, stash -> Behaviors.setup(ctx -> new ProcessEntity(rt, pid, ctx, stash).active()));
  }

  private Behavior<ProcessCommand> active() {
    return Behaviors.receive(ProcessCommand.class)
        .onMessage(ProcessCommand.class, this::onActive)
        .build();
  }

  private Behavior<ProcessCommand> onActive(ProcessCommand cmd) {
    switch (cmd.getOpCase()) {
      case HANDOFF:
        return Behaviors.stopped();
      case MIGRATION_FINISHED:
        return Behaviors.same(); // a late report of a migration already finished
      case CANCEL_MIGRATION:
        // (a copy of a cancel this node carried out while the migration ran gets that answer)
        handle(
            cmd,
            rt.repeated.once(
                cmd.getRequestId(),
                () ->
                    CompletableFuture.completedFuture(
                        Wire.replyError(
                            FerryException.conflict(
                                "process "
                                    + pid
                                    + " is not migrating (migration "
                                    + cmd.getCancelMigration().getMigrationId()
                                    + " has ended or never existed)")))));
        return Behaviors.same();
      case START:
        handle(cmd, startHere(cmd));
        return Behaviors.same();
      default:
        break;
    }
    if (!rt.processes.has(pid) && rt.processes.isInDoubt(pid)) {
      // It arrived here just before this node stopped; until its source has said whether that
      // migration committed, requests are held (offered again every half second), as during a
      // migration.
      ctx.scheduleOnce(IN_DOUBT_RETRY, ctx.getSelf(), cmd);
      return Behaviors.same();
    }
    if (!rt.processes.has(pid)) {
      var movedTo = rt.processes.movedTo(pid);
      if (movedTo.isPresent() && cmd.getOpCase() == ProcessCommand.OpCase.MIGRATE) {
        redeliver(rt, cmd);
      } else if (movedTo.isPresent()) {
        forward(cmd, movedTo.get());
      } else {
        notHere(rt, pid, cmd);
      }
      return Behaviors.same();
    }
    if (cmd.getOpCase() == ProcessCommand.OpCase.MIGRATE) {
      return startMigration(cmd);
    }
    handle(cmd, serveOnce(rt, pid, cmd));
    return Behaviors.same();
  }

  private Behavior<ProcessCommand> migrating(String migrationId, MigrationCoordinator coordinator) {
    boolean[] handingOff = {false};
    return Behaviors.receive(ProcessCommand.class)
        .onMessage(
            ProcessCommand.class,
            cmd -> {
              switch (cmd.getOpCase()) {
                case CANCEL_MIGRATION:
                  if (cmd.getCancelMigration().getMigrationId().equals(migrationId)) {
                    handle(
                        cmd,
                        rt.repeated.once(
                            cmd.getRequestId(),
                            () -> {
                              coordinator.cancel();
                              return CompletableFuture.completedFuture(
                                  ProcessReply.newBuilder()
                                      .setMigration(coordinator.record())
                                      .build());
                            }));
                  } else {
                    reply(
                        cmd,
                        Wire.replyError(
                            FerryException.conflict(
                                "process "
                                    + pid
                                    + " is in migration "
                                    + migrationId
                                    + ", not "
                                    + cmd.getCancelMigration().getMigrationId())));
                  }
                  return Behaviors.same();
                case HANDOFF:
                  // The shard moves (the migration placed it elsewhere): stop once the
                  // migration has ended, handing the held requests back to sharding.
                  handingOff[0] = true;
                  return Behaviors.same();
                case MIGRATION_FINISHED:
                  if (!cmd.getMigrationFinished().getMigrationId().equals(migrationId)) {
                    return Behaviors.same();
                  }
                  if (handingOff[0]) {
                    stash.forEach(held -> rt.entity(pid).tell(held));
                    stash.clear();
                    return Behaviors.stopped();
                  }
                  return stash.unstashAll(active());
                case MIGRATE:
                  if (cmd.getMigrate().getMigrationId().equals(migrationId)) {
                    // the same request sent again (its first answer was not seen): its record
                    reply(
                        cmd, ProcessReply.newBuilder().setMigration(coordinator.record()).build());
                  } else {
                    reply(
                        cmd,
                        Wire.replyError(
                            FerryException.conflict(
                                "process " + pid + " is already migrating (" + migrationId + ")")));
                  }
                  return Behaviors.same();
                default:
                  if (stash.isFull()) {
                    reply(
                        cmd,
                        Wire.replyError(
                            new FerryException(
                                FerryException.Kind.UNAVAILABLE,
                                "too many requests held while " + pid + " migrates")));
                  } else {
                    stash.stash(cmd); // held, delivered once the migration has ended
                  }
                  return Behaviors.same();
              }
            })
        .build();
  }

  private Behavior<ProcessCommand> startMigration(ProcessCommand cmd) {
    var m = cmd.getMigrate();
    // A repeated request (the client asks again when an attempt got no answer) gets the record
    // of the migration it already started.
    if (rt.processes.arrivedBy(m.getMigrationId())) {
      // A repeat of the request that brought the process here: it has been carried out.
      reply(
          cmd,
          ProcessReply.newBuilder()
              .setMigration(
                  MigrationRecord.newBuilder()
                      .setId(m.getMigrationId())
                      .setPid(pid)
                      .setToNode(rt.nodeName)
                      .setStrategy(m.getStrategy().isEmpty() ? "data-segment" : m.getStrategy())
                      .setState(MigrationRecord.State.COMMITTED))
              .build());
      return Behaviors.same();
    }
    var known = rt.storedMigration(m.getMigrationId()); // (an unreadable one: treated as new)
    if (known.isPresent()) {
      reply(cmd, ProcessReply.newBuilder().setMigration(known.get()).build());
      return Behaviors.same();
    }
    String strategyName = m.getStrategy().isEmpty() ? "data-segment" : m.getStrategy();
    MigrationStrategy strategy = rt.strategies.get(strategyName).orElse(null);
    String error = null;
    FerryException.Kind kind = FerryException.Kind.CONFLICT;
    if (strategy == null) {
      error = "unknown strategy '" + strategyName + "'; available: " + rt.strategies.names();
      kind = FerryException.Kind.BAD_REQUEST;
    } else if (m.getToNode().equals(rt.nodeName)) {
      error = "process " + pid + " already runs on node " + rt.nodeName;
    } else if (rt.agent(m.getToNode()).isEmpty()) {
      error = "no node '" + m.getToNode() + "' in the cluster (see ferry nodes)";
      kind = FerryException.Kind.NOT_FOUND;
    } else {
      var state = rt.processes.state(pid);
      if (state.orElse(null) != dev.ferry.node.service.ProcessState.RUNNING) {
        error =
            "process "
                + pid
                + " is "
                + state.map(x -> x.name().toLowerCase()).orElse("gone")
                + "; only a running process can be migrated";
      } else {
        var paging = rt.processes.pagingView(pid);
        error =
            paging
                .map(x -> x.busy())
                .orElseGet(() -> strategy.refuse(pid, m.getToNode(), paging).orElse(null));
      }
    }
    if (error != null) {
      reply(cmd, Wire.replyError(new FerryException(kind, error)));
      return Behaviors.same();
    }
    MigrationCoordinator c =
        new MigrationCoordinator(
            rt, m.getMigrationId(), pid, m.getToNode(), strategy, ctx.getSelf());
    MigrationRecord accepted = c.record();
    c.start(); // saves the record first, so the requester can look the migration up at once
    reply(cmd, ProcessReply.newBuilder().setMigration(accepted).build());
    return migrating(m.getMigrationId(), c);
  }

  private CompletionStage<ProcessReply> startHere(ProcessCommand cmd) {
    var s = cmd.getStart();
    Map<String, String> env = new java.util.LinkedHashMap<>();
    for (String kv : s.getEnvList()) {
      int i = kv.indexOf('=');
      env.put(kv.substring(0, i), kv.substring(i + 1));
    }
    Map<String, byte[]> files = new HashMap<>();
    s.getFilesMap().forEach((k, v) -> files.put(k, v.toByteArray()));
    RunRequest req =
        new RunRequest(
            s.getModuleHash(),
            s.getEngine().isEmpty() ? null : Engine.parse(s.getEngine()),
            List.copyOf(s.getArgsList()),
            env,
            files,
            s.getPaged());
    return rt.processes.run(pid, req).thenApply(Wire::reply);
  }

  /**
   * Serves a request for a process this node holds; a copy of a request already served here (same
   * request id) gets the first one's answer.
   */
  static CompletionStage<ProcessReply> serveOnce(
      ClusterRuntime rt, String pid, ProcessCommand cmd) {
    return rt.repeated.once(cmd.getRequestId(), () -> serveLocally(rt, pid, cmd));
  }

  /** Serves a request for a process this node holds. */
  private static CompletionStage<ProcessReply> serveLocally(
      ClusterRuntime rt, String pid, ProcessCommand cmd) {
    var ps = rt.processes;
    switch (cmd.getOpCase()) {
      case STATUS:
        return ps.status(pid).thenApply(Wire::reply);
      case READ_LOG:
        {
          var r = cmd.getReadLog();
          Duration wait = Duration.ofMillis(Math.min(r.getWaitMillis(), LONGEST_WAIT.toMillis()));
          return ps.readLog(
                  pid,
                  r.getStderr() ? LogStream.STDERR : LogStream.STDOUT,
                  r.getOffset(),
                  r.getMaxBytes() <= 0 ? 1 << 20 : r.getMaxBytes(),
                  wait)
              .thenApply(Wire::reply);
        }
      case AWAIT_EXIT:
        {
          CompletableFuture<ProcessInfo> done = ps.awaitExit(pid).toCompletableFuture();
          return done.completeOnTimeout(null, LONGEST_WAIT.toMillis(), TimeUnit.MILLISECONDS)
              .thenCompose(i -> i != null ? CompletableFuture.completedFuture(i) : ps.status(pid))
              .thenApply(Wire::reply);
        }
      case KILL:
        return ps.kill(pid).thenApply(Wire::reply);
      case READ_FILE:
        return ps.readFile(pid, cmd.getReadFile().getGuestPath())
            .thenApply(
                b ->
                    ProcessReply.newBuilder()
                        .setFile(com.google.protobuf.ByteString.copyFrom(b))
                        .build());
      case CHECKPOINT:
        return ps.checkpoint(pid, cmd.getCheckpoint().getLeaveRunning()).thenApply(Wire::reply);
      case RESTORE:
        {
          String e = cmd.getRestore().getEngine();
          return ps.restore(pid, e.isEmpty() ? null : Engine.parse(e)).thenApply(Wire::reply);
        }
      default:
        return CompletableFuture.failedFuture(
            FerryException.badRequest("unsupported request " + cmd.getOpCase()));
    }
  }

  /**
   * A request for a process this node does not hold and did not send away. Its shard placement says
   * where it is: on another member, the shard is on its way there (it was placed here while that
   * node was away, e.g. restarting), and the request goes back to sharding to follow it; on a node
   * that is not in the cluster now, the requester learns so ({@link FerryException.NodeGone}: the
   * process is there, checkpointed, and resumes when that node is started again); else there is no
   * such process.
   */
  private static void notHere(ClusterRuntime rt, String pid, ProcessCommand cmd) {
    rt.placement(pid)
        .whenComplete(
            (at, e) -> {
              if (e != null) {
                // Not knowing where it is is not knowing that it does not exist.
                reply(
                    rt,
                    cmd,
                    Wire.replyError(
                        new FerryException(
                            FerryException.Kind.UNAVAILABLE,
                            "cannot tell where process "
                                + pid
                                + " is now (the cluster's placements could not be read: "
                                + MigrationCoordinator.message(e)
                                + "); try again")));
                return;
              }
              if (at.isPresent() && !at.get().equals(rt.selfAddress())) {
                if (rt.isMember(at.get())) {
                  redeliver(rt, cmd);
                  return;
                }
                reply(rt, cmd, Wire.replyError(nodeGone(rt, pid, at.get())));
                return;
              }
              reply(
                  rt,
                  cmd,
                  Wire.replyError(
                      FerryException.notFound("no process '" + pid + "' in the cluster")));
            });
  }

  /** Process {@code pid} is on the node at {@code at}, which is not in the cluster now. */
  static FerryException.NodeGone nodeGone(
      ClusterRuntime rt, String pid, org.apache.pekko.actor.Address at) {
    String node = rt.nameOf(at);
    return new FerryException.NodeGone(
        "process "
            + pid
            + " is on node "
            + node
            + ", which is not in the cluster now (the cluster removed it, or it"
            + " has not been started again yet); it resumes there when "
            + node
            + " is started again");
  }

  /**
   * A request that must reach the process's entity where its shard is placed, while the shard has
   * not got there yet (a migration request for a process that has just moved away; any request for
   * a process whose node has just rejoined): it goes back to the sharding region, which delivers it
   * where the shard is. Until the shard has moved it comes back here, every 50 ms; after {@link
   * #MAX_BOUNCES} tries the requester gets an error.
   */
  static void redeliver(ClusterRuntime rt, ProcessCommand cmd) {
    if (cmd.getBounces() >= MAX_BOUNCES) {
      reply(
          rt,
          cmd,
          Wire.replyError(
              new FerryException(
                  FerryException.Kind.UNAVAILABLE,
                  "process "
                      + cmd.getPid()
                      + " has moved and its new location is not known yet; try again")));
      return;
    }
    ProcessCommand again = cmd.toBuilder().setBounces(cmd.getBounces() + 1).build();
    java.util.concurrent.CompletableFuture.delayedExecutor(50, TimeUnit.MILLISECONDS)
        .execute(() -> rt.entity(cmd.getPid()).tell(again));
  }

  static final int MAX_BOUNCES = 400;

  /** Hands a request to the node the process moved to; that node answers the requester. */
  private void forward(ProcessCommand cmd, String node) {
    var agent = rt.agent(node);
    if (agent.isEmpty()) {
      reply(
          cmd,
          Wire.replyError(
              new FerryException(
                  FerryException.Kind.UNAVAILABLE,
                  "process " + pid + " moved to node " + node + ", which cannot be reached now")));
      return;
    }
    agent.get().tell(NodeRequest.newBuilder().setForwarded(cmd).build());
  }

  private void handle(ProcessCommand cmd, CompletionStage<ProcessReply> work) {
    handle(rt, cmd, work);
  }

  static void handle(ClusterRuntime rt, ProcessCommand cmd, CompletionStage<ProcessReply> work) {
    work.whenComplete((r, e) -> reply(rt, cmd, e == null ? r : Wire.replyError(e)));
  }

  private void reply(ProcessCommand cmd, ProcessReply r) {
    reply(rt, cmd, r);
  }

  static void reply(ClusterRuntime rt, ProcessCommand cmd, ProcessReply r) {
    if (!cmd.getReplyTo().isEmpty()) {
      ActorRef<ProcessReply> to = rt.resolver.resolveActorRef(cmd.getReplyTo());
      to.tell(r);
    }
  }
}
