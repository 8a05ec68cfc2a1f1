package dev.ferry.api.daemon;

/** The daemon could not start: the node failed to come up, or the HTTP address cannot be bound. */
public class DaemonStartException extends Exception {
  private static final long serialVersionUID = 1L;

  public DaemonStartException(String message, Throwable cause) {
    super(message, cause);
  }
}
