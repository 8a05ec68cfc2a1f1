package dev.ferry.node;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fault injection for tests: the environment variable {@code FERRY_TEST_FAILPOINT} names one point
 * where the node stops abruptly ({@link Runtime#halt}, exit code 137), as a crash of its machine
 * would stop it. The fault tests use it to reach windows too short to hit with a kill from outside.
 * Unset, nothing happens; never set it on a node that matters.
 *
 * <ul>
 *   <li>{@code halt-before-answer}: a destination halts once an incoming process is stored durably,
 *       before it answers its source.
 *   <li>{@code halt-after-answer}: a destination answers its source, then halts before it has
 *       recorded that the process runs there.
 *   <li>{@code source-halt-on-answer}: a migration's source halts as the destination's answer
 *       arrives, before it commits.
 *   <li>{@code halt-on-module}: a destination halts as a module sent ahead of a migration's bundle
 *       starts to arrive (it is sent before the freeze).
 * </ul>
 */
public final class Failpoint {
  private static final Logger log = LoggerFactory.getLogger(Failpoint.class);
  private static final String ACTIVE = System.getenv().getOrDefault("FERRY_TEST_FAILPOINT", "");

  private Failpoint() {}

  /** The active failpoint's name, or empty. */
  public static String active() {
    return ACTIVE;
  }

  public static boolean at(String name) {
    return ACTIVE.equals(name);
  }

  /** Halts the JVM now. */
  public static void halt(String name) {
    log.error("failpoint {}: halting", name);
    Runtime.getRuntime().halt(137);
  }

  /** Halts the JVM after half a second (what was just sent reaches its peer first). */
  public static void haltSoon(String name) {
    try {
      Thread.sleep(500);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    halt(name);
  }
}
