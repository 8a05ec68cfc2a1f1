package dev.ferry.api.http;

/**
 * The body of {@code POST /v1/processes/{pid}/migrations}, read by {@link
 * RequestBodies#migrationRequest(byte[])}.
 *
 * @param to the destination node's name, or null to let the strategy choose
 * @param strategy the strategy's name, or null for the node's default (data-segment)
 * @param await whether the answer waits for the migration to end ({@code "wait"} on the wire)
 */
public record MigrationRequest(String to, String strategy, boolean await) {
  /** An empty body: any destination, the default strategy, no waiting. */
  public static final MigrationRequest DEFAULTS = new MigrationRequest(null, null, false);
}
