package dev.ferry.node.process;

import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.StagedValue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * An incoming process's image, copied into the store while the bundle carrying it arrives, instead
 * of all at once after the last chunk: the receiver fills {@code data} chunk by chunk and says how
 * far ({@link #arrived}); this writes each whole piece of the image that has arrived (a {@link
 * StagedValue} of the images table, invisible until published), on its own thread, and syncs the
 * store every {@link #SYNC_BYTES} so that the sync after the last chunk has little left to write.
 * {@link NodeProcesses#receiveIncoming} publishes it in the transaction that stores the rest of the
 * process. The image is the bundle's first field (as {@link NodeProcesses#serialize} writes it):
 * its bytes lie in {@code data} from {@code start}.
 *
 * <p>Only the bundle as a whole is verified (checksum) and parsed after the last chunk; until then
 * nothing written here is visible, and a bundle that does not arrive, or is refused, leaves
 * nothing: {@link #discard}, or the store's next open, removes the pieces.
 */
public final class ImageSpool {
  /** While an image is spooled, the store is synced after every this many bytes of it. */
  static final int SYNC_BYTES = 8 << 20;

  private final FerryStore store;
  private final StagedValue staged;
  private final byte[] data;
  private final int start;
  private final CompletableFuture<Void> written = new CompletableFuture<>();
  private int arrived; // bytes of data filled so far; guarded by this
  private boolean stopped; // guarded by this

  ImageSpool(FerryStore store, StagedValue staged, byte[] data, int start, Executor thread) {
    this.store = store;
    this.staged = staged;
    this.data = data;
    this.start = start;
    thread.execute(this::run);
  }

  /** The receiver has filled {@code data} up to (not including) {@code upTo}. */
  public synchronized void arrived(int upTo) {
    arrived = upTo;
    notifyAll();
  }

  StagedValue staged() {
    return staged;
  }

  /**
   * True if no field after the spooled one is an image too. The parse keeps the last of repeated
   * fields, so a bundle with a second image would restore that one while the store kept the first.
   * Only the top-level fields' tags are read (the others are skipped by length); the whole bundle
   * must have arrived.
   */
  boolean imageAppearsOnce() {
    try {
      int from = start + (int) staged.length();
      com.google.protobuf.CodedInputStream in =
          com.google.protobuf.CodedInputStream.newInstance(data, from, data.length - from);
      for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
        if (com.google.protobuf.WireFormat.getTagFieldNumber(tag)
            == dev.ferry.transport.proto.MigrationBundle.IMAGE_FIELD_NUMBER) {
          return false;
        }
        in.skipField(tag);
      }
      return true;
    } catch (java.io.IOException e) {
      return false; // (the parse of the whole bundle would have failed first)
    }
  }

  /** Waits until every piece is written; the whole image must have arrived. */
  void awaitWritten() {
    written.join();
  }

  /** Stops writing and removes what was written, unless it was published. Harmless twice. */
  public void discard() {
    synchronized (this) {
      stopped = true;
      notifyAll();
    }
    written.exceptionally(t -> null).join();
    staged.discard();
  }

  private void run() {
    try {
      long sinceSync = 0;
      for (int i = 0; i < staged.pieces(); i++) {
        int offset = start + i * staged.pieceBytes();
        int end = offset + staged.pieceLength(i);
        synchronized (this) {
          while (arrived < end && !stopped) {
            wait();
          }
          if (stopped) {
            throw new IllegalStateException("the transfer ended before the image had arrived");
          }
        }
        staged.writePiece(i, data, offset);
        sinceSync += staged.pieceLength(i);
        if (sinceSync >= SYNC_BYTES && i < staged.pieces() - 1) {
          store.sync(); // written back while the rest arrives
          sinceSync = 0;
        }
      }
      written.complete(null);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      written.completeExceptionally(e);
    } catch (RuntimeException e) {
      written.completeExceptionally(e);
    }
  }
}
