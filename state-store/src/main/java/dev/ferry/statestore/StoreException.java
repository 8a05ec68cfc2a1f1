package dev.ferry.statestore;

/**
 * A store operation failed: the operation wrote nothing and the store stays usable unless the
 * message says it is closed or corrupt.
 *
 * <p>The message says what was being done and, where the operator can act, what to change.
 */
public class StoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** A failure described by {@code message}. */
  public StoreException(String message) {
    super(message);
  }

  /** A failure described by {@code message}, caused by {@code cause}. */
  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
