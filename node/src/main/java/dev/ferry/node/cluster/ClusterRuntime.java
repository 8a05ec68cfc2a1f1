package dev.ferry.node.cluster;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.process.NodeProcesses;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.TableName;
import dev.ferry.strategies.Strategies;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.ProcessCommand;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.Done;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.cluster.ddata.LWWMap;
import org.apache.pekko.cluster.ddata.LWWMapKey;
import org.apache.pekko.cluster.sharding.external.ExternalShardAllocationStrategy;
import org.apache.pekko.cluster.sharding.external.ExternalShardAllocationStrategy$;
import org.apache.pekko.cluster.sharding.typed.ShardingMessageExtractor;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.cluster.typed.Cluster;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Everything the cluster side of a node shares: its process entities (Cluster Sharding, one entity
 * and one shard per process, placed by an external shard allocation that a migration moves), its
 * node agent (found by other nodes through the receptionist), the migration records it keeps, and
 * the cluster-wide event topic.
 */
public final class ClusterRuntime {
  private static final Logger log = LoggerFactory.getLogger(ClusterRuntime.class);

  static final EntityTypeKey<ProcessCommand> PROCESS =
      EntityTypeKey.create(ProcessCommand.class, "process");
  static final ServiceKey<NodeRequest> AGENTS = ServiceKey.create(NodeRequest.class, "ferry-agent");
  static final String AGENT_PREFIX = "agent-";

  final ActorSystem<?> system;
  final FerrySettings settings;
  final NodeProcesses processes;
  final FerryStore store;
  final Strategies strategies;
  final String nodeName;
  final ActorRefResolver resolver;
  final Duration askTimeout = Duration.ofSeconds(60);

  /** Requests that change a process, served here, by request id: each is carried out once. */
  final RepeatedRequests repeated = new RepeatedRequests(10_000, askTimeout.multipliedBy(5));

  private final ClusterSharding sharding;
  private final org.apache.pekko.actor.ActorRef replicator;
  private final org.apache.pekko.cluster.ddata.SelfUniqueAddress selfUnique;
  private final Map<String, ActorRef<NodeRequest>> agents = new ConcurrentHashMap<>();

  /**
   * The name of every node whose agent was ever listed, by cluster address (a superset of {@link
   * #agents}'): an unreachable member's agent drops out of the listing, but the member is still
   * named by its name, not its address.
   */
  private final Map<Address, String> names = new ConcurrentHashMap<>();

  private final ActorRef<Topic.Command<FerryEvent>> topic;

  /** "node/moduleHash" pairs known to be stored on that node (modules are never deleted). */
  final java.util.Set<String> knownModules = ConcurrentHashMap.newKeySet();

  /** Migrations this node coordinates, by id (only while running). */
  final Map<String, MigrationCoordinator> running = new ConcurrentHashMap<>();

  /**
   * Migrations this node was the source of that had not ended when it last stopped, with the
   * process still here, by id: settled by asking their destination ({@link
   * #settleWithDestination}).
   */
  private final Map<String, MigrationRecord> interrupted = new ConcurrentHashMap<>();

  /** Where this node receives migrations. */
  final TransferServer transfer;

  /**
   * How long this node's migration receiver waits on a silent connection (data-segment's
   * transfer-timeout, whatever the strategy). The nodes of a cluster are configured alike, so a
   * source takes its own value for its destination's.
   */
  final Duration receiverSilence;

  /** Where other nodes receive migrations, by node name, as their agents said. */
  final Map<String, dev.ferry.transport.proto.TransferEndpoint> endpoints =
      new ConcurrentHashMap<>();

