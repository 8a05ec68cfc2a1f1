package dev.ferry.api;

import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ModuleInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessService;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * An in-memory {@link ProcessService} for API tests: processes do nothing by themselves; tests
 * write their output ({@link #append}) and end them ({@link #exit}, {@link #fail}). It follows the
 * service contract's states and failures (404 unknown pid, 409 wrong state, 400 bad module).
 */
public final class FakeProcessService implements ProcessService, AutoCloseable {
  /** The default engine of this fake "node". */
  public static final Engine DEFAULT_ENGINE = Engine.INTERPRETER;

  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "fake-service-timer");
            t.setDaemon(true);
            return t;
          });
  private final Map<String, ModuleInfo> modules = new LinkedHashMap<>();
  private final Map<String, FakeProcess> processes = new LinkedHashMap<>();
  private int nextPid = 1;

  /** The last RunRequest received, for assertions. */
  public volatile RunRequest lastRun;

  /** When set, every list() fails with this (to test 500 mapping). */
  public volatile RuntimeException listFailure;

  private static final class FakeProcess {
    final String id;
    ProcessState state = ProcessState.RUNNING;
    Engine engine;
    final String moduleHash;
    final List<String> args;
    final Map<String, byte[]> files;
    final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    Integer exitCode;
    String error;
    final Instant startedAt = Instant.parse("2025-01-02T03:04:05.123Z");
    Instant endedAt;
    CheckpointResult lastCheckpoint;
    final CompletableFuture<ProcessInfo> exit = new CompletableFuture<>();

    FakeProcess(
        String id, Engine engine, String moduleHash, List<String> args, Map<String, byte[]> files) {
      this.id = id;
      this.engine = engine;
      this.moduleHash = moduleHash;
      this.args = args;
      this.files = new LinkedHashMap<>(files);
    }
  }

  // ---------------------------------------------------------------- test controls

  /** Stores a module without validation and starts a process of it; returns its pid. */
  public synchronized String start(String... args) {
    String hash = "0".repeat(64);
    modules.putIfAbsent(hash, new ModuleInfo(hash, 8, true, false));
    String pid = "p-" + nextPid++;
    processes.put(pid, new FakeProcess(pid, DEFAULT_ENGINE, hash, List.of(args), Map.of()));
    return pid;
  }

  public synchronized void append(String pid, LogStream stream, byte[] bytes) {
    FakeProcess p = get(pid);
    (stream == LogStream.STDOUT ? p.stdout : p.stderr).writeBytes(bytes);
  }

  public void append(String pid, String text) {
    append(pid, LogStream.STDOUT, text.getBytes(StandardCharsets.UTF_8));
  }

  public synchronized void putFile(String pid, String guestPath, byte[] content) {
    get(pid).files.put(guestPath, content);
  }

  public synchronized void exit(String pid, int code) {
    end(pid, ProcessState.EXITED, code, null);
  }

  public synchronized void fail(String pid, String error) {
    end(pid, ProcessState.FAILED, null, error);
  }

  public synchronized ProcessState state(String pid) {
    return get(pid).state;
  }

  public synchronized int moduleCount() {
    return modules.size();
  }

  private void end(String pid, ProcessState state, Integer code, String error) {
    FakeProcess p = get(pid);
    p.state = state;
    p.exitCode = code;
    p.error = error;
    p.endedAt = Instant.parse("2025-01-02T03:05:00Z");
    p.exit.complete(info(p));
  }

  // ---------------------------------------------------------------- the service

  @Override
  public synchronized CompletionStage<ModuleInfo> uploadModule(byte[] wasm, boolean preemptible) {
    if (wasm.length < 8 || !Arrays.equals(Arrays.copyOf(wasm, 4), new byte[] {0, 'a', 's', 'm'})) {
      return failed(
          FerryException.badRequest("not a WebAssembly module: it does not start with \\0asm"));
    }
    String hash = sha256(wasm);
    ModuleInfo info = new ModuleInfo(hash, wasm.length, true, preemptible);
    modules.put(hash, info);
    return done(info);
  }

  @Override
  public synchronized CompletionStage<ProcessInfo> run(RunRequest request) {
    lastRun = request;
    if (!modules.containsKey(request.moduleHash())) {
      return failed(FerryException.notFound("no module '" + request.moduleHash() + "'"));
    }
    String pid = "p-" + nextPid++;
    FakeProcess p =
        new FakeProcess(
            pid,
            request.engine() == null ? DEFAULT_ENGINE : request.engine(),
            request.moduleHash(),
            request.args(),
            request.files());
    processes.put(pid, p);
    return done(info(p));
  }

  @Override
  public synchronized CompletionStage<List<ProcessInfo>> list() {
    if (listFailure != null) {
      return failed(listFailure);
    }
    List<ProcessInfo> all = new ArrayList<>();
    for (FakeProcess p : processes.values()) {
      all.add(info(p));
    }
    return done(all);
  }

  @Override
  public synchronized CompletionStage<ProcessInfo> status(String pid) {
    FakeProcess p = processes.get(pid);
    return p == null ? failed(noProcess(pid)) : done(info(p));
  }

  @Override
  public CompletionStage<LogChunk> readLog(
      String pid, LogStream stream, long offset, int maxBytes, Duration waitForData) {
    LogChunk now;
    synchronized (this) {
      FakeProcess p = processes.get(pid);
      if (p == null) {
        return failed(noProcess(pid));
      }
      now = chunk(p, stream, offset, maxBytes);
    }
    if (now.data().length > 0 || now.complete() || waitForData.isZero()) {
      return done(now);
    }
    CompletableFuture<LogChunk> result = new CompletableFuture<>();
    long deadline = System.nanoTime() + waitForData.toNanos();
    poll(result, pid, stream, offset, maxBytes, deadline);
    return result;
  }

  private void poll(
      CompletableFuture<LogChunk> result,
      String pid,
      LogStream stream,
      long offset,
      int max,
      long deadline) {
    timer.schedule(
        () -> {
          LogChunk c;
          synchronized (this) {
            c = chunk(processes.get(pid), stream, offset, max);
          }
          if (c.data().length > 0 || c.complete() || System.nanoTime() >= deadline) {
            result.complete(c);
          } else {
            poll(result, pid, stream, offset, max, deadline);
          }
        },
        5,
        TimeUnit.MILLISECONDS);
  }

  private static LogChunk chunk(FakeProcess p, LogStream stream, long offset, int max) {
    byte[] all = (stream == LogStream.STDOUT ? p.stdout : p.stderr).toByteArray();
    int from = (int) Math.min(offset, all.length);
    int to = (int) Math.min(all.length, from + (long) max);
    byte[] data = Arrays.copyOfRange(all, from, to);
    return new LogChunk(offset, data, from + data.length, p.state.isFinal() && to == all.length);
  }

  @Override
  public synchronized CompletionStage<ProcessInfo> awaitExit(String pid) {
    FakeProcess p = processes.get(pid);
    return p == null ? failed(noProcess(pid)) : p.exit.thenApply(i -> i);
  }

  @Override
  public synchronized CompletionStage<ProcessInfo> kill(String pid) {
    FakeProcess p = processes.get(pid);
    if (p == null) {
      return failed(noProcess(pid));
    }
    if (p.state.isFinal()) {
      return failed(
          FerryException.conflict(
              "process '" + pid + "' has already ended (" + p.state.name().toLowerCase() + ")"));
    }
    end(pid, ProcessState.KILLED, null, null);
    return done(info(p));
  }

  @Override
  public synchronized CompletionStage<byte[]> readFile(String pid, String guestPath) {
    FakeProcess p = processes.get(pid);
    if (p == null) {
      return failed(noProcess(pid));
    }
    byte[] content = p.files.get(guestPath);
    return content == null
        ? failed(FerryException.notFound("no file '" + guestPath + "' in process " + pid))
        : done(content);
  }

  @Override
  public synchronized CompletionStage<CheckpointResult> checkpoint(
      String pid, boolean leaveRunning) {
    FakeProcess p = processes.get(pid);
    if (p == null) {
      return failed(noProcess(pid));
    }
    if (p.state != ProcessState.RUNNING) {
      return failed(
          FerryException.conflict(
              "process '" + pid + "' is " + p.state.name().toLowerCase() + ", not running"));
    }
    CheckpointResult r =
        new CheckpointResult(pid, 1234, 567, 8901, 3 * 1024 * 1024 / 2, 24, leaveRunning);
    p.lastCheckpoint = r;
    if (!leaveRunning) {
      p.state = ProcessState.CHECKPOINTED;
    }
    return done(r);
  }

  @Override
  public synchronized CompletionStage<ProcessInfo> restore(String pid, Engine engine) {
    FakeProcess p = processes.get(pid);
    if (p == null) {
      return failed(noProcess(pid));
    }
    if (p.state != ProcessState.CHECKPOINTED) {
      return failed(
          FerryException.conflict(
              "process '" + pid + "' is " + p.state.name().toLowerCase() + ", not checkpointed"));
    }
    p.state = ProcessState.RUNNING;
    p.engine = engine == null ? DEFAULT_ENGINE : engine;
    return done(info(p));
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }

  // ---------------------------------------------------------------- helpers

  private FakeProcess get(String pid) {
    FakeProcess p = processes.get(pid);
    if (p == null) {
      throw noProcess(pid);
    }
    return p;
  }

  private static ProcessInfo info(FakeProcess p) {
    return new ProcessInfo(
        p.id,
        p.state,
        p.engine,
        "fake-node",
        p.moduleHash,
        p.args,
        p.exitCode,
        p.stdout.size(),
        p.stderr.size(),
        p.startedAt,
        p.endedAt,
        p.lastCheckpoint,
        p.error);
  }

  private static FerryException noProcess(String pid) {
    return FerryException.notFound("no process '" + pid + "'");
  }

  private static <T> CompletionStage<T> done(T value) {
    return CompletableFuture.completedFuture(value);
  }

  private static <T> CompletionStage<T> failed(Throwable t) {
    return CompletableFuture.failedFuture(t);
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
