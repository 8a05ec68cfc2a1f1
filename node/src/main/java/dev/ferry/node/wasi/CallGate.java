package dev.ferry.node.wasi;

import com.dylibso.chicory.runtime.Instance;

/**
 * The seam between Ferry's WASI functions and the process runner: every WASI call (every migration
 * point) passes through it first, so the runner can freeze the guest there.
 */
public interface CallGate {

  /**
   * Called on entry to every WASI function and loop point. Returns true if the call may run now.
   * Returns false if the runner has started an Asyncify unwind instead; the function then returns a
   * dummy result without doing anything (it will be called again, with the same arguments, when the
   * process is rewound).
   */
  boolean proceed(Instance instance);

  /**
   * Blocks for up to {@code nanos} on behalf of the guest (poll_oneoff). Returns true when the time
   * has passed; false if a freeze was requested meanwhile and the runner has started an unwind (the
   * call has had no effect and will be re-executed after the rewind).
   */
  boolean sleep(Instance instance, long nanos);
}
