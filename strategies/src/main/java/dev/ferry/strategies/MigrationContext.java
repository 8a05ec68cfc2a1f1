package dev.ferry.strategies;

import com.typesafe.config.Config;

/** One migration, as a strategy sees it. Implemented by the node's coordinator. */
public interface MigrationContext {
  String migrationId();

  String pid();

  /** The node the process moves from (this node). */
  String sourceNode();

  SourceProcess source();

  Destination destination();

  /** This strategy's settings ({@code ferry.strategies.<name>}), already validated. */
  Config settings();

  /** Records the bytes a phase moved. */
  void bytesMoved(long bytes);

  /** Records what a paging strategy moved (pages dirty, moved before/during/after the freeze). */
  void pages(PageReport report);

  /**
   * Records a problem that did not abort the migration (it had committed), in its record's error,
   * and logs it.
   */
  void problem(String message);

  /** The last {@link #pages} report, or null. */
  PageReport pageReport();

  /** True once the operator cancelled the migration; strategies check it between steps. */
  boolean cancelled();
}
