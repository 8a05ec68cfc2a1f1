package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.node.TestNodes;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import dev.ferry.statestore.TableName;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every kind of bad input gets a clear error and changes nothing. */
class BadInputTest {
  @TempDir Path dir;
  ProcessHarness node;

  @BeforeEach
  void start() {
    node = new ProcessHarness(dir, Map.of());
  }

  @AfterEach
  void stop() {
    node.close();
  }

  private FerryException fails(FerryException.Kind kind, Supplier<Object> call) {
    int modules = node.store.table(TableName.MODULES).keys().size();
    int processes = node.store.table(TableName.PROCESSES).keys().size();
    FerryException e = assertThrows(FerryException.class, call::get);
    assertEquals(kind, e.kind(), e.getMessage());
    assertEquals(modules, node.store.table(TableName.MODULES).keys().size(), "a module was stored");
    assertEquals(
        processes, node.store.table(TableName.PROCESSES).keys().size(), "a process was recorded");
    return e;
  }

  @Test
  void rejectsBytesThatAreNotAModule() {
    FerryException e =
        fails(
            FerryException.Kind.BAD_REQUEST,
            () -> get(node.processes.uploadModule(TestNodes.guest("not-a-module"), false)));
    assertTrue(e.getMessage().contains("not a WebAssembly module"), e.getMessage());
  }

  @Test
  void rejectsATruncatedModule() {
    byte[] churn = TestNodes.guest("churn");
    byte[] cut = java.util.Arrays.copyOf(churn, churn.length / 2);
    FerryException e =
        fails(FerryException.Kind.BAD_REQUEST, () -> get(node.processes.uploadModule(cut, false)));
    assertTrue(e.getMessage().contains("not a valid WebAssembly module"), e.getMessage());
  }

  @Test
  void rejectsAModuleImportingMoreThanWasi() {
    FerryException e =
        fails(
            FerryException.Kind.BAD_REQUEST,
            () -> get(node.processes.uploadModule(TestNodes.guest("bad-import"), false)));
    assertTrue(e.getMessage().contains("env.launch_missiles"), e.getMessage());
  }

  @Test
  void instrumentsAnUninstrumentedModuleOnUpload() {
    var info = get(node.processes.uploadModule(TestNodes.guest("lines.plain"), false));
    assertTrue(info.instrumented());
    ProcessInfo p = node.run(info.hash(), Engine.INTERPRETER, List.of("50", "10"), Map.of());
    ProcessInfo done = get(node.processes.awaitExit(p.id()));
    assertEquals(0, done.exitCode());
    String out = new String(node.log(p.id(), LogStream.STDOUT), StandardCharsets.UTF_8);
    assertTrue(out.endsWith("end 50\n"), out);
    // the same upload again: same module, no second copy
    assertEquals(
        info.hash(),
        get(node.processes.uploadModule(TestNodes.guest("lines.plain"), false)).hash());
  }

  @Test
  void preemptibleUploadAddsLoopPointsAndStillRunsCorrectly() {
    var info = get(node.processes.uploadModule(TestNodes.guest("lines.plain"), true));
    assertTrue(info.instrumented());
    assertTrue(info.preemptible(), "no env.log_execution import after --log-execution");
    var plain = get(node.processes.uploadModule(TestNodes.guest("lines.plain"), false));
    assertTrue(!plain.hash().equals(info.hash()));
    ProcessInfo p = node.run(info.hash(), Engine.COMPILED, List.of("50", "10"), Map.of());
    assertEquals(0, get(node.processes.awaitExit(p.id())).exitCode());
    String out = new String(node.log(p.id(), LogStream.STDOUT), StandardCharsets.UTF_8);
    assertTrue(out.endsWith("end 50\n"), out);
  }

  @Test
  void refusesToMakeAnAlreadyInstrumentedModulePreemptible() {
    FerryException e =
        fails(
            FerryException.Kind.BAD_REQUEST,
            () -> get(node.processes.uploadModule(TestNodes.guest("lines"), true)));
    assertTrue(e.getMessage().contains("--preemptible"), e.getMessage());
  }

