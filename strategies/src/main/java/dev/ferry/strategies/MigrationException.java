package dev.ferry.strategies;

/** A phase of a migration failed; the coordinator aborts and the process runs on at the source. */
public class MigrationException extends Exception {
  private static final long serialVersionUID = 1L;

  public MigrationException(String message) {
    super(message);
  }

  public MigrationException(String message, Throwable cause) {
    super(message, cause);
  }
}
