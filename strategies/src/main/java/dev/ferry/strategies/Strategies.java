package dev.ferry.strategies;

import dev.ferry.config.FerrySettings;
import dev.ferry.config.InvalidSettingsException;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The strategies a node offers, built from {@code ferry.strategies.*} at start-up: every configured
 * section is validated, and a section for a strategy Ferry does not have is an error naming the
 * key.
 */
public final class Strategies {
  private final Map<String, MigrationStrategy> byName = new TreeMap<>();

  private Strategies() {}

  public static Strategies load(FerrySettings settings) {
    Strategies s = new Strategies();
    Set<String> known =
        new java.util.TreeSet<>(
            Set.of(
                DataSegmentStrategy.NAME,
                GfvmStrategy.NAME,
                PreCopyStrategy.NAME,
                PostCopyStrategy.NAME,
                FlushingStrategy.NAME));
    for (String name : settings.strategyNames()) {
      if (!known.contains(name)) {
        throw new InvalidSettingsException(
            "ferry.strategies." + name, "unknown strategy; available: " + known);
      }
    }
    s.byName.put(
        DataSegmentStrategy.NAME,
        new DataSegmentStrategy(
            DataSegmentSettings.from(settings.strategy(DataSegmentStrategy.NAME))));
    s.byName.put(
        GfvmStrategy.NAME,
        new GfvmStrategy(GfvmSettings.from(settings.strategy(GfvmStrategy.NAME))));
    s.byName.put(
        PreCopyStrategy.NAME, PreCopyStrategy.from(settings.strategy(PreCopyStrategy.NAME)));
    s.byName.put(
        PostCopyStrategy.NAME, PostCopyStrategy.from(settings.strategy(PostCopyStrategy.NAME)));
    s.byName.put(
        FlushingStrategy.NAME, FlushingStrategy.from(settings.strategy(FlushingStrategy.NAME)));
    return s;
  }

  public Optional<MigrationStrategy> get(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  public Set<String> names() {
    return byName.keySet();
  }
}
