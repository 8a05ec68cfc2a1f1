package dev.ferry.strategies;

import java.io.IOException;
import java.io.OutputStream;

/**
 * Bytes to send whose size is known before they exist: a payload is serialized while it is sent,
 * chunk by chunk, instead of being built whole first (a large image then costs one pass, not two,
 * and the first chunk leaves at once).
 */
public interface Payload {
  /** Exactly how many bytes {@link #writeTo} writes. */
  long size();

  /** Writes the bytes, all {@link #size()} of them. */
  void writeTo(OutputStream out) throws IOException;

  /** A payload of bytes already there. */
  static Payload of(byte[] bytes) {
    return new Payload() {
      @Override
      public long size() {
        return bytes.length;
      }

      @Override
      public void writeTo(OutputStream out) throws IOException {
        out.write(bytes);
      }
    };
  }
}
