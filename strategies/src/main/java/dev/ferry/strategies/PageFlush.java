package dev.ferry.strategies;

/**
 * What writing a frozen process's dirty pages out cost.
 *
 * @param dirtyPages pages dirty when the process froze
 * @param pagesWritten pages written to the paging file (each also to every replica)
 * @param bytesSent bytes sent to other nodes (page data to each replica, and a full copy if any)
 * @param fullCopyPages pages of a full copy of the paging file to a node that held none
 */
public record PageFlush(long dirtyPages, long pagesWritten, long bytesSent, long fullCopyPages) {}
