package dev.ferry.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.ferry.config.FerrySettings;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Settings and guest modules for node tests. */
public final class TestNodes {
  private TestNodes() {}

  /** A built guest module from guests/wasm (committed; rebuilt by scripts/build-guests.sh). */
  public static byte[] guest(String name) {
    try {
      return Files.readAllBytes(guestPath(name));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static Path guestPath(String name) {
    Path p = Path.of("..", "guests", "wasm", name + ".wasm");
    if (!Files.exists(p)) {
      p = Path.of("guests", "wasm", name + ".wasm");
    }
    return p;
  }

  /** Settings for a node with its data in {@code dataDir}; extra keys override. */
  public static FerrySettings settings(Path dataDir, Map<String, Object> extra) {
    Map<String, Object> m = new HashMap<>();
    m.put("ferry.node.data-dir", dataDir.toString());
    m.put("ferry.node.port", freePort());
    m.put("ferry.store.map-size", "4GiB");
    m.put("ferry.runtime.freeze-timeout", "5s");
    m.putAll(extra);
    Config c = ConfigFactory.parseMap(m).withFallback(ConfigFactory.load());
    return FerrySettings.load(c);
  }

  /**
   * Polls a process's status every second until its stdout stops growing (as when the store of its
   * node is full and it waits to write); it must stay RUNNING meanwhile and stop within a minute.
   * Returns the stdout's length then.
   */
  public static long awaitOutputStops(
      java.util.function.Function<String, java.util.concurrent.CompletionStage<ProcessInfo>> status,
      String pid)
      throws Exception {
    long last = -1;
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      ProcessInfo now = status.apply(pid).toCompletableFuture().get(60, TimeUnit.SECONDS);
      assertEquals(ProcessState.RUNNING, now.state(), "it must not fail: " + now.error());
      if (now.stdoutBytes() == last && last > 0) {
        return last;
      }
      assertTrue(System.currentTimeMillis() < deadline, "its output never stopped: " + now);
      last = now.stdoutBytes();
      Thread.sleep(1000);
    }
  }

  public static int freePort() {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
