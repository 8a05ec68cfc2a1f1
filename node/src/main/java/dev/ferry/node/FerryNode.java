package dev.ferry.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import dev.ferry.config.FerrySettings;
import dev.ferry.node.cluster.ClusterProcessService;
import dev.ferry.node.cluster.ClusterRuntime;
import dev.ferry.node.process.NodeProcesses;
import dev.ferry.node.runtime.ModuleRegistry;
import dev.ferry.node.service.ClusterService;
import dev.ferry.statestore.FerryStore;
import dev.ferry.strategies.Strategies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Ferry node: its LMDB store, its modules and processes, and its Pekko Cluster member (Artery
 * TCP). With no seeds configured it forms a one-node cluster by joining itself.
 *
 * <p>{@link #start} returns once the store is open, the node is an Up cluster member and the
 * processes of the last shutdown have been resumed. {@link #close} checkpoints every running
 * process durably before stopping, so the next start of the same data directory resumes them.
 */
public final class FerryNode implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FerryNode.class);
  public static final String SYSTEM_NAME = "ferry";

  private final FerrySettings settings;
  private final FerryStore store;
  private final NodeProcesses processes;
  private final ClusterService service;
  private final ActorSystem<Void> system;
  // volatile: read without the lock by onSystemTerminated, which runs on whatever thread completes
  // the actor system's termination, possibly while close() holds the lock and waits for it
  private volatile boolean closed;
  private final java.util.concurrent.CompletableFuture<String> removed =
      new java.util.concurrent.CompletableFuture<>();

  private FerryNode(
      FerrySettings settings,
      FerryStore store,
      NodeProcesses processes,
      ClusterService service,
      ActorSystem<Void> system) {
    this.settings = settings;
    this.store = store;
    this.processes = processes;
    this.service = service;
    this.system = system;
    system.getWhenTerminated().thenRun(this::onSystemTerminated);
  }

  /**
   * The cluster member stopped without {@link #close}: the cluster removed this node (downed by the
   * split-brain resolver after it was unreachable too long — a long pause, a partition — or by an
   * operator's tool). Without its member the node can neither be reached nor reach the others, so
   * it closes itself as at a stop: its processes are checkpointed durably, and resume when the node
   * is started again (it then joins the cluster anew).
   */
  private void onSystemTerminated() {
    if (closed) {
      return; // (set by close() before it stops the actor system)
    }
    String reason =
        "node "
            + name()
            + " was removed from the cluster (downed: unreachable from the majority for too long,"
            + " e.g. a long pause or a network partition); its processes were checkpointed and"
            + " resume when it is started again";
    log.error(
        "node {} was removed from the cluster (its cluster member stopped); checkpointing its"
            + " processes and stopping",
        name());
    Thread t =
        new Thread(
            () -> {
              try {
                close();
              } catch (RuntimeException e) {
                log.error("closing node {} after its removal failed: {}", name(), e.toString(), e);
              } finally {
                removed.complete(reason);
              }
            },
            "ferry-node-removed");
    t.start();
  }

  /**
   * Completes, with a sentence saying so, once this node has closed itself because the cluster
   * removed it (see {@link #onSystemTerminated}); never completes for a node closed by {@link
   * #close}.
   */
  public java.util.concurrent.CompletionStage<String> removedFromCluster() {
    return removed;
  }

  /**
   * Checks what {@link FerrySettings#load} leaves to the node: the strategy sections ({@code
   * ferry.strategies.*}). Throws {@link dev.ferry.config.InvalidSettingsException} naming the bad
   * key; {@link #start} calls it before it touches the data directory or the cluster.
   */
  public static void checkSettings(FerrySettings settings) {
    Strategies.load(settings);
  }

  /** Starts a node and blocks until it is up. */
  public static FerryNode start(FerrySettings settings) {
    // Refused before anything is created or joined: a node with a bad strategy setting must not
    // join the cluster only to leave it again.
    checkSettings(settings);
    Path dataDir = settings.node().dataDir();
    FerryStore store = null;
    ActorSystem<Void> system = null;
    try {
      Files.createDirectories(dataDir);
      store = FerryStore.open(dataDir.resolve("store"), settings.store().mapSize());
      system = ActorSystem.create(Behaviors.empty(), SYSTEM_NAME, pekkoConfig(settings));
      joinCluster(system, settings);
      ModuleRegistry modules =
          new ModuleRegistry(store, settings.runtime(), dataDir.resolve("tmp"));
      Strategies strategies = Strategies.load(settings);
      NodeProcesses processes = new NodeProcesses(settings.node().name(), settings, store, modules);
      processes.recover();
      ClusterRuntime cluster = new ClusterRuntime(system, settings, processes, store, strategies);
      cluster.start();
      log.info("node {} started; data dir {}", settings.node().name(), dataDir.toAbsolutePath());
      if (!Failpoint.active().isEmpty()) {
        log.warn("test failpoint {} is set (FERRY_TEST_FAILPOINT)", Failpoint.active());
      }
      return new FerryNode(settings, store, processes, new ClusterProcessService(cluster), system);
    } catch (Exception e) {
      if (system != null) {
        system.terminate();
        awaitTermination(system);
      }
      if (store != null) {
        store.close();
      }
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new IllegalStateException("node could not start: " + e.getMessage(), e);
    }
  }

  static Config pekkoConfig(FerrySettings s) {
    List<String> seeds = new ArrayList<>();
    for (String seed : s.node().seeds()) {
      seeds.add("pekko://" + SYSTEM_NAME + "@" + seed);
    }
    Map<String, Object> m =
        Map.of(
            "pekko.remote.artery.canonical.hostname", s.node().host(),
            "pekko.remote.artery.canonical.port", s.node().port(),
            "pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(seeds),
            "pekko.cluster.roles", ConfigValueFactory.fromIterable(List.of("ferry")));
    return ConfigFactory.parseMap(m)
        .withFallback(operatorPekkoSettings(s.config()))
        .withFallback(ConfigFactory.parseResources("ferry-pekko.conf"))
        .withFallback(s.config())
        .resolve();
  }

  /**
   * The {@code pekko.*} values an operator set (in a config file or a system property), so that
   * they win over Ferry's own Pekko defaults (ferry-pekko.conf); the values that only come from a
   * library's reference.conf do not.
   */
  static Config operatorPekkoSettings(Config config) {
    Config out = ConfigFactory.empty();
    if (!config.hasPath("pekko")) {
      return out;
    }
    for (Map.Entry<String, com.typesafe.config.ConfigValue> e :
        config.getConfig("pekko").entrySet()) {
      String resource = e.getValue().origin().resource();
      if (resource != null && resource.endsWith("reference.conf")) {
        continue;
      }
      out = out.withValue("pekko." + e.getKey(), e.getValue());
    }
    return out;
  }

  private static void joinCluster(ActorSystem<Void> system, FerrySettings s)
      throws InterruptedException {
    Cluster cluster = Cluster.get(system);
    if (s.node().seeds().isEmpty()) {
      Address self = cluster.selfMember().address();
      cluster.manager().tell(Join.create(self));
    }
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (cluster.selfMember().status() != MemberStatus.up()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "node did not join the cluster within 60 s (seeds: " + s.node().seeds() + ")");
      }
      Thread.sleep(20);
    }
  }

  /** The node's service: requests for any process in the cluster, cluster views, events. */
  public ClusterService service() {
    return service;
  }

  public String name() {
    return settings.node().name();
  }

  public ActorSystem<?> system() {
    return system;
  }

  public FerrySettings settings() {
    return settings;
  }

  /** Checkpoints every running process durably, then stops the cluster member and the store. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      processes.close();
    } finally {
      // Leave the cluster gracefully (hand shards off, tell the others) rather than vanish.
      try {
        org.apache.pekko.actor.CoordinatedShutdown.get(system)
            .runAll(org.apache.pekko.actor.CoordinatedShutdown.clusterLeavingReason())
            .toCompletableFuture()
            .get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        log.warn("leaving the cluster did not complete: {}", e.toString());
        system.terminate();
      }
      awaitTermination(system);
      store.close();
      log.info("node {} stopped", name());
    }
  }

  private static void awaitTermination(ActorSystem<?> system) {
    try {
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      log.warn("actor system did not terminate cleanly: {}", e.toString());
    }
  }
}
