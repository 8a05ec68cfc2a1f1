package dev.ferry.strategies;

import com.typesafe.config.Config;

/** One migration, as a strategy sees it. Implemented by the node's coordinator. */
public interface MigrationContext {
  String migrationId();

  String pid();

  SourceProcess source();

  Destination destination();

  /** This strategy's settings ({@code ferry.strategies.<name>}), already validated. */
  Config settings();

  /** Records the bytes a phase moved. */
  void bytesMoved(long bytes);

  /** True once the operator cancelled the migration; strategies check it between steps. */
  boolean cancelled();
}
