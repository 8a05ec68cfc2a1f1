package dev.ferry.node.wasi;

/** Where a process's stdout (stream 1) and stderr (stream 2) bytes go. */
public interface OutputSink {
  void write(int stream, byte[] data, int off, int len);
}
