package dev.ferry.node.service;

import java.util.Locale;

/** The wasm engine a process runs on: Chicory's interpreter or its runtime compiler. */
public enum Engine {
  INTERPRETER,
  COMPILED;

  /** The lower-case name used in the API, the CLI and configuration. */
  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * Parses "interpreter" or "compiled"; anything else is a {@link FerryException} (bad request).
   */
  public static Engine parse(String s) {
    for (Engine e : values()) {
      if (e.wireName().equals(s)) {
        return e;
      }
    }
    throw FerryException.badRequest(
        "unknown engine '" + s + "' (expected interpreter or compiled)");
  }
}
