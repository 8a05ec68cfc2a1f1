package dev.ferry.node.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.ferry.transport.proto.TransferChunk;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.SocketTimeoutException;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class FramesTest {
  /** Hands out at most a few bytes per read, and times out between reads, like a slow socket. */
  private static final class Trickle extends InputStream {
    private final byte[] data;
    private final Random random = new Random(7);
    private int pos;
    private boolean timeOutNext = true;

    Trickle(byte[] data) {
      this.data = data;
    }

    @Override
    public int read() {
      throw new UnsupportedOperationException();
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (timeOutNext) {
        timeOutNext = false;
        throw new SocketTimeoutException("read timed out");
      }
      timeOutNext = true;
      if (pos == data.length) {
        return -1;
      }
      int n = Math.min(len, Math.min(data.length - pos, 1 + random.nextInt(5)));
      System.arraycopy(data, pos, b, off, n);
      pos += n;
      return n;
    }
  }

  private static TransferChunk chunk(int seq, int size) {
    byte[] d = new byte[size];
    new Random(seq).nextBytes(d);
    return TransferChunk.newBuilder()
        .setMigrationId("m")
        .setSeq(seq)
        .setData(ByteString.copyFrom(d))
        .build();
  }

  @Test
  void framesSurviveReadTimeoutsInTheMiddleOfAFrame() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    for (int i = 0; i < 5; i++) {
      Frames.write(out, chunk(i, 100 * i));
    }
    out.flush();
    AtomicInteger timeouts = new AtomicInteger();
    Frames.Reader in = new Frames.Reader(new Trickle(bytes.toByteArray()));
    for (int i = 0; i < 5; i++) {
      TransferChunk c = TransferChunk.parseFrom(in.next(timeouts::incrementAndGet));
      assertEquals(i, c.getSeq());
      assertArrayEquals(chunk(i, 100 * i).getData().toByteArray(), c.getData().toByteArray());
    }
    assertTrue(timeouts.get() > 5, "the trickle timed out between reads");
    assertThrows(EOFException.class, () -> in.next(() -> {}));
  }

  @Test
  void sharedReadsGiveEachFrameWholeInOneReusedBuffer() throws IOException {
    int[] sizes = {300, 100, 0, 700, 50, 700};
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    for (int i = 0; i < sizes.length; i++) {
      Frames.write(out, chunk(i, sizes[i]));
    }
    out.flush();
    Frames.Reader in = new Frames.Reader(new Trickle(bytes.toByteArray()));
    byte[] buffer = null;
    for (int i = 0; i < sizes.length; i++) {
      TransferChunk c;
      if (i == 3) {
        c = TransferChunk.parseFrom(in.next(() -> {})); // a plain read in between
      } else {
        int length = in.nextShared(() -> {});
        assertEquals(chunk(i, sizes[i]).getSerializedSize(), length);
        c = TransferChunk.parseFrom(ByteString.copyFrom(in.shared(), 0, length));
        if (i > 1) {
          assertTrue(buffer == in.shared() || sizes[i] > 300, "a smaller frame got a new buffer");
        }
        buffer = in.shared();
      }
      assertEquals(i, c.getSeq());
      assertArrayEquals(chunk(i, sizes[i]).getData().toByteArray(), c.getData().toByteArray());
    }
    assertThrows(EOFException.class, () -> in.nextShared(() -> {}));
  }

  @Test
  void aTimeoutCheckThatGivesUpEndsTheRead() {
    Frames.Reader in = new Frames.Reader(new Trickle(new byte[] {0, 0, 0, 9, 1, 2}));
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                in.next(
                    () -> {
                      throw new IOException("cancelled by the operator");
                    }));
    assertEquals("cancelled by the operator", e.getMessage());
  }

  @Test
  void anAbsurdFrameLengthIsRefused() {
    Frames.Reader in = new Frames.Reader(new Trickle(new byte[] {(byte) 0x7f, 0, 0, 0}));
    IOException e = assertThrows(IOException.class, () -> in.next(() -> {}));
    assertTrue(e.getMessage().contains("refused"), e.getMessage());
  }
}
