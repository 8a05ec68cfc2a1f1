package dev.ferry.integration;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Every node JVM the tests started and have not seen exit, so that none outlives the test JVM: the
 * harness stops them in {@code close()}, and a shutdown hook kills (SIGKILL) whatever is left when
 * the test JVM exits anyway (a crash, a timeout, Ctrl-C). A JVM killed with SIGKILL itself runs no
 * hook; its nodes then need killing by hand (their command line names their data directory under
 * {@code integration/target/it}).
 */
public final class LiveProcesses {
  private static final LiveProcesses INSTANCE = new LiveProcesses();

  private final Set<Process> processes = ConcurrentHashMap.newKeySet();

  private LiveProcesses() {
    Runtime.getRuntime().addShutdownHook(new Thread(this::killAll, "ferry-it-kill-nodes"));
  }

  public static LiveProcesses instance() {
    return INSTANCE;
  }

  void add(Process p) {
    processes.add(p);
  }

  void remove(Process p) {
    processes.remove(p);
  }

  private void killAll() {
    for (Process p : processes) {
      p.destroyForcibly();
    }
    for (Process p : processes) {
      try {
        p.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
