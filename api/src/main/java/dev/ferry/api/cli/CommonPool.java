package dev.ferry.api.cli;

/**
 * The fork-join common pool of a {@code ferry} JVM, sized before anything uses it.
 *
 * <p>{@code CompletableFuture} runs its async tasks on the common pool only when that pool has two
 * threads or more. With one, its default in a JVM that sees two CPUs or fewer (a 2-CPU virtual
 * machine or container), it starts a new thread for every task instead; and Scala's conversion of
 * Pekko's futures makes every continuation of an {@code ask} async. So a node on such a machine
 * started a thread per continuation (about four per migration, its requests included), and ran its
 * continuations unlike a node with more CPUs, where they share the pool. Two threads make the two
 * alike. A parallelism given on the command line ({@code
 * -Djava.util.concurrent.ForkJoinPool.common.parallelism}, e.g. in {@code FERRY_JAVA_OPTS}) is
 * kept.
 */
final class CommonPool {
  static final String PARALLELISM = "java.util.concurrent.ForkJoinPool.common.parallelism";

  private CommonPool() {}

  /**
   * Gives the common pool two threads where it would have one. Has an effect only before the pool
   * is first used, so {@link FerryCli#main} calls it first.
   */
  static void atLeastTwoThreads() {
    if (System.getProperty(PARALLELISM) == null
        && Runtime.getRuntime().availableProcessors() <= 2) {
      System.setProperty(PARALLELISM, "2");
    }
  }
}
