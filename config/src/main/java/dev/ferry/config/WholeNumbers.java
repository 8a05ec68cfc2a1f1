package dev.ferry.config;

import com.typesafe.config.ConfigValue;
import java.util.OptionalLong;

/**
 * What counts as a whole number in Ferry's settings, wherever they are read: an integer, or a
 * string holding one (HOCON's quoted {@code "12"}). A fraction is not one: Typesafe Config's {@code
 * getInt} would truncate {@code 8.9} to 8.
 */
public final class WholeNumbers {
  private WholeNumbers() {}

  /** The value as a whole number, or empty if it is not one. */
  public static OptionalLong of(ConfigValue value) {
    Object raw = value.unwrapped();
    if (raw instanceof Integer || raw instanceof Long) {
      return OptionalLong.of(((Number) raw).longValue());
    }
    if (raw instanceof String text) {
      try {
        return OptionalLong.of(Long.parseLong(text.trim()));
      } catch (NumberFormatException e) {
        return OptionalLong.empty();
      }
    }
    return OptionalLong.empty();
  }
}
