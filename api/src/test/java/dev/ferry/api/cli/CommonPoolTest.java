package dev.ferry.api.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link CommonPool}, in child JVMs that see a given number of CPUs ({@code
 * -XX:ActiveProcessorCount}): where an async continuation of a {@code ferry} JVM runs.
 */
class CommonPoolTest {
  /** The child JVM: prints the common pool's parallelism and the thread an async task ran on. */
  public static final class Probe {
    public static void main(String[] args) {
      if (args.length > 0 && args[0].equals("size")) {
        CommonPool.atLeastTwoThreads();
      }
      String[] ranOn = new String[1];
      CompletableFuture.runAsync(() -> ranOn[0] = Thread.currentThread().getName()).join();
      System.out.println(ForkJoinPool.getCommonPoolParallelism() + " " + ranOn[0]);
    }
  }

  @Test
  void onTwoCpusAsyncTasksRunOnThePoolNotOnANewThreadEach() throws Exception {
    String out = probe(2, List.of(), "size");
    assertTrue(out.startsWith("2 ForkJoinPool.commonPool-worker-"), out);
    // What it changes: without it, such a JVM starts a thread per task.
    String before = probe(2, List.of(), "");
    assertTrue(before.startsWith("1 Thread-"), before);
  }

  @Test
  void onOneCpuToo() throws Exception {
    String out = probe(1, List.of(), "size");
    assertTrue(out.startsWith("2 ForkJoinPool.commonPool-worker-"), out);
  }

  @Test
  void moreCpusAndAParallelismGivenOnTheCommandLineAreLeftAlone() throws Exception {
    assertTrue(probe(8, List.of(), "size").startsWith("7 "));
    assertTrue(
        probe(2, List.of("-D" + CommonPool.PARALLELISM + "=1"), "size").startsWith("1 Thread-"));
  }

  private static String probe(int cpus, List<String> jvmArgs, String arg) throws Exception {
    String classPath =
        String.join(
            File.pathSeparator,
            location(CommonPool.class).toString(),
            location(Probe.class).toString());
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-XX:ActiveProcessorCount=" + cpus);
    cmd.add("-Xmx32m");
    cmd.addAll(jvmArgs);
    cmd.addAll(List.of("-cp", classPath, Probe.class.getName(), arg));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the probe JVM did not end");
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertEquals(0, p.exitValue(), out);
    return out;
  }

  private static Path location(Class<?> c) throws Exception {
    return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
  }
}
