package dev.ferry.node.service;

/**
 * A request Ferry refused or could not carry out. The {@link Kind} maps to an HTTP status and a CLI
 * exit code; the message is meant for the operator as is.
 */
public class FerryException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** How a client should treat the failure. */
  public enum Kind {
    BAD_REQUEST(400),
    UNAUTHORIZED(401),
    NOT_FOUND(404),
    CONFLICT(409),
    PAYLOAD_TOO_LARGE(413),
    TIMEOUT(504),
    UNAVAILABLE(503),
    INTERNAL(500);

    private final int httpStatus;

    Kind(int httpStatus) {
      this.httpStatus = httpStatus;
    }

    public int httpStatus() {
      return httpStatus;
    }
  }

  private final Kind kind;

  public FerryException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public FerryException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static FerryException badRequest(String message) {
    return new FerryException(Kind.BAD_REQUEST, message);
  }

  public static FerryException notFound(String message) {
    return new FerryException(Kind.NOT_FOUND, message);
  }

  public static FerryException conflict(String message) {
    return new FerryException(Kind.CONFLICT, message);
  }

  /**
   * The process exists, but on a node that is not in the cluster now (the cluster removed it, and
   * it has not been started again): unavailable, and not for a moment only — a client does not ask
   * again at once.
   */
  public static final class NodeGone extends FerryException {
    private static final long serialVersionUID = 1L;

    public NodeGone(String message) {
      super(Kind.UNAVAILABLE, message);
    }
  }

  /**
   * Unwraps CompletionException/ExecutionException chains to the FerryException, if any; else a
   * store's failure keeps its own message (not prefixed with its class), anything else is internal.
   */
  public static FerryException of(Throwable t) {
    Throwable c = t;
    while (c != null) {
      if (c instanceof FerryException fe) {
        return fe;
      }
      c = c.getCause();
    }
    for (c = t; c != null; c = c.getCause()) {
      if (c instanceof dev.ferry.statestore.StoreException se && se.getMessage() != null) {
        // written for the operator ("store full: … increase ferry.store.map-size"): as it is
        return new FerryException(Kind.INTERNAL, se.getMessage(), t);
      }
    }
    return new FerryException(Kind.INTERNAL, String.valueOf(t), t);
  }
}
