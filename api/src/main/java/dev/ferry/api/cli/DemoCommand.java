package dev.ferry.api.cli;

import com.typesafe.config.ConfigFactory;
import dev.ferry.config.FerrySettings;
import dev.ferry.node.FerryNode;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.RunRequest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferry demo}: Ferry's main job on its embedded default. Starts a three-node cluster on
 * loopback inside this JVM (engines interpreter, compiled, interpreter; data under a temporary
 * directory), runs a bundled guest, checkpoints it mid-run and restores it under the other engine,
 * then migrates it round-robin around the nodes while it runs, prints each step's phase times,
 * checks the output against an uninterrupted run, and shuts the cluster down.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    description = {
      "Start a local three-node cluster (in this JVM), run a bundled guest, checkpoint and",
      "restore it, migrate it around the nodes mid-run, print the phase times, shut down."
    })
final class DemoCommand implements Callable<Integer> {
  @ParentCommand FerryCli cli;

  @Option(
      names = "--migrations",
      paramLabel = "N",
      defaultValue = "9",
      description = "How many migrations to make while the guest runs (default ${DEFAULT-VALUE}).")
  int migrations;

  @Option(
      names = "--data-dir",
      paramLabel = "DIR",
      description =
          "Where the three nodes keep their data (default: a temporary directory, deleted after).")
  Path dataDir;

  private static final List<String> ARGS = List.of("400", "1000");

  @Override
  public Integer call() throws Exception {
    PrintStream out = cli.out();
    boolean temporary = dataDir == null;
    Path dir = temporary ? Files.createTempDirectory("ferry-demo-") : dataDir;
    List<FerryNode> nodes = new ArrayList<>();
    try {
      String[] engines = {"interpreter", "compiled", "interpreter"};
      int seed = freePort();
      out.println("Starting a three-node Ferry cluster on 127.0.0.1 (data in " + dir + ") ...");
      for (int i = 0; i < 3; i++) {
        Map<String, Object> m = new HashMap<>();
        m.put("ferry.node.name", "n" + (i + 1));
        m.put("ferry.node.host", "127.0.0.1");
        m.put("ferry.node.port", i == 0 ? seed : freePort());
        m.put("ferry.node.seeds", List.of("127.0.0.1:" + seed));
        m.put("ferry.node.engine", engines[i]);
        m.put("ferry.node.data-dir", dir.resolve("n" + (i + 1)).toString());
        m.put("ferry.http.port", freePort());
        m.put("ferry.store.map-size", "2GiB");
        nodes.add(
            FerryNode.start(
                FerrySettings.load(ConfigFactory.parseMap(m).withFallback(ConfigFactory.load()))));
        out.println("  node n" + (i + 1) + " up (" + engines[i] + " engine)");
      }
      ClusterService n1 = nodes.get(0).service();
      byte[] wasm = guest("churn.wasm");
      String hash = get(n1.uploadModule(wasm, false)).hash();
      out.println(
          "Guest: churn.wasm "
              + String.join(" ", ARGS)
              + " (heap churn, globals, recursion 1000 deep), module "
              + hash.substring(0, 12));

      out.println("Reference: one uninterrupted run on n1 ...");
      ProcessInfo ref =
          get(n1.run(new RunRequest(hash, Engine.COMPILED, ARGS, Map.of(), Map.of())));
      get(n1.awaitExit(ref.id()));
      byte[] expected = stdout(n1, ref.id());

      ProcessInfo p =
          get(n1.run(new RunRequest(hash, Engine.INTERPRETER, ARGS, Map.of(), Map.of())));
      out.println("Started " + p.id() + " on n1 (interpreter).");
      waitForOutput(n1, p.id(), expected.length / 20);
      CheckpointResult cp = get(n1.checkpoint(p.id(), false));
      out.printf(
          "Checkpointed mid-run: freeze %s, capture %s, write %s, image %s%n",
          ms(cp.freezeMicros()),
          ms(cp.captureMicros()),
          ms(cp.writeMicros()),
          bytes(cp.imageBytes()));
      get(n1.restore(p.id(), Engine.COMPILED));
      out.println("Restored on n1 under the compiled engine.");

      List<MigrationInfo> done = new ArrayList<>();
      for (int i = 0; i < migrations; i++) {
        Thread.sleep(100);
        ProcessInfo now = get(n1.status(p.id()));
        if (now.state().isFinal()) {
          break;
        }
        String to = "n" + (Integer.parseInt(now.node().substring(1)) % 3 + 1);
        MigrationInfo m;
        try {
          m = get(n1.migrate(p.id(), to, "data-segment"));
        } catch (java.util.concurrent.ExecutionException e) {
          if (get(n1.status(p.id())).state().isFinal()) {
            break; // it finished first
          }
          throw e;
        }
        done.add(awaitMigration(n1, m.id()));
      }
      ProcessInfo end = get(n1.awaitExit(p.id()));
      byte[] got = stdout(n1, p.id());

      out.println();
      out.println("Migrations (data-segment; times in ms):");
      out.printf(
          "%-3s %-9s %-25s %-10s %8s %8s %9s %8s %9s %8s %9s%n",
          "#",
          "route",
          "engines",
          "state",
          "freeze",
          "capture",
          "transfer",
          "restore",
          "stood still",
          "total",
          "bytes");
      int k = 1;
      for (MigrationInfo m : done) {
        out.printf(
            "%-3d %-9s %-25s %-10s %8s %8s %9s %8s %9s %8s %9s%n",
            k++,
            m.fromNode() + "->" + m.toNode(),
            m.fromEngine() + "->" + m.toEngine(),
            m.state(),
            ms(m.freezeMicros()),
            ms(m.captureMicros()),
            ms(m.transferMicros()),
            ms(m.restoreMicros()),
            ms(m.totalFreezeMicros()),
            ms(m.totalMicros()),
            bytes(m.bytesMoved()));
      }
      out.println();
      String tail = new String(got, StandardCharsets.UTF_8).strip();
      out.println("Last line of output: " + tail.substring(tail.lastIndexOf('\n') + 1));
      boolean same = Arrays.equals(expected, got) && end.exitCode() != null && end.exitCode() == 0;
      out.println(
          "Exit code "
              + end.exitCode()
              + " on node "
              + end.node()
              + "; output "
              + (same ? "byte-identical to" : "DIFFERENT from")
              + " the uninterrupted run ("
              + got.length
              + " bytes).");
      return same ? 0 : 1;
    } finally {
      out.println("Shutting the cluster down ...");
      for (int i = nodes.size() - 1; i >= 0; i--) {
        nodes.get(i).close();
      }
      if (temporary) {
        deleteTree(dir);
      }
      out.println("Done.");
    }
  }

