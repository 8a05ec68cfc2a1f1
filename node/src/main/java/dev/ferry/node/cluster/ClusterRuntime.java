package dev.ferry.node.cluster;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.process.NodeProcesses;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.TableName;
import dev.ferry.strategies.Strategies;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.MigrationRecord;
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
import org.apache.pekko.cluster.sharding.external.ExternalShardAllocation;
import org.apache.pekko.cluster.sharding.external.ExternalShardAllocationStrategy;
import org.apache.pekko.cluster.sharding.external.javadsl.ExternalShardAllocationClient;
import org.apache.pekko.cluster.sharding.typed.ShardingMessageExtractor;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Everything the cluster side of a node shares: its process entities (Cluster Sharding, one entity
 * and one shard per process, placed by an external shard allocation that a migration moves), its
 * node agent (found by other nodes through the receptionist), the migration records it keeps, and
 * the cluster-wide event topic.
 */
public final class ClusterRuntime {
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
  private final ClusterSharding sharding;
  private final ExternalShardAllocationClient allocation;
  private final Map<String, ActorRef<NodeRequest>> agents = new ConcurrentHashMap<>();
  private final ActorRef<Topic.Command<FerryEvent>> topic;

  /** "node/moduleHash" pairs known to be stored on that node (modules are never deleted). */
  final java.util.Set<String> knownModules = ConcurrentHashMap.newKeySet();

  /** Migrations this node coordinates, by id (only while running). */
  final Map<String, MigrationCoordinator> running = new ConcurrentHashMap<>();

  /** Where this node receives migrations. */
  final TransferServer transfer;

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
    try {
      this.transfer =
          new TransferServer(
              this,
              strategies.get("data-segment").isPresent()
                  ? settings.strategy("data-segment").getDuration("transfer-timeout")
                  : Duration.ofSeconds(30));
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
    this.allocation = ExternalShardAllocation.get(system).getClient(PROCESS.name());
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
    java.util.List<java.util.concurrent.CompletableFuture<Done>> placed =
        new java.util.ArrayList<>();
    for (String pid : processes.localIds()) {
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

  /** Places the shard of {@code pid} on {@code node}: where its entity, and so it, lives. */
  CompletionStage<Done> place(String pid, Address node) {
    return allocation.setShardLocation(pid, node);
  }

  Address selfAddress() {
    return Cluster.get(system).selfMember().address();
  }

  Optional<ActorRef<NodeRequest>> agent(String node) {
    return Optional.ofNullable(agents.get(node));
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

  void saveMigration(MigrationRecord r) {
    store.table(TableName.MIGRATIONS).put(r.getId(), r.toByteArray());
  }
}
