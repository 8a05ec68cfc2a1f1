package dev.ferry.config;

import java.time.Duration;
import java.util.Collection;

/** Range checks shared by the settings records and the loader; each names the key at fault. */
final class Check {
  private Check() {}

  static long range(String key, long value, long min, long max) {
    if (value < min || value > max) {
      throw new InvalidSettingsException(
          key, "must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  static String notBlank(String key, String value) {
    if (value == null) {
      throw new InvalidSettingsException(key, "must be set");
    }
    if (value.isBlank()) {
      throw new InvalidSettingsException(key, "must not be empty");
    }
    return value;
  }

  static <T> T notNull(String key, T value) {
    if (value == null) {
      throw new InvalidSettingsException(key, "must be set");
    }
    return value;
  }

  static Duration positive(String key, Duration value) {
    notNull(key, value);
    if (value.isZero() || value.isNegative()) {
      throw new InvalidSettingsException(key, "must be greater than 0, got " + format(value));
    }
    return value;
  }

  static String oneOf(String key, String value, Collection<String> allowed) {
    notNull(key, value);
    if (!allowed.contains(value)) {
      throw new InvalidSettingsException(
          key, "must be one of " + String.join(", ", allowed) + ", got \"" + value + "\"");
    }
    return value;
  }

  /** Checks one "host:port" entry of a list setting; IPv6 hosts are written "[::1]:7401". */
  static String hostPort(String key, String entry) {
    notNull(key, entry);
    int colon = entry.lastIndexOf(':');
    String host = colon < 0 ? "" : entry.substring(0, colon);
    String port = colon < 0 ? "" : entry.substring(colon + 1);
    boolean bracketed = host.length() > 2 && host.startsWith("[") && host.endsWith("]");
    boolean hostOk =
        !host.isEmpty()
            && host.chars().noneMatch(Character::isWhitespace)
            && (bracketed || host.indexOf(':') < 0 && host.indexOf('[') < 0);
    if (!hostOk || port.isEmpty() || !port.chars().allMatch(c -> c >= '0' && c <= '9')) {
      throw new InvalidSettingsException(
          key, "\"" + entry + "\" is not host:port (e.g. \"10.0.0.2:7401\" or \"[::1]:7401\")");
    }
    long number = port.length() > 6 ? Long.MAX_VALUE : Long.parseLong(port);
    if (number < 1 || number > 65535) {
      throw new InvalidSettingsException(
          key, "\"" + entry + "\" has port " + port + ", must be between 1 and 65535");
    }
    return entry;
  }

  /** "10s", "50ms", "1500us": the shortest exact rendering, as an operator would write it. */
  static String format(Duration d) {
    long nanos;
    try {
      nanos = d.toNanos();
    } catch (ArithmeticException e) {
      return d.getSeconds() + "s";
    }
    if (nanos % 1_000_000_000L == 0) {
      return nanos / 1_000_000_000L + "s";
    }
    if (nanos % 1_000_000L == 0) {
      return nanos / 1_000_000L + "ms";
    }
    if (nanos % 1_000L == 0) {
      return nanos / 1_000L + "us";
    }
    return nanos + "ns";
  }
}
