package dev.ferry.statestore;

import java.util.Locale;

/**
 * The tables of a node's store. Each is a separate LMDB database with its own key space.
 *
 * <p>This enum fixes only the names: what keys and values mean in each table is up to the modules
 * that write them (modules by content hash, images and pages by process, and so on).
 */
public enum TableName {
  /** Uploaded wasm modules, by content hash. */
  MODULES,
  /** Process records. */
  PROCESSES,
  /** Process images (frozen state). */
  IMAGES,
  /** Migration records. */
  MIGRATIONS,
  /** Memory pages, by process and page number. */
  PAGES,
  /** Execution environment traces. */
  TRACES,
  /** Small node-level facts. */
  META;

  /** The LMDB database name, e.g. {@code "modules"}; never change it, it is in every store. */
  String dbiName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
