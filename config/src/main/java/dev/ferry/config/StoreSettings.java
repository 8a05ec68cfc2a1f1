package dev.ferry.config;

/**
 * The node's LMDB store ({@code ferry.store}).
 *
 * <p>The map size is an upper bound, not an allocation: the file is sparse and grows with use. This
 * record does not check that the disk has that much space; running out of disk before the map is
 * full is reported by the store when it happens.
 *
 * @param mapSize the most the store can ever hold, in bytes; at least 16 MiB
 */
public record StoreSettings(long mapSize) {

  /** Smallest accepted map size. */
  public static final long MIN_MAP_SIZE = 16L * 1024 * 1024;

  /** Validates the map size. */
  public StoreSettings {
    if (mapSize < MIN_MAP_SIZE) {
      throw new InvalidSettingsException(
          "ferry.store.map-size", "must be at least 16 MiB (16777216 bytes), got " + mapSize);
    }
  }
}
