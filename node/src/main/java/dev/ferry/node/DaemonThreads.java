package dev.ferry.node;

import java.util.concurrent.ThreadFactory;

/**
 * Threads of the node's own executors: named (so a thread dump says whose they are) and daemon (so
 * they never keep a stopping JVM alive; the node stops its work itself, in order, on close).
 */
public final class DaemonThreads {
  private DaemonThreads() {}

  /** A factory of daemon threads all called {@code name}. */
  public static ThreadFactory named(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }
}
