package dev.ferry.node.cluster;

import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.Ack;
import dev.ferry.transport.proto.MigrationList;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeInfoMsg;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessList;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * A node's agent: what other nodes ask of this node as a whole. It describes the node, lists its
 * processes and migrations, tells where it receives migrations ({@link TransferServer}), drops what
 * arrived there when a migration aborts, and serves requests for a process that has moved here
 * before its shard has followed.
 */
final class NodeAgent {
  private final ClusterRuntime rt;

  private NodeAgent(ClusterRuntime rt) {
    this.rt = rt;
  }

  static Behavior<NodeRequest> create(ClusterRuntime rt) {
    NodeAgent a = new NodeAgent(rt);
    return Behaviors.receive(NodeRequest.class).onMessage(NodeRequest.class, a::onRequest).build();
  }

  private Behavior<NodeRequest> onRequest(NodeRequest r) {
    try {
      switch (r.getOpCase()) {
        case TRANSFER_ENDPOINT:
          reply(r, NodeReply.newBuilder().setEndpoint(rt.transfer.endpoint()).build());
          break;
        case NODE_INFO:
          reply(r, NodeReply.newBuilder().setNodeInfo(info()).build());
          break;
        case LIST_PROCESSES:
          CompletableFuture.supplyAsync(rt.processes::localList)
              .whenComplete(
                  (l, e) -> {
                    if (e != null) {
                      reply(r, NodeReply.newBuilder().setError(Wire.error(e)).build());
                    } else {
                      ProcessList.Builder b = ProcessList.newBuilder();
                      l.forEach(i -> b.addProcesses(Wire.info(i)));
                      reply(r, NodeReply.newBuilder().setProcesses(b).build());
                    }
                  });
          break;
        case LIST_MIGRATIONS:
          reply(r, NodeReply.newBuilder().setMigrations(migrations()).build());
          break;
        case GET_MIGRATION:
          reply(r, NodeReply.newBuilder().setMigrations(migration(r.getGetMigration())).build());
          break;
        case MODULE_HASH:
          reply(r, ack(0, rt.store.table(TableName.MODULES).contains(r.getModuleHash())));
          break;
        case HOLDS_MIGRATION:
          reply(r, ack(0, rt.processes.holdsMigration(r.getHoldsMigration())));
          break;
        case MIGRATION_OUTCOME:
          reply(
              r,
              NodeReply.newBuilder()
                  .setOutcome(rt.outcome(r.getMigrationOutcome().getMigrationId()))
                  .build());
          break;
        case COMMIT_IN_DOUBT:
          // Asks the source first (up to 5 s): not on the agent's thread.
          CompletableFuture.supplyAsync(() -> rt.commitInDoubt(r.getCommitInDoubt()))
              .whenComplete(
                  (m, ex) ->
                      reply(
                          r,
                          ex == null
                              ? NodeReply.newBuilder()
                                  .setMigrations(MigrationList.newBuilder().addMigrations(m))
                                  .build()
                              : NodeReply.newBuilder().setError(Wire.error(ex)).build()));
          break;
        case ABORT_INCOMING:
          {
            String id = r.getAbortIncoming().getMigrationId();
            CompletableFuture.runAsync(() -> rt.processes.abortIncoming(id))
                .whenComplete(
                    (v, ex) ->
                        reply(
                            r,
                            ex == null
                                ? ack(0, true)
                                : NodeReply.newBuilder().setError(Wire.error(ex)).build()));
            break;
          }
        case FORWARDED:
          {
            ProcessCommand cmd = r.getForwarded();
            String pid = cmd.getPid();
            if (cmd.getOpCase() == ProcessCommand.OpCase.MIGRATE
                || cmd.getOpCase() == ProcessCommand.OpCase.CANCEL_MIGRATION
                || rt.processes.isInDoubt(pid)) {
              // Needs the process's entity, wherever it now is (one here holds requests for a
              // process in doubt until it is settled).
              ProcessEntity.redeliver(rt, cmd);
            } else if (rt.processes.has(pid)) {
              ProcessEntity.handle(rt, cmd, ProcessEntity.serveOnce(rt, pid, cmd));
            } else if (rt.processes.movedTo(pid).isPresent()
                && rt.agent(rt.processes.movedTo(pid).get()).isPresent()) {
              rt.agent(rt.processes.movedTo(pid).get()).get().tell(r);
            } else {
              ProcessEntity.reply(
                  rt,
                  cmd,
                  Wire.replyError(
                      FerryException.notFound("no process '" + pid + "' on node " + rt.nodeName)));
            }
            break;
          }
        default:
          throw FerryException.badRequest("unsupported request " + r.getOpCase());
      }
    } catch (RuntimeException e) {
      reply(r, NodeReply.newBuilder().setError(Wire.error(e)).build());
    }
    return Behaviors.same();
  }

