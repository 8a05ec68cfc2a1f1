package dev.ferry.node.service;

/**
 * Bytes of a process's output stream from {@code offset}; {@code nextOffset} is where the next read
 * starts. {@code complete} is true when the process can write no more to this stream and {@code
 * nextOffset} is its end.
 */
public record LogChunk(long offset, byte[] data, long nextOffset, boolean complete) {}