  @Test
  void uploadWithoutWasmOptSaysHowToInstallIt() {
    node.close();
    node =
        new ProcessHarness(
            dir.resolve("other"), Map.of("ferry.runtime.wasm-opt", "/nonexistent/wasm-opt"));
    FerryException e =
        fails(
            FerryException.Kind.UNAVAILABLE,
            () -> get(node.processes.uploadModule(TestNodes.guest("lines.plain"), false)));
    assertTrue(e.getMessage().contains("apt-get install binaryen"), e.getMessage());
    assertTrue(e.getMessage().contains("--asyncify"), e.getMessage());
    // an already instrumented module needs no wasm-opt
    get(node.processes.uploadModule(TestNodes.guest("lines"), false));
  }

  @Test
  void rejectsUnknownModuleAndProcessIds() {
    fails(
        FerryException.Kind.NOT_FOUND,
        () ->
            get(
                node.processes.run(
                    new RunRequest("feedface", null, List.of(), Map.of(), Map.of()))));
    fails(FerryException.Kind.NOT_FOUND, () -> get(node.processes.status("p-nope")));
    fails(FerryException.Kind.NOT_FOUND, () -> get(node.processes.checkpoint("p-nope", false)));
    fails(FerryException.Kind.NOT_FOUND, () -> get(node.processes.restore("p-nope", null)));
    fails(FerryException.Kind.NOT_FOUND, () -> get(node.processes.kill("p-nope")));
    fails(FerryException.Kind.NOT_FOUND, () -> get(node.processes.awaitExit("p-nope")));
    fails(
        FerryException.Kind.NOT_FOUND,
        () -> get(node.processes.readLog("p-nope", LogStream.STDOUT, 0, 10, Duration.ZERO)));
  }

  @Test
  void rejectsFilesOutsideTheSandbox() {
    String hash = node.upload("files");
    FerryException e =
        fails(
            FerryException.Kind.BAD_REQUEST,
            () -> node.run(hash, null, List.of(), Map.of("/../../etc/passwd", new byte[1])));
    assertTrue(e.getMessage().contains("leaves the sandbox"), e.getMessage());
    fails(
        FerryException.Kind.BAD_REQUEST,
        () -> node.run(hash, null, List.of(), Map.of("relative.txt", new byte[1])));
  }

  @Test
  void refusesToRestoreARunningProcessOrCheckpointAFinishedOne() {
    String hash = node.upload("clock");
    ProcessInfo p = node.run(hash, Engine.INTERPRETER, List.of("100000", "1000"), Map.of());
    FerryException e =
        assertThrows(FerryException.class, () -> get(node.processes.restore(p.id(), null)));
    assertEquals(FerryException.Kind.CONFLICT, e.kind());
    assertEquals(ProcessState.RUNNING, get(node.processes.status(p.id())).state());
    get(node.processes.kill(p.id()));
    assertEquals(ProcessState.KILLED, get(node.processes.status(p.id())).state());
    e = assertThrows(FerryException.class, () -> get(node.processes.checkpoint(p.id(), false)));
    assertEquals(FerryException.Kind.CONFLICT, e.kind());
    e = assertThrows(FerryException.class, () -> get(node.processes.kill(p.id())));
    assertEquals(FerryException.Kind.CONFLICT, e.kind());
  }

  @Test
  void killsACheckpointedProcessAndDropsItsImage() {
    String hash = node.upload("clock");
    ProcessInfo p = node.run(hash, Engine.INTERPRETER, List.of("100000", "1000"), Map.of());
    get(node.processes.checkpoint(p.id(), false));
    assertTrue(node.store.table(TableName.IMAGES).contains(p.id()));
    assertEquals(ProcessState.KILLED, get(node.processes.kill(p.id())).state());
    assertTrue(!node.store.table(TableName.IMAGES).contains(p.id()));
  }
}
