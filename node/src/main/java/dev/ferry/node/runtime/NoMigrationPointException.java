package dev.ferry.node.runtime;

/**
 * A freeze was requested but the process made no WASI call (and passed no loop point) within the
 * freeze timeout. The process was not disturbed and keeps running.
 */
public final class NoMigrationPointException extends Exception {
  private static final long serialVersionUID = 1L;

  public NoMigrationPointException(String message) {
    super(message);
  }
}
