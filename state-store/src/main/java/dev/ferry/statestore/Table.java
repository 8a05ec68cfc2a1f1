package dev.ferry.statestore;

import java.util.List;
import java.util.Optional;

/**
 * One table of a {@link FerryStore}: string keys, byte-array values of any size up to 2 GiB.
 *
 * <p>Keys are non-empty strings of at most {@value #MAX_KEY_BYTES} bytes in UTF-8; they sort by
 * their UTF-8 bytes (Unicode code point order, which equals {@link String#compareTo} for keys
 * without characters outside the Basic Multilingual Plane). Each method is atomic and runs in its
 * own transaction, unless called inside {@link FerryStore#write} on the same thread, where it joins
 * the batch's transaction. Values are copied in and out: the caller may reuse its arrays.
 *
 * <p>Writes are durable only after {@link FerryStore#sync()}. There is no compare-and-set; callers
 * that need read-modify-write atomicity do it inside {@link FerryStore#write}.
 */
public interface Table {
  /** The longest key, in UTF-8 bytes. */
  int MAX_KEY_BYTES = 500;

  /** Which table this is. */
  TableName name();

  /** The value stored under {@code key}, or empty. */
  Optional<byte[]> get(String key);

  /** Stores {@code value} under {@code key}, replacing any previous value. */
  void put(String key, byte[] value);

  /** Removes {@code key}; whether it was there. */
  boolean delete(String key);

  /** Whether a value is stored under {@code key}. */
  boolean contains(String key);

  /** All keys, sorted. */
  List<String> keys();

  /** The keys that start with {@code prefix}, sorted. */
  List<String> keys(String prefix);

  /** The size in bytes of the value under {@code key}, without reading it; -1 if absent. */
  long valueSize(String key);

  /**
   * Starts writing a value of {@code length} bytes for {@code key} ahead of the batch that will
   * publish it ({@link StagedValue}).
   *
   * @throws IllegalStateException if {@code key} has a value
   */
  StagedValue stage(String key, long length);
}