  private static byte[] guest(String name) throws IOException {
    try (InputStream in = DemoCommand.class.getResourceAsStream("/guests/" + name)) {
      if (in == null) {
        throw new IOException("bundled guest " + name + " is missing from the jar");
      }
      return in.readAllBytes();
    }
  }

  private static <T> T get(CompletionStage<T> s) throws Exception {
    return s.toCompletableFuture().get(5, TimeUnit.MINUTES);
  }

  private static byte[] stdout(ClusterService svc, String pid) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long off = 0;
    while (true) {
      LogChunk c = get(svc.readLog(pid, LogStream.STDOUT, off, 1 << 20, Duration.ZERO));
      if (c.data().length == 0) {
        return out.toByteArray();
      }
      out.writeBytes(c.data());
      off = c.nextOffset();
    }
  }

  private static void waitForOutput(ClusterService svc, String pid, long bytes) throws Exception {
    while (true) {
      ProcessInfo i = get(svc.status(pid));
      if (i.stdoutBytes() >= bytes || i.state().isFinal()) {
        return;
      }
      Thread.sleep(5);
    }
  }

  private static MigrationInfo awaitMigration(ClusterService svc, String id) throws Exception {
    while (true) {
      MigrationInfo m = get(svc.migration(id));
      if (List.of("committed", "aborted", "cancelled").contains(m.state())) {
        return m;
      }
      Thread.sleep(5);
    }
  }

  private static String ms(long micros) {
    return String.format("%.2f", micros / 1000.0);
  }

  private static String bytes(long n) {
    return n < 1024 * 1024
        ? String.format("%.1fK", n / 1024.0)
        : String.format("%.1fM", n / 1048576.0);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void deleteTree(Path dir) {
    try (var s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a temp dir left behind is harmless
    }
  }
}
