/**
 * Linear memory for guests whose pages live elsewhere too. {@link
 * dev.ferry.node.memory.PagedMemory} is a Chicory {@code Memory} of small fixed-size pages that
 * fault in lazily from a {@link dev.ferry.node.memory.PageSource} and record which pages were
 * written and when, so a flusher on another thread can write back only the dirty ones while the
 * guest runs. It is the building block of paging-file strategies (GFVM, flushing, post-copy);
 * nothing here touches the store, the network or the process image.
 */
package dev.ferry.node.memory;