  public ClusterRuntime(
      ActorSystem<?> system,
      FerrySettings settings,
      NodeProcesses processes,
      FerryStore store,
      Strategies strategies) {
    this.system = system;
    this.settings = settings;
    this.processes = processes;
    this.store = store;
    this.strategies = strategies;
    this.nodeName = settings.node().name();
    this.receiverSilence =
        strategies.get("data-segment").isPresent()
            ? settings.strategy("data-segment").getDuration("transfer-timeout")
            : Duration.ofSeconds(30);
    try {
      this.transfer = new TransferServer(this, receiverSilence);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(
          "cannot open the migration receiver on " + settings.node().host() + ": " + e, e);
    }
    system.getWhenTerminated().thenRun(transfer::close);
    PageChannels pages = new PageChannels(this, processes.paging().settings().transferTimeout());
    processes.paging().setPeers(pages);
    system.getWhenTerminated().thenRun(pages::close);
    this.resolver = ActorRefResolver.get(system);
    this.sharding = ClusterSharding.get(system);
    var ddata =
        org.apache.pekko.cluster.ddata.DistributedData.get(
            org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system));
    this.replicator = ddata.replicator();
    this.selfUnique = ddata.selfUniqueAddress();
    this.topic =
        system.systemActorOf(
            Topic.create(FerryEvent.class, "ferry-events"), "events", Props.empty());
  }

  /**
   * Starts sharding, the node agent, the agent directory and the membership events, and places the
   * shard of every process this node holds here (placements live in Distributed Data, which does
   * not survive a restart of the whole cluster).
   */
  public void start() {
    transfer.start();
    sharding.init(
        Entity.of(PROCESS, ctx -> ProcessEntity.create(this, ctx.getEntityId()))
            .withStopMessage(
                ProcessCommand.newBuilder()
                    .setHandoff(dev.ferry.transport.proto.Empty.getDefaultInstance())
                    .build())
            .withMessageExtractor(
                new ShardingMessageExtractor<ProcessCommand, ProcessCommand>() {
                  @Override
                  public String entityId(ProcessCommand m) {
                    return m.getPid();
                  }

                  @Override
                  public String shardId(String entityId) {
                    return entityId;
                  }

                  @Override
                  public ProcessCommand unwrapMessage(ProcessCommand m) {
                    return m;
                  }
                })
            .withAllocationStrategy(
                ExternalShardAllocationStrategy.create(
                    system, PROCESS.name(), Duration.ofSeconds(5))));
    settleInterruptedMigrations();
    ActorRef<NodeRequest> agent =
        system.systemActorOf(NodeAgent.create(this), AGENT_PREFIX + nodeName, Props.empty());
    system.receptionist().tell(Receptionist.register(AGENTS, agent));
    ActorRef<Receptionist.Listing> listener =
        system.systemActorOf(
            Behaviors.<Receptionist.Listing>receive(Receptionist.Listing.class)
                .onMessage(
                    Receptionist.Listing.class,
                    l -> {
                      Map<String, ActorRef<NodeRequest>> now = new ConcurrentHashMap<>();
                      for (ActorRef<NodeRequest> a : l.getServiceInstances(AGENTS)) {
                        now.put(a.path().name().substring(AGENT_PREFIX.length()), a);
                      }
                      agents.keySet().retainAll(now.keySet());
                      agents.putAll(now);
                      now.forEach((name, a) -> names.put(a.path().address(), name));
                      return Behaviors.same();
                    })
                .build(),
            "agent-directory",
            Props.empty());
    system.receptionist().tell(Receptionist.subscribe(AGENTS, listener));
    agents.put(nodeName, agent);
    system.systemActorOf(MembershipEvents.create(this), "membership-events", Props.empty());
    // A topic registers with the receptionist only once it has a local subscriber, and other nodes
    // publish to it only once that registration has spread (seconds under load). A permanent
    // subscriber keeps this node's registration from start-up on, so that whoever subscribes
    // later (GET /v1/events) gets other nodes' events from the first one.
    topic.tell(
        Topic.subscribe(
            system.systemActorOf(Behaviors.<FerryEvent>ignore(), "events-anchor", Props.empty())));
    processes.setListener(this::processEvent);
    settleAfterRestart();
    java.util.List<java.util.concurrent.CompletableFuture<Done>> placed =
        new java.util.ArrayList<>();
    java.util.Set<String> unsettled = new java.util.HashSet<>();
    interrupted.values().forEach(r -> unsettled.add(r.getPid()));
    for (String pid : processes.localIds()) {
      if (unsettled.contains(pid)) {
        continue; // its destination may run it: its shard stays where it is until settled
      }
      placed.add(place(pid, selfAddress()).toCompletableFuture());
    }
    java.util.concurrent.CompletableFuture.allOf(
            placed.toArray(new java.util.concurrent.CompletableFuture[0]))
        .orTimeout(30, java.util.concurrent.TimeUnit.SECONDS)
        .join();
  }

  private void processEvent(
      String pid, String what, Integer exitCode, String engine, String error) {
    var e =
        dev.ferry.transport.proto.ProcessEvent.newBuilder()
            .setPid(pid)
            .setWhat(what)
            .setEngine(engine == null ? "" : engine)
            .setError(error == null ? "" : error);
    if (exitCode != null) {
      e.setExitCode(exitCode);
    }
    publish(event().setProcessEvent(e).build());
  }

  EntityRef<ProcessCommand> entity(String pid) {
    return sharding.entityRefFor(PROCESS, pid);
  }

  /**
   * Places the shard of {@code pid} on {@code node}: where its entity, and so it, lives. Done once
   * a majority of the nodes has the placement, or after {@link #PLACE_WAIT} (it is written here at
   * once and spreads from here either way).
   *
   * <p>(The external shard allocation's own client writes only this node's copy and lets it spread
   * later. A node that stopped or hung right after starting a process, or after settling a
   * migration it was the source of, took the only copy with it, and every other node answered 404
   * "no process … in the cluster" for a process it held: MigrationFaultTest, twice in CI.)
   */
  CompletionStage<Done> place(String pid, Address node) {
    var update =
        new org.apache.pekko.cluster.ddata.Replicator.Update<>(
            PLACEMENTS,
            LWWMap.<String, String>empty(),
            new org.apache.pekko.cluster.ddata.Replicator.WriteMajority(PLACE_WAIT),
            (LWWMap<String, String> m) -> m.put(selfUnique, pid, node.toString()));
    return org.apache.pekko.pattern.Patterns.ask(replicator, update, PLACE_WAIT.plusSeconds(2))
        .thenApply(
            r -> {
              if (r instanceof org.apache.pekko.cluster.ddata.Replicator.UpdateSuccess<?>
                  || r instanceof org.apache.pekko.cluster.ddata.Replicator.UpdateTimeout<?>) {
                return Done.getInstance();
              }
              throw new IllegalStateException("placing process " + pid + " failed: " + r);
            });
  }

  /** How long placing a process waits for a majority of the nodes to have the placement. */
  private static final Duration PLACE_WAIT = Duration.ofSeconds(3);

  Address selfAddress() {
    return Cluster.get(system).selfMember().address();
  }

  Optional<ActorRef<NodeRequest>> agent(String node) {
    return Optional.ofNullable(agents.get(node));
  }

  /**
   * The node the shard of {@code pid} was last placed on: this node's copy of the placements
   * (Distributed Data), or, if that names none (a placement written elsewhere that has not spread
   * here yet), a majority of the nodes'. Fails only if this node's copy names none and a majority
   * cannot be read: then whether the process exists is not known, which is not "no such process".
   *
   * <p>(Before, only the majority was read: a member that was slow to answer, e.g. one the machine
   * starved for a few seconds, made the read time out after 5 s and every node answer 404 "no
   * process" for a process on a node that had just left the cluster.)
   */
  CompletionStage<Optional<Address>> placement(String pid) {
    return placementHere(pid)
        .thenCompose(
            at ->
                at.isPresent()
                    ? java.util.concurrent.CompletableFuture.completedFuture(at)
                    : readPlacement(
                        pid,
                        new org.apache.pekko.cluster.ddata.Replicator.ReadMajority(
                            PLACEMENT_READ)));
  }

  /** The node the shard of {@code pid} was last placed on, as this node's copy says (no asking). */
  CompletionStage<Optional<Address>> placementHere(String pid) {
    return readPlacement(pid, org.apache.pekko.cluster.ddata.Replicator.readLocal());
  }

  /** How long reading the placements from a majority of the nodes waits. */
  private static final Duration PLACEMENT_READ = Duration.ofSeconds(5);

  private CompletionStage<Optional<Address>> readPlacement(
      String pid, org.apache.pekko.cluster.ddata.Replicator.ReadConsistency consistency) {
    return org.apache.pekko.pattern.Patterns.ask(
            replicator,
            new org.apache.pekko.cluster.ddata.Replicator.Get<>(PLACEMENTS, consistency),
            PLACEMENT_READ.plusSeconds(2))
        .thenApply(
            r -> {
              if (r instanceof org.apache.pekko.cluster.ddata.Replicator.GetSuccess<?> ok) {
                return ((LWWMap<?, ?>) ok.dataValue()).getEntries().get(pid) instanceof String a
                    ? Optional.of(org.apache.pekko.actor.AddressFromURIString.parse(a))
                    : Optional.<Address>empty();
              }
              if (r instanceof org.apache.pekko.cluster.ddata.Replicator.NotFound<?>) {
                return Optional.<Address>empty(); // no placement anywhere yet
              }
              // GetFailure: only a read from other nodes can time out
              throw new IllegalStateException(
                  r instanceof org.apache.pekko.cluster.ddata.Replicator.GetFailure<?>
                      ? "a majority of the nodes did not answer within "
                          + consistency.timeout().toSeconds()
                          + " s"
                      : "unexpected answer from the replicator: " + r);
            });
  }

  /**
   * Where the external shard allocation keeps the placements (its key, as {@link
   * ExternalShardAllocationStrategy} names it for the process entities).
   */
  private static final LWWMapKey<String, String> PLACEMENTS =
      ExternalShardAllocationStrategy$.MODULE$.ddataKey(PROCESS.name());

  /**
   * Whether a node at {@code address} is a member of the cluster now, in any status but down (a
   * downed member is only waiting to be removed: it serves nothing any more).
   */
  boolean isMember(Address address) {
    for (org.apache.pekko.cluster.Member m : Cluster.get(system).state().getMembers()) {
      if (m.address().equals(address)) {
        return m.status() != org.apache.pekko.cluster.MemberStatus.down();
      }
    }
    return false;
  }

  /** The name of the node at {@code address} if its agent was ever listed, else its host:port. */
  String nameOf(Address address) {
    String name = names.get(address);
    return name != null ? name : address.hostPort();
  }

  Map<String, ActorRef<NodeRequest>> agents() {
    return Map.copyOf(agents);
  }

  /** The cluster address of a node, by name, if it is a member with an agent. */
  Optional<Address> address(String node) {
    return agent(node)
        .map(a -> a.path().address().hasGlobalScope() ? a.path().address() : selfAddress());
  }

  void publish(FerryEvent event) {
    topic.tell(Topic.publish(event));
  }

  ActorRef<Topic.Command<FerryEvent>> topic() {
    return topic;
  }

  FerryEvent.Builder event() {
    return FerryEvent.newBuilder().setAtMicros(ProtoRecords.nowMicros()).setNode(nodeName);
  }

  // ---------------------------------------------------------------------------------------------
  // Migrations interrupted by a stop of their source or destination

  /**
   * Start-up: migrations this node was the source of and that had not ended when it stopped. Gone
   * to the destination: it committed, and the node stopped before recording the end. The process
   * still here (left checkpointed or failed by the stop): only the destination knows whether it
   * took the process, so it is asked ({@link #settleWithDestination}).
   */
  private void settleInterruptedMigrations() {
    for (String id : store.table(TableName.MIGRATIONS).keys()) {
      MigrationRecord r = storedMigration(id).orElse(null);
      if (r == null || isFinal(r.getState()) || !r.getFromNode().equals(nodeName)) {
        continue;
      }
      if (processes.has(r.getPid())) {
        interrupted.put(id, r);
      } else if (processes.movedTo(r.getPid()).filter(r.getToNode()::equals).isPresent()) {
        recordEnd(
            r,
            MigrationRecord.State.COMMITTED,
            "node " + nodeName + " stopped after the commit, before it recorded the end");
      }
    }
  }

  /** Records how an interrupted migration ended, and says so in the log. */
  private void recordEnd(MigrationRecord r, MigrationRecord.State end, String why) {
    log.warn("migration {} of {}: {}", r.getId(), r.getPid(), why);
    saveMigration(
        r.toBuilder()
            .setState(end)
            .setError(why)
            .setFinishedAtMicros(ProtoRecords.nowMicros())
            .build());
  }

  /** How a migration this node is or was the source of ended, as far as it knows. */
  dev.ferry.transport.proto.MigrationOutcome outcome(String migrationId) {
    var o = dev.ferry.transport.proto.MigrationOutcome.newBuilder();
    if (running.containsKey(migrationId)) {
      return o.setOutcome(dev.ferry.transport.proto.MigrationOutcome.Outcome.UNDECIDED)
          .setDetail("under way on node " + nodeName)
          .build();
    }
    if (interrupted.containsKey(migrationId)) {
      return o.setOutcome(dev.ferry.transport.proto.MigrationOutcome.Outcome.UNDECIDED)
          .setDetail("node " + nodeName + " is asking the destination, after a restart")
          .build();
    }
    MigrationRecord r = storedMigration(migrationId).orElse(null);
    if (r == null || !isFinal(r.getState())) {
      return o.setOutcome(dev.ferry.transport.proto.MigrationOutcome.Outcome.UNKNOWN)
          .setDetail(
              r == null
                  ? "node " + nodeName + " has no record of migration " + migrationId
                  : "node " + nodeName + " does not know how migration " + migrationId + " ended")
          .build();
    }
    return o.setOutcome(
            r.getState() == MigrationRecord.State.COMMITTED
                ? dev.ferry.transport.proto.MigrationOutcome.Outcome.COMMITTED
                : dev.ferry.transport.proto.MigrationOutcome.Outcome.NOT_COMMITTED)
        .setDetail(r.getState().name().toLowerCase())
        .build();
  }

  /** A migration's stored record (none if absent or unreadable). */
  Optional<MigrationRecord> storedMigration(String id) {
    return store
        .table(TableName.MIGRATIONS)
        .get(id)
        .flatMap(
            bytes -> {
              try {
                return Optional.of(MigrationRecord.parseFrom(bytes));
              } catch (java.io.IOException e) {
                return Optional.empty();
              }
            });
  }

  /** Committed, aborted or cancelled. */
  static boolean isFinal(MigrationRecord.State s) {
    return s == MigrationRecord.State.COMMITTED
        || s == MigrationRecord.State.ABORTED
        || s == MigrationRecord.State.CANCELLED;
  }

  /**
   * Settles what a stop left unsettled, every two seconds until nothing is left: asks the sources
   * of the migrations whose process this node holds in doubt how each ended (committed, the process
   * runs here; not, it is dropped), and the destinations of the migrations this node was the source
   * of whether they hold the process.
   */
  private void settleAfterRestart() {
    if (processes.inDoubt().isEmpty() && interrupted.isEmpty()) {
      return;
    }
    java.util.concurrent.ScheduledExecutorService timer =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
            dev.ferry.node.DaemonThreads.named("ferry-in-doubt"));
    system.getWhenTerminated().thenRun(timer::shutdownNow);
    Map<String, Long> warned = new ConcurrentHashMap<>();
    timer.scheduleWithFixedDelay(
        () -> {
          for (NodeProcesses.InDoubt d : processes.inDoubt()) {
            try {
              askSource(d, warned);
            } catch (RuntimeException e) {
              log.warn("in-doubt migration {}: {}", d.migrationId(), e.toString());
            }
          }
          for (MigrationRecord r : interrupted.values()) {
            try {
              settleWithDestination(r, warned);
            } catch (RuntimeException e) {
              log.warn("interrupted migration {}: {}", r.getId(), e.toString());
            }
          }
          if (processes.inDoubt().isEmpty() && interrupted.isEmpty()) {
            timer.shutdown();
          }
        },
        1,
        2,
        java.util.concurrent.TimeUnit.SECONDS);
  }

  /**
   * An interrupted migration of this node's: if the destination holds the process (it answered the
   * last chunk and this node stopped before it committed), it committed, and the copy the stop left
   * here is dropped; if not, it aborted and the process stays here.
   */
  private void settleWithDestination(MigrationRecord r, Map<String, Long> warned) {
    NodeReply a =
        askWhileSettling(
            r.getToNode(),
            NodeRequest.newBuilder().setHoldsMigration(r.getId()),
            warned,
            r.getId(),
            "migration "
                + r.getId()
                + " of "
                + r.getPid()
                + ", interrupted by a stop of this node");
    if (a == null || !a.hasAck()) {
      return;
    }
    if (a.getAck().getPresent()) {
      processes.dropLeftBehind(r.getPid(), r.getToNode());
      recordEnd(
          r,
          MigrationRecord.State.COMMITTED,
          "node "
              + nodeName
              + " stopped after node "
              + r.getToNode()
              + " took the process; the copy the stop left here was dropped");
    } else {
      recordEnd(
          r,
          MigrationRecord.State.ABORTED,
          "node " + nodeName + " stopped during the migration; the process stayed on it");
      // Its shard was not placed at the start (the destination might have run it): it is now.
      place(r.getPid(), selfAddress());
    }
    interrupted.remove(r.getId());
  }

  /** Asks the source of an in-doubt migration how it ended, and settles it if it knows. */
  private void askSource(NodeProcesses.InDoubt d, Map<String, Long> warned) {
    String what = "process " + d.pid() + " (migration " + d.migrationId() + "), held in doubt";
    NodeReply r = askWhileSettling(d.fromNode(), outcomeQuery(d), warned, d.migrationId(), what);
    if (r == null || !r.hasOutcome()) {
      return;
    }
    switch (r.getOutcome().getOutcome()) {
      case COMMITTED:
        processes
            .settleInDoubt(d.migrationId(), true)
            .ifPresent(info -> place(info.id(), selfAddress()));
        break;
      case NOT_COMMITTED:
        processes.settleInDoubt(d.migrationId(), false);
        break;
      default:
        warnRarely(warned, d.migrationId(), what + ": " + r.getOutcome().getDetail());
    }
  }

  /** The record a node reports for a migration whose process it holds in doubt. */
  MigrationRecord inDoubtRecord(NodeProcesses.InDoubt d) {
    return MigrationRecord.newBuilder()
        .setId(d.migrationId())
        .setPid(d.pid())
        .setFromNode(d.fromNode())
        .setToNode(nodeName)
        .setState(MigrationRecord.State.IN_DOUBT)
        .setError(
            "node "
                + nodeName
                + " restarted holding the process, before it recorded that it runs there, and"
                + " waits for node "
                + d.fromNode()
                + " to say whether the migration committed (held since "
                + java.time.Instant.EPOCH.plus(
                    d.heldSinceMicros(), java.time.temporal.ChronoUnit.MICROS)
                + "); if that node is gone for good, `ferry commit "
                + d.migrationId()
                + "` runs the process here")
        .build();
  }

  /**
   * An operator commits by hand a migration this node holds in doubt: the process runs here. Only
   * when the source cannot say how the migration ended (it has left the cluster, or came back
   * without its record of it); while it can, its word settles it (and a "not committed" refuses the
   * request, the copy held here being dropped). Refused while any member is unreachable: the source
   * may be one of them and still run the process. Returns the migration's final record, stored
   * here.
   */
  MigrationRecord commitInDoubt(String migrationId) {
    NodeProcesses.InDoubt d =
        processes
            .inDoubtFrom(migrationId)
            .orElseThrow(
                () ->
                    dev.ferry.node.service.FerryException.conflict(
                        "node "
                            + nodeName
                            + " holds no process in doubt from migration "
                            + migrationId
                            + " (settled meanwhile?)"));
    String why; // (the operator's decision, unless the source answers)
    var agent = agent(d.fromNode());
    if (agent.isPresent()) {
      NodeReply r = askBriefly(agent.get(), outcomeQuery(d));
      if (r == null || r.hasError() || !r.hasOutcome()) {
        throw dev.ferry.node.service.FerryException.conflict(
            "node "
                + d.fromNode()
                + " is in the cluster but did not answer"
                + (r != null && r.hasError() ? " (" + r.getError().getMessage() + ")" : "")
                + ": it may still have the process; try again, or once it has left the cluster");
      }
      var o = r.getOutcome();
      switch (o.getOutcome()) {
        case COMMITTED:
          why = "asked by an operator, node " + d.fromNode() + " said it committed";
          break;
        case NOT_COMMITTED:
          processes.settleInDoubt(d.migrationId(), false);
          throw dev.ferry.node.service.FerryException.conflict(
              "node "
                  + d.fromNode()
                  + " says migration "
                  + migrationId
                  + " did not commit ("
                  + o.getDetail()
                  + "): the process is that node's; the copy held here was dropped");
        case UNKNOWN:
          why = "committed by an operator: " + o.getDetail();
          break;
        default:
          throw dev.ferry.node.service.FerryException.conflict(
              "node "
                  + d.fromNode()
                  + " is still settling migration "
                  + migrationId
                  + " ("
                  + o.getDetail()
                  + "); try again in a few seconds");
      }
    } else {
      var unreachable = Cluster.get(system).state().getUnreachable();
      if (!unreachable.isEmpty()) {
        throw dev.ferry.node.service.FerryException.conflict(
            "node "
                + d.fromNode()
                + " does not answer, and "
                + unreachable.size()
                + " member(s) of the cluster are unreachable: it may be one of them and still"
                + " have the process; try again once the cluster has downed them");
      }
      why = "committed by an operator: node " + d.fromNode() + " is not in the cluster";
    }
    var info =
        processes
            .settleInDoubt(d.migrationId(), true)
            .orElseThrow(
                () ->
                    dev.ferry.node.service.FerryException.conflict(
                        "migration " + migrationId + " was settled meanwhile"));
    place(info.id(), selfAddress());
    MigrationRecord end =
        inDoubtRecord(d).toBuilder()
            .setState(MigrationRecord.State.COMMITTED)
            .setFinishedAtMicros(ProtoRecords.nowMicros())
            .setError(
                why + "; the process runs on node " + nodeName + " from the image that arrived")
            .build();
    log.warn("migration {} of {}: {}", migrationId, d.pid(), end.getError());
    saveMigration(end);
    store.sync();
    return end;
  }

  /**
   * Asks {@code node}'s agent (5 s at most) on behalf of something a restart left unsettled. No
   * answer, or an error: null, and a warning at most once a minute per {@code key}.
   */
  private NodeReply askWhileSettling(
      String node, NodeRequest.Builder request, Map<String, Long> warned, String key, String what) {
    var agent = agent(node);
    String why;
    if (agent.isEmpty()) {
      why = "node " + node + " is not in the cluster";
    } else {
      NodeReply r = askBriefly(agent.get(), request);
      if (r != null && !r.hasError()) {
        return r;
      }
      why = r == null ? "node " + node + " did not answer" : r.getError().getMessage();
    }
    warnRarely(warned, key, what + ": " + why);
    return null;
  }

  /** Asks an agent, 5 s at most; null if it did not answer. */
  private NodeReply askBriefly(ActorRef<NodeRequest> agent, NodeRequest.Builder request) {
    try {
      return NodeAgent.ask(this, agent, request, Duration.ofSeconds(5))
          .toCompletableFuture()
          .get(6, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      return null;
    }
  }

  /** The question to a migration's source: how did it end? */
  private static NodeRequest.Builder outcomeQuery(NodeProcesses.InDoubt d) {
    return NodeRequest.newBuilder()
        .setMigrationOutcome(
            dev.ferry.transport.proto.OutcomeQuery.newBuilder()
                .setMigrationId(d.migrationId())
                .setPid(d.pid()));
  }

  private static void warnRarely(Map<String, Long> warned, String key, String message) {
    long now = System.nanoTime();
    Long last = warned.get(key);
    if (last == null || now - last > java.util.concurrent.TimeUnit.MINUTES.toNanos(1)) {
      warned.put(key, now);
      log.warn("{}; asking again", message);
    }
  }

  void saveMigration(MigrationRecord r) {
    store.table(TableName.MIGRATIONS).put(r.getId(), r.toByteArray());
  }
}
