package dev.ferry.api.daemon;

import dev.ferry.api.http.FerryHttpServer;
import dev.ferry.api.http.FerryRoutes;
import dev.ferry.config.FerrySettings;
import dev.ferry.config.HttpSettings;
import dev.ferry.node.FerryNode;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node with its HTTP API bound. {@link #start} returns once both are up; {@link #stop}
 * (idempotent, safe from a shutdown hook) unbinds HTTP, lets open requests finish for a few
 * seconds, then closes the node, which checkpoints its processes durably.
 */
public final class FerryDaemon {
  private static final Logger log = LoggerFactory.getLogger(FerryDaemon.class);
  private static final Duration BIND_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration HTTP_DRAIN = Duration.ofSeconds(3);

  private final FerryNode node;
  private final ServerBinding binding;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private boolean stopping;

  private FerryDaemon(FerryNode node, ServerBinding binding) {
    this.node = node;
    this.binding = binding;
  }

  /** Starts the node, then binds its API; on a bind failure the node is closed again. */
  public static FerryDaemon start(FerrySettings settings) throws DaemonStartException {
    FerryNode node;
    try {
      node = FerryNode.start(settings);
    } catch (RuntimeException e) {
      throw new DaemonStartException("the node failed to start: " + messageOf(e), e);
    }
    HttpSettings http = settings.http();
    ServerBinding binding;
    try {
      binding =
          FerryHttpServer.bind(
                  node.system(),
                  new FerryRoutes(node.service(), node.name(), http),
                  http.host(),
                  http.port(),
                  http.maxUploadBytes())
              .toCompletableFuture()
              .get(BIND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException | InterruptedException | RuntimeException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      closeQuietly(node);
      throw new DaemonStartException(
          "cannot serve the HTTP API on "
              + http.host()
              + ":"
              + http.port()
              + ": "
              + messageOf(e)
              + " (is another ferry daemon running there? choose another port with --http-port"
              + " or ferry.http.port)",
          e);
    }
    InetSocketAddress bound = binding.localAddress();
    log.info(
        "Ferry node {} up: cluster {}:{}, HTTP http://{}:{}",
        node.name(),
        settings.node().host(),
        settings.node().port(),
        http.host(),
        bound.getPort());
    FerryDaemon daemon = new FerryDaemon(node, binding);
    // Removed from the cluster, the node has closed itself (its processes checkpointed): the
    // daemon stops too, and says why (ferry daemon then exits 1, for a service manager to restart).
    node.removedFromCluster()
        .thenRun(() -> new Thread(daemon::stop, "ferry-daemon-removed").start());
    return daemon;
  }

  /**
   * Why the daemon stopped on its own: a sentence saying the cluster removed its node; null if it
   * was stopped by {@link #stop} (or still runs).
   */
  public String removedReason() {
    return node.removedFromCluster().toCompletableFuture().getNow(null);
  }

  /** The node this daemon serves. */
  public FerryNode node() {
    return node;
  }

  /** The address the API listens on. */
  public InetSocketAddress httpAddress() {
    return binding.localAddress();
  }

  /** Blocks until {@link #stop} has finished. */
  public void awaitStopped() throws InterruptedException {
    stopped.await();
  }

  /**
   * Unbinds HTTP, then closes the node. Returns true if this call did the stopping, false if the
   * daemon was already stopped or stopping (it then waits for that stop to finish).
   */
  public boolean stop() {
    synchronized (this) {
      if (stopping) {
        awaitQuietly();
        return false;
      }
      stopping = true;
    }
    try {
      // (removed from the cluster: the actor system, and the HTTP server with it, has stopped)
      boolean serverStopped = node.system().getWhenTerminated().toCompletableFuture().isDone();
      log.info("Ferry node {} stopping: closing the HTTP API", node.name());
      try {
        if (!serverStopped) {
          binding
              .terminate(HTTP_DRAIN)
              .toCompletableFuture()
              .get(HTTP_DRAIN.toSeconds() + 5, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (Exception | LinkageError e) {
        // Whatever went wrong with HTTP, the node must still be closed (its processes saved).
        log.warn("HTTP API did not close cleanly: {}", messageOf(e));
      }
      log.info("Ferry node {} stopping: checkpointing processes", node.name());
      closeQuietly(node);
      log.info("Ferry node {} stopped", node.name());
    } finally {
      stopped.countDown();
    }
    return true;
  }

  private void awaitQuietly() {
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void closeQuietly(FerryNode node) {
    try {
      node.close();
    } catch (RuntimeException e) {
      log.error("closing the node failed: {}", messageOf(e), e);
    }
  }

  static String messageOf(Throwable t) {
    Throwable c = t;
    while ((c instanceof ExecutionException
            || c instanceof java.util.concurrent.CompletionException)
        && c.getCause() != null) {
      c = c.getCause();
    }
    String m = c.getMessage();
    return m == null || m.isBlank() ? c.getClass().getSimpleName() : m;
  }
}
