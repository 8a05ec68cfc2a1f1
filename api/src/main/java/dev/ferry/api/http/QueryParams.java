package dev.ferry.api.http;

import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Strict parsing of query parameters: a value that is present but malformed is a bad request that
 * names the parameter, never silently the default ({@code ?follow=yes} must not mean "no").
 */
final class QueryParams {
  private static final Pattern DURATION = Pattern.compile("(\\d{1,9})(ms|s|m|h)?");

  private QueryParams() {}

  static boolean bool(String name, Optional<String> value, boolean dflt) {
    if (value.isEmpty() || value.get().isEmpty()) {
      return dflt;
    }
    switch (value.get().toLowerCase(Locale.ROOT)) {
      case "true":
        return true;
      case "false":
        return false;
      default:
        throw bad(name, value.get(), "true or false");
    }
  }

  static long nonNegativeLong(String name, Optional<String> value, long dflt) {
    if (value.isEmpty()) {
      return dflt;
    }
    try {
      long v = Long.parseLong(value.get());
      if (v >= 0) {
        return v;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw bad(name, value.get(), "a non-negative integer");
  }

  /** A positive int; values above {@code max} are lowered to it (it is an upper bound anyway). */
  static int positiveInt(String name, Optional<String> value, int dflt, int max) {
    if (value.isEmpty()) {
      return dflt;
    }
    try {
      long v = Long.parseLong(value.get());
      if (v > 0) {
        return (int) Math.min(v, max);
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw bad(name, value.get(), "a positive integer");
  }

  /** "30s", "500ms", "2m", "1h"; a bare number is seconds. At most {@code max}. */
  static Duration duration(String name, Optional<String> value, Duration dflt, Duration max) {
    if (value.isEmpty()) {
      return dflt;
    }
    Matcher m = DURATION.matcher(value.get().trim());
    if (!m.matches()) {
      throw bad(name, value.get(), "a duration such as 30s, 500ms or 2m");
    }
    long n = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "s" : m.group(2);
    Duration d =
        switch (unit) {
          case "ms" -> Duration.ofMillis(n);
          case "m" -> Duration.ofMinutes(n);
          case "h" -> Duration.ofHours(n);
          default -> Duration.ofSeconds(n);
        };
    if (d.compareTo(max) > 0) {
      throw FerryException.badRequest(
          "query parameter '"
              + name
              + "' is "
              + value.get()
              + ", more than the most allowed, "
              + max.toMinutes()
              + "m");
    }
    return d;
  }

  static LogStream stream(Optional<String> value) {
    if (value.isEmpty()) {
      return LogStream.STDOUT;
    }
    for (LogStream s : LogStream.values()) {
      if (s.name().equalsIgnoreCase(value.get())) {
        return s;
      }
    }
    throw bad("stream", value.get(), "stdout or stderr");
  }

  static String required(String name, Optional<String> value) {
    if (value.isEmpty() || value.get().isEmpty()) {
      throw FerryException.badRequest("query parameter '" + name + "' is required");
    }
    return value.get();
  }

  private static FerryException bad(String name, String value, String expected) {
    return FerryException.badRequest(
        "query parameter '" + name + "' must be " + expected + ", got '" + value + "'");
  }
}
