package dev.ferry.api.cli;

/**
 * The exit codes of {@code ferry}, as documented in docs/CLI.md. {@code ferry wait} is the
 * exception: it exits with the program's own code; {@code ferry migrate --wait} exits {@link
 * #ERROR} when the migration was aborted or cancelled.
 */
public final class ExitCodes {
  /** Done. */
  public static final int OK = 0;

  /** The node failed the request (5xx), or another error (a local file cannot be read...). */
  public static final int ERROR = 1;

  /** Wrong command line (picocli's own code for usage errors), or an invalid configuration. */
  public static final int USAGE = 2;

  /** 404: no such process, module or file. */
  public static final int NOT_FOUND = 3;

  /**
   * 409: the process (or migration) is not in a state that allows the request: not running, already
   * migrating, already on that node, a migration that has already ended.
   */
  public static final int CONFLICT = 4;

  /** The node cannot be reached (nothing listens at the API URL). */
  public static final int UNREACHABLE = 5;

  /** 401: missing or wrong token. */
  public static final int UNAUTHORIZED = 6;

  /** 400 or 413: the node refused the request as malformed or too large. */
  public static final int BAD_REQUEST = 7;

  /** {@code ferry wait} on a process that was killed: 128 + SIGKILL, as a shell reports it. */
  public static final int KILLED = 137;

  private ExitCodes() {}

  /** The exit code for an HTTP error status. */
  public static int forHttpStatus(int status) {
    return switch (status) {
      case 400, 413 -> BAD_REQUEST;
      case 401 -> UNAUTHORIZED;
      case 404 -> NOT_FOUND;
      case 409 -> CONFLICT;
      default -> ERROR;
    };
  }
}
