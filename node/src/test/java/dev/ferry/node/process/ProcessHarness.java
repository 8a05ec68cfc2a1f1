package dev.ferry.node.process;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.TestNodes;
import dev.ferry.node.runtime.ModuleRegistry;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.RunRequest;
import dev.ferry.statestore.FerryStore;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/** A node's process layer over a real store in a temp dir, without the cluster. */
final class ProcessHarness implements AutoCloseable {
  /** Checkpointed on the first engine, restored on the second: every combination. */
  static final Engine[][] ENGINE_PAIRS = {
    {Engine.INTERPRETER, Engine.INTERPRETER},
    {Engine.COMPILED, Engine.COMPILED},
    {Engine.INTERPRETER, Engine.COMPILED},
    {Engine.COMPILED, Engine.INTERPRETER},
  };

  final FerrySettings settings;
  final FerryStore store;
  final NodeProcesses processes;

  ProcessHarness(Path dir, Map<String, Object> extra) {
    settings = TestNodes.settings(dir, extra);
    store = FerryStore.open(dir.resolve("store"), settings.store().mapSize());
    ModuleRegistry modules = new ModuleRegistry(store, settings.runtime(), dir.resolve("tmp"));
    processes = new NodeProcesses("test-node", settings, store, modules);
  }

  static <T> T get(CompletionStage<T> s) {
    try {
      return s.toCompletableFuture().get(120, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw new IllegalStateException(e.getCause());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  String upload(String guest) {
    return get(processes.uploadModule(TestNodes.guest(guest), false)).hash();
  }

  ProcessInfo run(String hash, Engine engine, List<String> args, Map<String, byte[]> files) {
    return get(processes.run(new RunRequest(hash, engine, args, Map.of(), files)));
  }

  /** The stdout of an uninterrupted run on the compiled engine, which must exit 0. */
  byte[] referenceOutput(String hash, List<String> args) {
    ProcessInfo ref = run(hash, Engine.COMPILED, args, Map.of());
    org.junit.jupiter.api.Assertions.assertEquals(0, get(processes.awaitExit(ref.id())).exitCode());
    return log(ref.id(), LogStream.STDOUT);
  }

  /** Starts a process on the interpreter and waits until its stdout contains {@code text}. */
  String runUntil(String hash, List<String> args, String text) throws InterruptedException {
    String pid = run(hash, Engine.INTERPRETER, args, Map.of()).id();
    while (!new String(log(pid, LogStream.STDOUT), java.nio.charset.StandardCharsets.UTF_8)
        .contains(text)) {
      Thread.sleep(5);
    }
    return pid;
  }

  /** The migration bundle of a frozen process, serialized as the source sends it. */
  byte[] bundle(String pid, dev.ferry.node.runtime.WasmProcess.Frozen f, boolean includeModule)
      throws java.io.IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    processes.bundle(pid, f, includeModule, false).writeTo(out);
    return out.toByteArray();
  }

  byte[] log(String pid, LogStream s) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    long off = 0;
    while (true) {
      LogChunk c = get(processes.readLog(pid, s, off, 1 << 20, Duration.ZERO));
      out.writeBytes(c.data());
      off = c.nextOffset();
      if (c.data().length == 0) {
        return out.toByteArray();
      }
    }
  }

  @Override
  public void close() {
    processes.close();
    store.close();
  }
}
