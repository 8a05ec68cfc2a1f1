package dev.ferry.statestore;

/**
 * Puts and deletes across tables that {@link FerryStore#write} commits together, in one LMDB write
 * transaction: all of them or none.
 *
 * <p>A batch is valid only inside the callback that received it. It is not durable until {@link
 * FerryStore#sync()}.
 */
public interface WriteBatch {
  /** Stores {@code value} under {@code key} in {@code table}. */
  void put(TableName table, String key, byte[] value);

  /**
   * Stores the bytes from {@code value}'s position to its limit under {@code key} (without moving
   * the buffer): large values go to the store without an intermediate array.
   */
  void put(TableName table, String key, java.nio.ByteBuffer value);

  /**
   * Publishes a value whose pieces were written ahead ({@link Table#stage}): from this batch's
   * commit on it is the value of its key.
   *
   * @throws IllegalStateException if a piece is missing, the value was discarded or published, or
   *     its key got a value meanwhile
   */
  void putStaged(StagedValue value);

  /** Removes {@code key} from {@code table}, if present. */
  void delete(TableName table, String key);
}
