package dev.ferry.api.http;

import dev.ferry.node.service.MigrationInfo;
import java.util.List;

/**
 * The states of a migration as the API writes them ({@link MigrationInfo#state()}), and which of
 * them are final. A migration goes pending, freezing, transferring, restoring, then ends committed
 * (the process runs at the destination), aborted or cancelled (it runs on at its source). A
 * destination that restarted holding the process before it recorded that it runs there reports the
 * migration in_doubt until its source says whether it committed (or an operator commits it by hand,
 * {@code POST /v1/migrations/{id}/commit}).
 */
public final class MigrationStates {
  /** Every state, in the order a migration passes through them. */
  public static final List<String> ALL =
      List.of(
          "pending",
          "freezing",
          "transferring",
          "restoring",
          "committed",
          "aborted",
          "cancelled",
          "in_doubt");

  /** The states a migration ends in; it never leaves them. */
  public static final List<String> ENDED = List.of("committed", "aborted", "cancelled");

  private MigrationStates() {}

  /**
   * True once the migration has committed, aborted or been cancelled and its record is complete. A
   * node may show the final state a moment before it has filled in {@code finishedAt} and {@code
   * totalMicros}; such a record is not yet the final one.
   */
  public static boolean isEnded(MigrationInfo m) {
    return ENDED.contains(m.state()) && m.finishedAt() != null;
  }
}
