package dev.ferry.node.service;

/**
 * Lifecycle of a process.
 *
 * <pre>
 *   RUNNING --checkpoint--> CHECKPOINTED --restore--> RUNNING
 *   RUNNING --(program ends)--> EXITED        RUNNING --(trap, host error)--> FAILED
 *   any but EXITED/FAILED --kill--> KILLED
 * </pre>
 *
 * MIGRATING is used by cross-node migration while a process is frozen in transit.
 */
public enum ProcessState {
  RUNNING,
  CHECKPOINTED,
  MIGRATING,
  EXITED,
  FAILED,
  KILLED;

  /** True once the process can never run again. */
  public boolean isFinal() {
    return this == EXITED || this == FAILED || this == KILLED;
  }
}
