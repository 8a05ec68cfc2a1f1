package dev.ferry.statestore;

/**
 * A write did not fit: the LMDB map is full ({@code MDB_MAP_FULL}, message starting with {@code
 * "store full: "}) or the disk is ({@code "disk full: "}).
 *
 * <p>Nothing of the failed write was stored and smaller writes may still succeed. The cure for a
 * full map is a larger {@code ferry.store.map-size} and a restart; for a full disk, free space.
 */
public class StoreFullException extends StoreException {
  private static final long serialVersionUID = 1L;

  /** A write that did not fit, described by {@code message}. */
  public StoreFullException(String message, Throwable cause) {
    super(message, cause);
  }
}
