package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every workload, checkpointed and restored several times at different points of its run, on every
 * pair of engines, gives exactly the output, exit code and files of an uninterrupted run.
 */
class CheckpointRestoreTest {

  /** A guest program run with fixed arguments and inputs; outputFiles are compared after. */
  record Workload(
      String guest, List<String> args, Map<String, byte[]> files, List<String> outputFiles) {
    @Override
    public String toString() {
      return guest + " " + String.join(" ", args);
    }
  }

  /** What a run produced. */
  record Outcome(byte[] stdout, byte[] stderr, Integer exitCode, Map<String, byte[]> files) {}

  static final List<Workload> WORKLOADS =
      List.of(
          new Workload("churn", List.of("120", "2000"), Map.of(), List.of()),
          new Workload(
              "files",
              List.of("400"),
              Map.of("/in.txt", "input for the files workload\n".getBytes(StandardCharsets.UTF_8)),
              List.of("/data/a.txt", "/data/b.bin")),
          new Workload("clock", List.of("4000", "200"), Map.of(), List.of()),
          new Workload("lines", List.of("20000", "500", "unbuffered"), Map.of(), List.of()),
          new Workload("spin-preemptible", List.of("12000000"), Map.of(), List.of()));

  @TempDir static Path dir;
  static ProcessHarness node;
  static final Map<String, String> hashes = new ConcurrentHashMap<>();
  static final Map<Workload, Outcome> references = new ConcurrentHashMap<>();

  @BeforeAll
  static void startNode() {
    node = new ProcessHarness(dir, Map.of());
  }

  @AfterAll
  static void stopNode() {
    node.close();
  }

  static Stream<Arguments> cases() {
    List<Arguments> all = new ArrayList<>();
    for (Workload w : WORKLOADS) {
      for (Engine[] pair : ProcessHarness.ENGINE_PAIRS) {
        all.add(Arguments.of(w, pair[0], pair[1]));
      }
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{0}: {1} -> {2}")
  @MethodSource("cases")
  void outputIsByteIdenticalAfterRepeatedCheckpointAndRestore(Workload w, Engine from, Engine to)
      throws Exception {
    Outcome reference = references.computeIfAbsent(w, k -> runUninterrupted(k));

    ProcessInfo p = node.run(hash(w), from, w.args(), w.files());
    int checkpoints = 0;
    int restoresOnOther = 0;
    for (int i = 0; i < 6; i++) {
      // Checkpoint at different points: after 1/7, 2/7, ... of the output the program will
      // write (a program that writes nothing until the end: every few milliseconds).
      if (w.guest().startsWith("spin")) {
        Thread.sleep(3); // the compiled engine runs spin in ~0.1 s
      } else {
        long target = reference.stdout().length * (i + 1L) / 7;
        while (true) {
          ProcessInfo s = get(node.processes.status(p.id()));
          if (s.stdoutBytes() >= target || s.state().isFinal()) {
            break;
          }
          Thread.sleep(2);
        }
      }
      boolean leaveRunning = i == 2;
      try {
        get(node.processes.checkpoint(p.id(), leaveRunning));
      } catch (FerryException e) {
        if (e.kind() == FerryException.Kind.CONFLICT
            && get(node.processes.status(p.id())).state().isFinal()) {
          break; // it finished before this checkpoint
        }
        throw e;
      }
      checkpoints++;
      if (!leaveRunning) {
        assertEquals(ProcessState.CHECKPOINTED, get(node.processes.status(p.id())).state());
        Engine next = i % 2 == 0 ? to : from;
        restoresOnOther += next != from ? 1 : 0;
        ProcessInfo restored = get(node.processes.restore(p.id(), next));
        assertEquals(next, restored.engine());
      }
    }
    ProcessInfo done = get(node.processes.awaitExit(p.id()));
    Outcome got = outcome(done);

    assertTrue(
        checkpoints >= 4, "only " + checkpoints + " checkpoints happened: workload too short");
    if (from != to) {
      assertTrue(restoresOnOther >= 1, "never restored on the other engine");
    }
    assertEquals(ProcessState.EXITED, done.state(), "state; error: " + done.error());
    assertEquals(reference.exitCode(), got.exitCode(), "exit code");
    assertArrayEquals(reference.stdout(), got.stdout(), "stdout differs");
    assertArrayEquals(reference.stderr(), got.stderr(), "stderr differs");
    for (String f : w.outputFiles()) {
      assertArrayEquals(reference.files().get(f), got.files().get(f), "file " + f + " differs");
    }
  }

  private static String hash(Workload w) {
    return hashes.computeIfAbsent(w.guest(), node::upload);
  }

  private static Outcome runUninterrupted(Workload w) {
    ProcessInfo p = node.run(hash(w), Engine.INTERPRETER, w.args(), w.files());
    ProcessInfo done = get(node.processes.awaitExit(p.id()));
    assertEquals(ProcessState.EXITED, done.state(), "reference run failed: " + done.error());
    Outcome o = outcome(done);
    assertTrue(o.stdout().length > 0, "reference run printed nothing");
    return o;
  }

  private static Outcome outcome(ProcessInfo done) {
    Map<String, byte[]> files = new LinkedHashMap<>();
    for (Workload w : WORKLOADS) {
      for (String f : w.outputFiles()) {
        try {
          files.put(f, get(node.processes.readFile(done.id(), f)));
        } catch (FerryException e) {
          // not this workload's file
        }
      }
    }
    return new Outcome(
        node.log(done.id(), LogStream.STDOUT),
        node.log(done.id(), LogStream.STDERR),
        done.exitCode(),
        files);
  }
}
