package dev.ferry.node.wasi;

/**
 * Thrown inside Ferry's WASI functions to return an errno to the guest. Never escapes to the
 * engine.
 */
public final class WasiException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final WasiErrno errno;

  WasiException(WasiErrno errno) {
    super(errno.name(), null, false, false);
    this.errno = errno;
  }

  public WasiErrno errno() {
    return errno;
  }
}
