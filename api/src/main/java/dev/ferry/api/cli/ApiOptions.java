package dev.ferry.api.cli;

import java.util.Map;
import picocli.CommandLine.Option;

/**
 * {@code --api} and {@code --token}, on every command that talks to a node. Unset, they fall back
 * to the environment ({@code FERRY_API}, {@code FERRY_TOKEN}), then to the local default API.
 */
public final class ApiOptions {
  /** The API a node serves by default ({@code ferry.http.host}:{@code ferry.http.port}). */
  public static final String DEFAULT_API = "http://127.0.0.1:7400";

  public static final String API_ENV = "FERRY_API";
  public static final String TOKEN_ENV = "FERRY_TOKEN";

  @Option(
      names = "--api",
      paramLabel = "URL",
      description = "The node's HTTP API (default: $FERRY_API, else " + DEFAULT_API + ").")
  String api;

  @Option(
      names = "--token",
      paramLabel = "TOKEN",
      description = "Bearer token for a node that requires one (default: $FERRY_TOKEN).")
  String token;

  /** The client these options (and the environment) describe. */
  ApiClient client(Map<String, String> env) throws CliException {
    String url = api != null ? api : env.getOrDefault(API_ENV, "");
    if (url.isBlank()) {
      url = DEFAULT_API;
    }
    String t = token != null ? token : env.get(TOKEN_ENV);
    return new ApiClient(url.strip(), t == null ? null : t.strip());
  }
}
