package dev.ferry.node.memory;

/**
 * Where a {@link PagedMemory} gets the content of a page the first time the guest touches it: a
 * paging file, a replica on another node, a process image. The memory asks at most once per page (a
 * page stays resident once loaded) and always from the guest's thread, so a source may block, for
 * example on a network fetch; the guest simply waits on that memory access.
 *
 * <p>Not guaranteed: a source is not told when its page is later changed or written back; that is
 * the job of whoever reads the memory's dirty pages.
 */
@FunctionalInterface
public interface PageSource {

  /**
   * The content of Ferry page {@code page} (bytes {@code page * pageSize} to {@code (page + 1) *
   * pageSize - 1} of linear memory), exactly {@code pageSize} bytes long, or null if the page is
   * all zeros (the cheap answer for pages the source knows nothing of). The memory copies the
   * array, so the source may return a cached one. An unchecked exception reaches the guest as a
   * trap.
   */
  byte[] load(int page);

  /**
   * The source of a fresh memory: every page starts as zeros. A memory recognises this instance
   * and, knowing its absent pages are zeros, need not materialise them to zero them.
   */
  PageSource ZEROS = page -> null;

  /** {@link #ZEROS}. */
  static PageSource zeros() {
    return ZEROS;
  }
}
