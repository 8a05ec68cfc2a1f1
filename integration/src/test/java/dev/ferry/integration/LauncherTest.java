package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./ferry} launcher starts a node on the Java 17 the build uses and on Java 25 (if this
 * machine has it) without the warnings newer JVMs print about lmdbjava's native library and {@code
 * sun.misc.Unsafe} (it adds the flags that allow them, and only where the JVM knows them).
 */
class LauncherTest {
  @TempDir Path dir;

  @Test
  void aNodeStartsWithoutWarningsOnJava17() throws Exception {
    startAndStop(JavaRuntime.current(), "j17");
  }

  @Test
  void aNodeStartsWithoutWarningsOnJava25() throws Exception {
    Optional<JavaRuntime> jdk25 = JavaRuntime.jdk25();
    assumeTrue(jdk25.isPresent(), "no Java 25 on this machine");
    startAndStop(jdk25.get(), "j25");
  }

  private void startAndStop(JavaRuntime java, String name) throws Exception {
    Path launcher = RepoFiles.find("ferry");
    Path data = Files.createDirectories(dir.resolve(name));
    Path log = dir.resolve(name + ".log");
    int httpPort = FreePorts.next();
    List<String> cmd = new ArrayList<>();
    cmd.addAll(
        List.of(
            "bash",
            launcher.toString(),
            "daemon",
            "--name=" + name,
            "--host=127.0.0.1",
            "--port=" + FreePorts.next(),
            "--http-port=" + httpPort,
            "--data-dir=" + data));
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Map<String, String> env = pb.environment();
    DaemonProcess.withoutJvmOptions(env);
    env.put("PATH", java.home().resolve("bin") + ":" + env.getOrDefault("PATH", "/usr/bin:/bin"));
    Process p = pb.start();
    LiveProcesses.instance().add(p);
    try {
      NodeApi api = new NodeApi(URI.create("http://127.0.0.1:" + httpPort));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while (!api.isHealthy()) {
        assertTrue(p.isAlive(), "the node exited before it was ready:\n" + Files.readString(log));
        assertTrue(System.nanoTime() < deadline, "not ready in 120 s:\n" + Files.readString(log));
        Thread.sleep(100);
      }
      // The launcher exec's the java found on PATH: the node reports that JDK.
      String jdk = api.nodes().get(0).path("jdk").asText();
      assertTrue(jdk.startsWith(java.feature() + "."), "the node runs on " + jdk + ", not " + java);
      p.destroy(); // SIGTERM: checkpoints (nothing) and exits 0
      assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the node did not stop on SIGTERM");
      assertEquals(0, p.exitValue(), Files.readString(log));
      String out = Files.readString(log);
      assertFalse(out.contains("WARNING"), "the node printed warnings on " + java + ":\n" + out);
    } finally {
      p.destroyForcibly();
      LiveProcesses.instance().remove(p);
    }
  }
}
