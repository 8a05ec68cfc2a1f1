package dev.ferry.node.cluster;

import com.google.protobuf.MessageLite;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.SocketTimeoutException;

/**
 * Length-prefixed Protobuf frames on a migration's transfer connection: a 4-byte big-endian length,
 * then the message. {@link Reader} keeps a partly read frame across socket read timeouts, so the
 * reading thread can wake up regularly (to check for a cancel or an unreachable peer) without
 * losing bytes.
 */
final class Frames {
  /** Largest frame accepted: a chunk of at most {@code chunk-bytes} plus its header. */
  static final int MAX_FRAME = 64 << 20;

  private Frames() {}

  static void write(DataOutputStream out, MessageLite m) throws IOException {
    out.writeInt(m.getSerializedSize());
    m.writeTo(out);
  }

  /** What to do each time a read times out; throws to give up. */
  interface OnTimeout {
    void check() throws IOException;
  }

  /** Reads frames from a socket whose read timeout is set, resuming partial reads. */
  static final class Reader {
    private final InputStream in;
    private final byte[] header = new byte[4];
    private int headerFilled;
    private byte[] body; // the frame being read, null between frames
    private int bodyLength;
    private int bodyFilled;
    private byte[] shared; // reused by nextShared

    Reader(InputStream in) {
      this.in = in;
    }

    /** The next whole frame; calls {@code onTimeout} whenever the socket read times out. */
    byte[] next(OnTimeout onTimeout) throws IOException {
      fill(onTimeout, false);
      byte[] frame = body;
      body = null;
      return frame;
    }

    /**
     * {@link #next}, but read into a buffer this reader keeps and reuses: the frame is the first
     * {@code length} bytes of {@link #shared()} and is overwritten by the next call. For frames
     * consumed before the next is read: a migration's chunks of 1 MiB each would otherwise be a new
     * array apiece, each a humongous object for G1.
     */
    int nextShared(OnTimeout onTimeout) throws IOException {
      int length = fill(onTimeout, true);
      body = null;
      return length;
    }

    /** The buffer {@link #nextShared} reads into. */
    byte[] shared() {
      return shared;
    }

    private int fill(OnTimeout onTimeout, boolean reuse) throws IOException {
      while (headerFilled < 4) {
        headerFilled += read(header, headerFilled, 4 - headerFilled, onTimeout);
      }
      if (body == null) {
        int len =
            ((header[0] & 0xff) << 24)
                | ((header[1] & 0xff) << 16)
                | ((header[2] & 0xff) << 8)
                | (header[3] & 0xff);
        if (len < 0 || len > MAX_FRAME) {
          throw new IOException("frame of " + len + " bytes refused");
        }
        if (!reuse) {
          body = new byte[len];
        } else {
          if (shared == null || shared.length < len) {
            shared = new byte[len];
          }
          body = shared;
        }
        bodyLength = len;
        bodyFilled = 0;
      }
      while (bodyFilled < bodyLength) {
        bodyFilled += read(body, bodyFilled, bodyLength - bodyFilled, onTimeout);
      }
      headerFilled = 0;
      return bodyLength;
    }

    private int read(byte[] b, int off, int len, OnTimeout onTimeout) throws IOException {
      while (true) {
        try {
          int n = in.read(b, off, len);
          if (n < 0) {
            throw new EOFException("connection closed by the other node");
          }
          return n;
        } catch (SocketTimeoutException e) {
          onTimeout.check();
        }
      }
    }
  }
}
