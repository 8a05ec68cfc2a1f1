package dev.ferry.config;

/**
 * The HTTP API's address, its bearer token and its upload limit ({@code ferry.http}).
 *
 * <p>The constructor validates ranges. It does not refuse a non-loopback {@code host} without a
 * token: exposing an unauthenticated API is the operator's decision (the docs warn against it).
 * {@link #toString()} hides the token so settings can be logged.
 *
 * @param host address the API binds
 * @param port API port, 1..65535 (0, "any free port", is not accepted)
 * @param token the bearer token every request must carry; {@code ""} means no authentication
 * @param maxUploadBytes largest request body accepted, at least 1
 */
public record HttpSettings(String host, int port, String token, long maxUploadBytes) {

  /** Validates every field; see the class comment. */
  public HttpSettings {
    host = Check.notBlank("ferry.http.host", host);
    Check.range("ferry.http.port", port, 1, 65535);
    Check.notNull("ferry.http.token", token);
    if (token.chars().anyMatch(c -> Character.isWhitespace(c) || Character.isISOControl(c))) {
      throw new InvalidSettingsException(
          "ferry.http.token", "must not contain spaces or control characters");
    }
    Check.range("ferry.http.max-upload-bytes", maxUploadBytes, 1, Long.MAX_VALUE);
  }

  /** Whether requests must carry {@code Authorization: Bearer <token>}. */
  public boolean requiresToken() {
    return !token.isEmpty();
  }

  @Override
  public String toString() {
    return "HttpSettings[host="
        + host
        + ", port="
        + port
        + ", token="
        + (token.isEmpty() ? "(none)" : "(set)")
        + ", maxUploadBytes="
        + maxUploadBytes
        + "]";
  }
}
