package dev.ferry.statestore;

/**
 * A large value written ahead, piece by piece, each piece in its own short transaction, and made
 * the value of its key later, in one {@link FerryStore#write} batch ({@link WriteBatch#putStaged}):
 * until then readers see no value under the key. So a value that arrives over time (a migrating
 * process's image, chunk by chunk) is copied into the store while it arrives, and the batch that
 * publishes it writes only a small head.
 *
 * <p>Pieces are {@link #pieceBytes()} long, the last one shorter; they may be written in any order,
 * each once, by one thread at a time. Pieces written ahead of a batch that never comes are removed
 * by {@link #discard}, or, if the node stopped first, when the store is next opened. Like every
 * write, pieces are durable only after {@link FerryStore#sync()}; syncing while pieces are written
 * moves that work off the batch's sync.
 */
public interface StagedValue {
  /** The table and key the value is for. */
  TableName table();

  String key();

  /** The value's length in bytes. */
  long length();

  /** How many pieces the value has. */
  int pieces();

  /** The length of every piece but the last. */
  int pieceBytes();

  /** The length of piece {@code index}. */
  default int pieceLength(int index) {
    return (int) Math.min(pieceBytes(), length() - (long) index * pieceBytes());
  }

  /**
   * Writes piece {@code index} from {@code src} at {@code offset} ({@link #pieceLength} bytes), in
   * its own transaction.
   *
   * @throws IllegalStateException if the piece was written already, or the value was published or
   *     discarded
   */
  void writePiece(int index, byte[] src, int offset);

  /** Whether every piece has been written. */
  boolean complete();

  /** Removes the pieces written so far, unless the value was published. Harmless twice. */
  void discard();
}
