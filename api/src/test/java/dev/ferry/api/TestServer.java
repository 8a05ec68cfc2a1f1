package dev.ferry.api;

import dev.ferry.api.http.FerryHttpServer;
import dev.ferry.api.http.FerryRoutes;
import dev.ferry.config.HttpSettings;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.ServerBinding;

/**
 * The API's routes over a {@link FakeClusterService}, served on an ephemeral loopback port, and an
 * HTTP client for it. One per test class: starting an actor system takes a moment.
 */
public final class TestServer implements AutoCloseable {
  /** The upload limit of test servers: small, so the 413 path is cheap to reach. */
  public static final long MAX_UPLOAD = 64 * 1024;

  public final FakeClusterService service = new FakeClusterService();
  public final FerryRoutes routes;
  public final HttpClient client =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private final ActorSystem<Void> system;
  private final ServerBinding binding;
  private final String token;

  public TestServer(String token, Duration requestTimeout) throws Exception {
    this(token, requestTimeout, FerryRoutes.EVENT_HEARTBEAT);
  }

  /** A server whose event stream sends a heartbeat after {@code eventHeartbeat} of quiet. */
  public TestServer(String token, Duration requestTimeout, Duration eventHeartbeat)
      throws Exception {
    this.token = token;
    this.system = ActorSystem.create(Behaviors.empty(), "api-test");
    this.routes =
        new FerryRoutes(
            service,
            FakeClusterService.SELF,
            new HttpSettings("127.0.0.1", 7400, token, MAX_UPLOAD),
            eventHeartbeat);
    this.binding =
        FerryHttpServer.bind(system, routes, "127.0.0.1", 0, MAX_UPLOAD, requestTimeout)
            .toCompletableFuture()
            .get(30, TimeUnit.SECONDS);
  }

  public TestServer() throws Exception {
    this("", FerryHttpServer.REQUEST_TIMEOUT);
  }

  public String url() {
    return "http://127.0.0.1:" + binding.localAddress().getPort();
  }

  public URI uri(String pathAndQuery) {
    return URI.create(url() + pathAndQuery);
  }

  /** A request builder for this server, carrying the token if there is one. */
  public HttpRequest.Builder request(String pathAndQuery) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(uri(pathAndQuery)).timeout(Duration.ofSeconds(60));
    if (!token.isEmpty()) {
      b.header("Authorization", "Bearer " + token);
    }
    return b;
  }

  public HttpResponse<byte[]> send(HttpRequest req) throws Exception {
    return client.send(req, HttpResponse.BodyHandlers.ofByteArray());
  }

  public HttpResponse<String> get(String pathAndQuery) throws Exception {
    return client.send(request(pathAndQuery).GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  public HttpResponse<String> post(String pathAndQuery, String json) throws Exception {
    HttpRequest.BodyPublisher body =
        json == null
            ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(json);
    return client.send(
        request(pathAndQuery).header("Content-Type", "application/json").POST(body).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Override
  public void close() {
    try {
      binding.unbind().toCompletableFuture().get(10, TimeUnit.SECONDS);
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new IllegalStateException("test server did not stop", e);
    } finally {
      service.close();
    }
  }
}
