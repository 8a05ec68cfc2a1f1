package dev.ferry.node.cluster;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.Ack;
import dev.ferry.transport.proto.MigrationBundle;
import dev.ferry.transport.proto.MigrationList;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeInfoMsg;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import dev.ferry.transport.proto.ProcessList;
import java.io.IOException;
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
 * processes and migrations, receives incoming migrations (a bundle in bounded chunks, stored
 * durably before it acknowledges the end), activates or drops them, and serves requests for a
 * process that has moved here before its shard has followed.
 */
final class NodeAgent {
  /** An incoming bundle being received. */
  private static final class Incoming {
    final String pid;
    final byte[] data;
    int filled;
    long nextSeq;
    final long firstChunkAt = System.nanoTime();
    long lastActivity = firstChunkAt;

    Incoming(String pid, int total) {
      this.pid = pid;
      this.data = new byte[total];
    }
  }

  private static final NodeRequest TICK = NodeRequest.getDefaultInstance();

  private final ClusterRuntime rt;
  private final Map<String, Incoming> incoming = new HashMap<>();

  private NodeAgent(ClusterRuntime rt) {
    this.rt = rt;
  }

  static Behavior<NodeRequest> create(ClusterRuntime rt) {
    return Behaviors.withTimers(
        timers -> {
          timers.startTimerWithFixedDelay(TICK, Duration.ofSeconds(5));
          NodeAgent a = new NodeAgent(rt);
          return Behaviors.receive(NodeRequest.class)
              .onMessage(NodeRequest.class, a::onRequest)
              .build();
        });
  }

  private Behavior<NodeRequest> onRequest(NodeRequest r) {
    try {
      switch (r.getOpCase()) {
        case OP_NOT_SET:
          dropStaleTransfers();
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
        case TRANSFER_CHUNK:
          {
            var c = r.getTransferChunk();
            if (c.getSeq() == 0) {
              if (c.getTotalBytes() > Integer.MAX_VALUE - 16) {
                throw FerryException.badRequest(
                    "bundle of " + c.getTotalBytes() + " bytes is too large");
              }
              if (rt.processes.has(c.getPid())) {
                throw FerryException.conflict(
                    "process " + c.getPid() + " is already on node " + rt.nodeName);
              }
              incoming.put(c.getMigrationId(), new Incoming(c.getPid(), (int) c.getTotalBytes()));
            }
            Incoming in = incoming.get(c.getMigrationId());
            if (in == null) {
              throw FerryException.notFound(
                  "no transfer " + c.getMigrationId() + " in progress here");
            }
            if (c.getSeq() != in.nextSeq) {
              incoming.remove(c.getMigrationId());
              throw FerryException.badRequest(
                  "chunk " + c.getSeq() + " arrived, expected " + in.nextSeq);
            }
            int n = c.getData().size();
            if (in.filled + n > in.data.length) {
              incoming.remove(c.getMigrationId());
              throw FerryException.badRequest("more bytes than announced");
            }
            c.getData().copyTo(in.data, in.filled);
            in.filled += n;
            in.nextSeq++;
            in.lastActivity = System.nanoTime();
            if (!c.getLast()) {
              reply(r, ack(c.getSeq(), true));
              break;
            }
            incoming.remove(c.getMigrationId());
            if (in.filled != in.data.length) {
              throw FerryException.badRequest(
                  "transfer ended after " + in.filled + " of " + in.data.length + " bytes");
            }
            String migrationId = c.getMigrationId();
            int crc = c.getCrc32C();
            long seq = c.getSeq();
            long streamMicros = (System.nanoTime() - in.firstChunkAt) / 1000;
            CompletableFuture.supplyAsync(
                    () -> {
                      long t0 = System.nanoTime();
                      if (MigrationCoordinator.crc32c(in.data) != crc) {
                        throw FerryException.badRequest("bundle checksum mismatch");
                      }
                      MigrationBundle bundle;
                      try {
                        bundle = MigrationBundle.parseFrom(in.data);
                      } catch (IOException ex) {
                        throw FerryException.badRequest("corrupt bundle: " + ex.getMessage());
                      }
                      rt.processes.adoptIncoming(migrationId, bundle);
                      return (System.nanoTime() - t0) / 1000;
                    })
                .whenComplete(
                    (storeMicros, ex) ->
                        reply(
                            r,
                            ex == null
                                ? NodeReply.newBuilder()
                                    .setAck(
                                        Ack.newBuilder()
                                            .setSeq(seq)
                                            .setPresent(true)
                                            .setStreamMicros(streamMicros)
                                            .setStoreMicros(storeMicros))
                                    .build()
                                : NodeReply.newBuilder().setError(Wire.error(ex)).build()));
            break;
          }
        case ACTIVATE:
          {
            var a = r.getActivate();
            CompletableFuture.supplyAsync(
                    () ->
                        rt.processes.activateIncoming(
                            a.getMigrationId(),
                            a.getEngine().isEmpty() ? null : Engine.parse(a.getEngine())))
                .whenComplete(
                    (info, ex) ->
                        reply(
                            r,
                            ex == null
                                ? NodeReply.newBuilder().setInfo(Wire.info(info)).build()
                                : NodeReply.newBuilder().setError(Wire.error(ex)).build()));
            break;
          }
        case ABORT_INCOMING:
          {
            String id = r.getAbortIncoming().getMigrationId();
            incoming.remove(id);
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
                || cmd.getOpCase() == ProcessCommand.OpCase.CANCEL_MIGRATION) {
              ProcessEntity.redeliver(rt, cmd); // needs the process's entity, wherever it now is
            } else if (rt.processes.has(pid)) {
              ProcessEntity.handle(rt, cmd, ProcessEntity.serveLocally(rt, pid, cmd));
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

  private void dropStaleTransfers() {
    long limit =
        rt.strategies.get("data-segment").isPresent()
            ? rt.settings.strategy("data-segment").getDuration("transfer-timeout").toNanos() * 2
            : Duration.ofMinutes(1).toNanos();
    incoming.values().removeIf(in -> System.nanoTime() - in.lastActivity > limit);
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
    rt.store
        .table(TableName.MIGRATIONS)
        .get(id)
        .ifPresent(
            bytes -> {
              try {
                b.addMigrations(MigrationRecord.parseFrom(bytes));
              } catch (IOException ignored) {
                // corrupt: as if absent
              }
            });
    return b.build();
  }

  private MigrationList migrations() {
    MigrationList.Builder b = MigrationList.newBuilder();
    Map<String, MigrationRecord> all = new HashMap<>();
    for (String id : rt.store.table(TableName.MIGRATIONS).keys()) {
      rt.store
          .table(TableName.MIGRATIONS)
          .get(id)
          .ifPresent(
              bytes -> {
                try {
                  all.put(id, MigrationRecord.parseFrom(bytes));
                } catch (IOException ignored) {
                  // a corrupt record is skipped
                }
              });
    }
    rt.running.forEach((id, c) -> all.put(id, c.record()));
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
