package dev.ferry.statestore;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Key encoding and the per-thread direct buffers lmdbjava needs for keys.
 *
 * <p>LMDB keys must live in direct memory. Keys are at most 511 bytes, so each thread keeps two
 * small direct buffers and fills them for each call instead of allocating: values never pass
 * through these (they are copied straight into or out of LMDB's pages, see {@link LmdbTable}). A
 * key buffer is only read by LMDB during the call it is passed to, so reusing it afterwards is
 * safe.
 */
final class Bytes {
  /** LMDB's compiled-in limit (MDB_MAXKEYSIZE). */
  static final int LMDB_MAX_KEY = 511;

  private static final ThreadLocal<ByteBuffer[]> SCRATCH =
      ThreadLocal.withInitial(
          () ->
              new ByteBuffer[] {
                ByteBuffer.allocateDirect(LMDB_MAX_KEY), ByteBuffer.allocateDirect(LMDB_MAX_KEY)
              });

  private Bytes() {}

  /** This thread's first key buffer, cleared. */
  static ByteBuffer keyA() {
    return SCRATCH.get()[0].clear();
  }

  /** This thread's second key buffer, cleared; for when two keys are needed at once. */
  static ByteBuffer keyB() {
    return SCRATCH.get()[1].clear();
  }

  /** {@code bytes} in this thread's first key buffer, ready to pass to LMDB. */
  static ByteBuffer key(byte[] bytes) {
    return keyA().put(bytes).flip();
  }

  /**
   * The UTF-8 bytes of a key or id, rejecting empty, too long and malformed (unpaired surrogate)
   * strings, which would otherwise be silently mapped to "?" and collide.
   */
  static byte[] utf8(String what, String text, int maxBytes) {
    if (text == null) {
      throw new NullPointerException(what);
    }
    if (text.isEmpty()) {
      throw new IllegalArgumentException(what + " must not be empty");
    }
    byte[] bytes;
    try {
      ByteBuffer encoded =
          StandardCharsets.UTF_8
              .newEncoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .encode(CharBuffer.wrap(text));
      bytes = new byte[encoded.remaining()];
      encoded.get(bytes);
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(what + " is not valid Unicode: " + e.getMessage(), e);
    }
    if (bytes.length > maxBytes) {
      throw new IllegalArgumentException(
          what + " is " + bytes.length + " bytes in UTF-8, at most " + maxBytes + " allowed");
    }
    return bytes;
  }

  /** A copy of the remaining bytes of an LMDB-owned buffer, which is valid only briefly. */
  static byte[] copy(ByteBuffer buffer) {
    byte[] out = new byte[buffer.remaining()];
    buffer.get(buffer.position(), out);
    return out;
  }

  /** Whether {@code buffer} (from its position) starts with {@code prefix}. */
  static boolean startsWith(ByteBuffer buffer, byte[] prefix) {
    if (buffer.remaining() < prefix.length) {
      return false;
    }
    int base = buffer.position();
    for (int i = 0; i < prefix.length; i++) {
      if (buffer.get(base + i) != prefix[i]) {
        return false;
      }
    }
    return true;
  }

  /** The big-endian long at {@code index}, whatever the buffer's byte order. */
  static long longAt(ByteBuffer buffer, int index) {
    long value = 0;
    for (int i = 0; i < 8; i++) {
      value = value << 8 | (buffer.get(index + i) & 0xFF);
    }
    return value;
  }

  /** The big-endian int at {@code index}, whatever the buffer's byte order. */
  static int intAt(ByteBuffer buffer, int index) {
    int value = 0;
    for (int i = 0; i < 4; i++) {
      value = value << 8 | (buffer.get(index + i) & 0xFF);
    }
    return value;
  }
}
