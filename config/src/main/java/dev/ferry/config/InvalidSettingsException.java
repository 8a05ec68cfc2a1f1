package dev.ferry.config;

import java.util.Objects;

/**
 * A setting has a wrong type, is out of range, or is not a setting Ferry knows.
 *
 * <p>The message always starts with the full key, then a colon, then the problem and the value
 * found, e.g. {@code "ferry.node.port: must be between 1 and 65535, got 0"}, so it can be shown to
 * an operator as is. The one exception is a configuration file that cannot be parsed at all: no key
 * is known then, {@link #key()} is empty and the message starts with the file and line instead.
 * Only the first problem found is reported.
 */
public class InvalidSettingsException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String key;

  /** A problem with the setting {@code key}; the message becomes {@code key + ": " + problem}. */
  public InvalidSettingsException(String key, String problem) {
    this(key, problem, null);
  }

  /** As {@link #InvalidSettingsException(String, String)}, keeping the original cause. */
  public InvalidSettingsException(String key, String problem, Throwable cause) {
    super(
        Objects.requireNonNull(key, "key") + ": " + Objects.requireNonNull(problem, "problem"),
        cause);
    this.key = key;
  }

  private InvalidSettingsException(String message, Throwable cause, boolean unused) {
    super(message, cause);
    this.key = "";
  }

  /** A configuration that could not be read at all (syntax error, unreadable file). */
  static InvalidSettingsException unreadable(String message, Throwable cause) {
    return new InvalidSettingsException("cannot read configuration: " + message, cause, true);
  }

  /** The full key at fault, e.g. {@code "ferry.node.port"}; empty if the file was unreadable. */
  public String key() {
    return key;
  }
}
