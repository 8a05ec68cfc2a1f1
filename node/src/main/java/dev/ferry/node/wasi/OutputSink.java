package dev.ferry.node.wasi;

/** Where a process's stdout (stream 1) and stderr (stream 2) bytes go. */
public interface OutputSink {
  void write(int stream, byte[] data, int off, int len);

  /**
   * False while the sink cannot take more bytes (its store refuses them and it already holds as
   * many as it keeps in memory): the guest's write then waits, at a migration point, until it can.
   */
  default boolean accepting() {
    return true;
  }
}
