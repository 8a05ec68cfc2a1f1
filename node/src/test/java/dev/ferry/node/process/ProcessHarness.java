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