  private NodeInfoMsg info() {
    List<ProcessInfo> local = rt.processes.localList();
    double load = ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    int cpus = Runtime.getRuntime().availableProcessors();
    return NodeInfoMsg.newBuilder()
        .setName(rt.nodeName)
        .setAddress(rt.selfAddress().toString())
        .setEngine(rt.settings.node().engine())
        .setJdk(System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")")
        .setLoad(load < 0 ? -1 : load / cpus)
        .setProcesses(local.size())
        .setRunning((int) local.stream().filter(p -> p.state() == ProcessState.RUNNING).count())
        .setHttpUrl("http://" + advertisedHttpHost() + ":" + rt.settings.http().port())
        .build();
  }

  /** The HTTP host clients can use: the cluster host when HTTP listens on every address. */
  private String advertisedHttpHost() {
    String h = rt.settings.http().host();
    return h.equals("0.0.0.0") || h.equals("::") || h.equals("[::]")
        ? rt.settings.node().host()
        : h;
  }

  private MigrationList migration(String id) {
    MigrationList.Builder b = MigrationList.newBuilder();
    MigrationCoordinator live = rt.running.get(id);
    if (live != null) {
      return b.addMigrations(live.record()).build();
    }
    rt.storedMigration(id).ifPresent(b::addMigrations);
    rt.processes.inDoubtFrom(id).ifPresent(d -> b.addMigrations(rt.inDoubtRecord(d)));
    return b.build();
  }

  private MigrationList migrations() {
    MigrationList.Builder b = MigrationList.newBuilder();
    Map<String, MigrationRecord> all = new HashMap<>();
    for (String id : rt.store.table(TableName.MIGRATIONS).keys()) {
      rt.storedMigration(id).ifPresent(m -> all.put(id, m)); // a corrupt record is skipped
    }
    rt.running.forEach((id, c) -> all.put(id, c.record()));
    rt.processes.inDoubt().forEach(d -> all.put(d.migrationId(), rt.inDoubtRecord(d)));
    List<MigrationRecord> list = new ArrayList<>(all.values());
    b.addAllMigrations(list);
    return b.build();
  }

  private static NodeReply ack(long seq, boolean present) {
    return NodeReply.newBuilder().setAck(Ack.newBuilder().setSeq(seq).setPresent(present)).build();
  }

  private void reply(NodeRequest r, NodeReply reply) {
    if (!r.getReplyTo().isEmpty()) {
      ActorRef<NodeReply> to = rt.resolver.resolveActorRef(r.getReplyTo());
      to.tell(reply);
    }
  }

  static CompletionStage<NodeReply> ask(
      ClusterRuntime rt,
      ActorRef<NodeRequest> agent,
      NodeRequest.Builder request,
      Duration timeout) {
    return org.apache.pekko.actor.typed.javadsl.AskPattern.ask(
        agent,
        (ActorRef<NodeReply> replyTo) ->
            request.setReplyTo(rt.resolver.toSerializationFormat(replyTo)).build(),
        timeout,
        rt.system.scheduler());
  }
}
