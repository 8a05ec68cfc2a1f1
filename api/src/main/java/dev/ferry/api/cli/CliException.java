package dev.ferry.api.cli;

/**
 * A command failed; {@link #getMessage()} is printed as {@code ferry: <message>} and the command
 * exits with {@link #exitCode()}.
 */
public class CliException extends Exception {
  private static final long serialVersionUID = 1L;

  private final int exitCode;

  public CliException(int exitCode, String message) {
    super(message);
    this.exitCode = exitCode;
  }

  public CliException(int exitCode, String message, Throwable cause) {
    super(message, cause);
    this.exitCode = exitCode;
  }

  public int exitCode() {
    return exitCode;
  }
}
