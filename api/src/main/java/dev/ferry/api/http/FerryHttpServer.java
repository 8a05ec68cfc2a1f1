package dev.ferry.api.http;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.ClassicActorSystemProvider;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.settings.ServerSettings;

/**
 * Binds {@link FerryRoutes} on a host and port with the server settings the API relies on:
 *
 * <ul>
 *   <li>{@code idle-timeout = infinite}: a followed log of a quiet program carries no bytes for as
 *       long as the program is quiet, and must not be cut;
 *   <li>{@code request-timeout = 2 min} for ordinary requests (waiting routes switch it off and
 *       bound their own waiting); a request that runs out gets a JSON 504;
 *   <li>{@code parsing.max-content-length} = the upload limit, enforced again per route;
 *   <li>malformed requests answered in JSON ({@link JsonParsingErrorHandler}).
 * </ul>
 *
 * Everything else comes from the actor system's {@code pekko.http.server} configuration.
 */
public final class FerryHttpServer {
  private FerryHttpServer() {}

  /** How long an ordinary (non-waiting) request may take before the client gets a 504. */
  public static final Duration REQUEST_TIMEOUT = Duration.ofMinutes(2);

  /** Binds the routes; the stage fails if the address cannot be bound (port in use...). */
  public static CompletionStage<ServerBinding> bind(
      ClassicActorSystemProvider system,
      FerryRoutes routes,
      String host,
      int port,
      long maxUploadBytes) {
    return bind(system, routes, host, port, maxUploadBytes, REQUEST_TIMEOUT);
  }

  /**
   * As {@link #bind(ClassicActorSystemProvider, FerryRoutes, String, int, long)}, with another
   * request timeout.
   */
  public static CompletionStage<ServerBinding> bind(
      ClassicActorSystemProvider system,
      FerryRoutes routes,
      String host,
      int port,
      long maxUploadBytes,
      Duration requestTimeout) {
    Config systemConfig = system.classicSystem().settings().config();
    return Http.get(system)
        .newServerAt(host, port)
        .withSettings(serverSettings(systemConfig, maxUploadBytes, requestTimeout))
        .bind(routes.createRoute());
  }

  /** The server settings described above, over {@code systemConfig}. */
  public static ServerSettings serverSettings(
      Config systemConfig, long maxUploadBytes, Duration requestTimeout) {
    Config overrides =
        ConfigFactory.parseString(
            "pekko.http.server {\n"
                + "  idle-timeout = infinite\n"
                + "  request-timeout = "
                + requestTimeout.toMillis()
                + "ms\n"
                + "  parsing.max-content-length = "
                + maxUploadBytes
                + "\n"
                + "  parsing.error-handler = \""
                + JsonParsingErrorHandler.class.getName()
                + "\"\n"
                + "}\n");
    return ServerSettings.create(overrides.withFallback(systemConfig));
  }
}
