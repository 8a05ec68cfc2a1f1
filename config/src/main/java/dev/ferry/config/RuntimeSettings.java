package dev.ferry.config;

import java.time.Duration;

/**
 * How processes are instrumented and run ({@code ferry.runtime}).
 *
 * <p>The constructor validates ranges, including that the Asyncify buffer fits in the largest
 * linear memory allowed. It does not check that {@code wasmOpt} exists or is Binaryen's wasm-opt;
 * that is found out when the first module is instrumented.
 *
 * @param wasmOpt the wasm-opt executable, a name looked up on PATH or a path
 * @param asyncifyBufferBytes bytes of linear memory reserved for the Asyncify unwind buffer; at
 *     least 4 KiB, a multiple of 8, and smaller than {@code maxMemoryPages} × 64 KiB
 * @param freezeTimeout how long a freeze waits for a migration point; greater than 0
 * @param maxMemoryPages largest linear memory of a process in 64 KiB pages, 1..65536
 * @param logFlushInterval how often buffered process output is written to the store; greater than 0
 */
public record RuntimeSettings(
    String wasmOpt,
    int asyncifyBufferBytes,
    Duration freezeTimeout,
    int maxMemoryPages,
    Duration logFlushInterval) {

  /** Bytes in one WebAssembly page. */
  public static final int WASM_PAGE_BYTES = 65536;

  /** Smallest accepted Asyncify buffer. */
  public static final int MIN_ASYNCIFY_BUFFER_BYTES = 4096;

  /** Largest accepted Asyncify buffer: the largest multiple of 8 that is an {@code int}. */
  public static final int MAX_ASYNCIFY_BUFFER_BYTES = Integer.MAX_VALUE - 7;

  /** Validates every field; see the class comment. */
  public RuntimeSettings {
    wasmOpt = Check.notBlank("ferry.runtime.wasm-opt", wasmOpt);
    Check.range("ferry.runtime.max-memory-pages", maxMemoryPages, 1, 65536);
    checkAsyncifyBuffer(asyncifyBufferBytes, maxMemoryPages);
    Check.positive("ferry.runtime.freeze-timeout", freezeTimeout);
    Check.positive("ferry.runtime.log-flush-interval", logFlushInterval);
  }

  /** The largest linear memory a process may have, in bytes. */
  public long maxMemoryBytes() {
    return (long) maxMemoryPages * WASM_PAGE_BYTES;
  }

  static void checkAsyncifyBuffer(long bytes, long maxMemoryPages) {
    String key = "ferry.runtime.asyncify-buffer-bytes";
    if (bytes < MIN_ASYNCIFY_BUFFER_BYTES || bytes % 8 != 0) {
      throw new InvalidSettingsException(
          key, "must be at least 4 KiB (4096 bytes) and a multiple of 8, got " + bytes);
    }
    if (bytes > MAX_ASYNCIFY_BUFFER_BYTES) {
      throw new InvalidSettingsException(
          key, "must be at most " + MAX_ASYNCIFY_BUFFER_BYTES + " bytes, got " + bytes);
    }
    long memory = maxMemoryPages * WASM_PAGE_BYTES;
    if (bytes >= memory) {
      throw new InvalidSettingsException(
          key,
          "must be smaller than the largest linear memory (ferry.runtime.max-memory-pages = "
              + maxMemoryPages
              + ", i.e. "
              + memory
              + " bytes), got "
              + bytes);
    }
  }
}
