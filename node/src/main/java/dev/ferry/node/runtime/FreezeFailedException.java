package dev.ferry.node.runtime;

/** A freeze could not complete (the process exited first, was killed, or unwinding failed). */
public final class FreezeFailedException extends Exception {
  private static final long serialVersionUID = 1L;

  public FreezeFailedException(String message) {
    super(message);
  }

  public FreezeFailedException(String message, Throwable cause) {
    super(message, cause);
  }
}
