package dev.ferry.api.http;

/**
 * One operation of the API: an HTTP method and a path template as written in {@code
 * docs/openapi.yaml} ({@code "/v1/processes/{pid}/logs"}). {@link FerryRoutes#endpoints()} lists
 * every one the route tree serves; a test checks that list against the OpenAPI document.
 */
public record Endpoint(String method, String path) {
  @Override
  public String toString() {
    return method + " " + path;
  }
}
