package dev.ferry.node.process;

import dev.ferry.config.FerrySettings;
import dev.ferry.node.DaemonThreads;
import dev.ferry.node.runtime.LoadedModule;
import dev.ferry.node.runtime.ModuleRegistry;
import dev.ferry.node.runtime.NoMigrationPointException;
import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ModuleInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessService;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.node.service.RunRequest;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.node.wasi.WasiException;
import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.TableName;
import dev.ferry.statestore.WriteBatch;
import dev.ferry.transport.proto.CheckpointInfo;
import dev.ferry.transport.proto.ProcessImage;
import dev.ferry.transport.proto.ProcessRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The processes of one node: starts them, keeps their records and logs in the node's store,
 * checkpoints and restores them, and on shutdown checkpoints every running process so that the next
 * start of the same data directory resumes it.
 *
 * <p>Each process runs on its own thread ({@link WasmProcess}); operations on one process are
 * serialized; blocking work runs on this class's executor, never on the caller's thread.
 *
 * <p>Not guaranteed: a process whose node dies without a shutdown (kill -9, power loss) is not
 * resumed automatically; if it had a checkpoint it is left CHECKPOINTED at that checkpoint,
 * otherwise FAILED.
 */
public final class NodeProcesses implements ProcessService, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeProcesses.class);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final String nodeName;
  private final FerrySettings settings;
  private final FerryStore store;
  private final ModuleRegistry modules;
  private final Path sandboxes;

  /** Every node sees the one sandbox directory (data-segment {@code files = shared}). */
  private final boolean sharedSandboxes;

  private final Engine defaultEngine;
  private final dev.ferry.node.paging.PagingFiles paging;
  private final Map<String, Entry> processes = new ConcurrentHashMap<>();

  /** Processes that migrated away from this node, and where to. */
  private final Map<String, String> moved = new ConcurrentHashMap<>();

  /** Processes that left by a commit, until their copy in the store is gone (see forgetter). */
  private final Map<String, CompletableFuture<Void>> forgetting = new ConcurrentHashMap<>();

  /** The store work of commits at this node (a moved process's copy deleted), in order. */
  private final java.util.concurrent.ExecutorService forgetter =
      java.util.concurrent.Executors.newSingleThreadExecutor(
          dev.ferry.node.DaemonThreads.named("ferry-forget"));

  /**
   * Processes that arrived by a migration just before this node stopped, stored durably but not yet
   * recorded as running here, by migration id: only their source knows whether it committed (see
   * {@link #settleInDoubt}). Neither run nor dropped until then.
   */
  private final Map<String, InDoubt> inDoubt = new ConcurrentHashMap<>();

  private final ExecutorService ops =
      Executors.newCachedThreadPool(DaemonThreads.named("ferry-ops"));
  private final ScheduledExecutorService flusher =
      Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("ferry-log-flush"));
  private volatile boolean closing;
  private volatile Listener listener = (pid, what, code, engine, error) -> {};

  /** Told of every process start, end, checkpoint and restore on this node. */
  @FunctionalInterface
  public interface Listener {
    void on(String pid, String what, Integer exitCode, String engine, String error);
  }

  public void setListener(Listener l) {
    this.listener = l;
  }

  /**
   * {@code l}, its notices (output held, stored again) going out as events of process {@code id}.
   */
  private ProcessLog told(String id, ProcessLog l) {
    l.notices((what, detail) -> listener.on(id, what, null, null, detail));
    return l;
  }

  /** The paging files of this node's paged processes and the replicas it keeps for others. */
  public dev.ferry.node.paging.PagingFiles paging() {
    return paging;
  }

  /** One process as this node knows it. Fields are guarded by the entry's monitor. */
  private static final class Entry {
    final String id;
    final ProcessLog log;
    final Sandbox sandbox;
    final CompletableFuture<ProcessInfo> finished = new CompletableFuture<>();
    ProcessRecord record;
    WasmProcess running;

    /** Its end is known here but not yet in the store (which refused it); set under this. */
    volatile boolean endUnrecorded;

    Entry(String id, ProcessRecord record, ProcessLog log, Sandbox sandbox) {
      this.id = id;
      this.record = record;
      this.log = log;
      this.sandbox = sandbox;
    }
  }

  public NodeProcesses(
      String nodeName, FerrySettings settings, FerryStore store, ModuleRegistry modules) {
    this.nodeName = nodeName;
    this.settings = settings;
    this.store = store;
    this.modules = modules;
    // With data-segment files = shared, every node keeps sandboxes in the one directory they all
    // see (the paper's NFS): a migrated process reopens its files there, nothing is copied.
    com.typesafe.config.Config ds = settings.strategy("data-segment");
    this.sharedSandboxes = ds.hasPath("files") && ds.getString("files").equals("shared");
    this.sandboxes =
        sharedSandboxes
            ? Path.of(ds.getString("shared-dir"))
            : settings.node().dataDir().resolve("sandboxes");
    this.defaultEngine = Engine.parse(settings.node().engine());
    dev.ferry.node.runtime.ProcessThreads.prepare(); // a thread for the first process
    dev.ferry.strategies.GfvmSettings gfvm;
    try {
      gfvm = dev.ferry.strategies.GfvmSettings.from(settings.strategy("gfvm"));
    } catch (dev.ferry.config.InvalidSettingsException ex) {
      if (settings.strategyNames().contains("gfvm")) {
        throw ex;
      }
      gfvm = dev.ferry.strategies.GfvmSettings.DEFAULTS;
    }
    this.paging =
        new dev.ferry.node.paging.PagingFiles(
            nodeName,
            new dev.ferry.node.paging.PageStore(store),
            gfvm,
            (pid, what, detail) -> listener.on(pid, what, null, null, detail));
    long every = Math.max(1, settings.runtime().logFlushInterval().toMillis());
    flusher.scheduleWithFixedDelay(() -> flushLogs(false), every, every, TimeUnit.MILLISECONDS);
  }

  // ---------------------------------------------------------------------------------------------
  // Start-up recovery

  /**
   * Loads every process record of this node. Processes checkpointed by the last shutdown are
   * restored; processes that were running when the node died without a shutdown are left
   * CHECKPOINTED at their last checkpoint, or marked FAILED if they had none. A process that had
   * arrived by a migration but was not yet recorded as running here is held in doubt ({@link
   * #inDoubt}) until its source says how that migration ended.
   */
  public void recover() {
    java.util.Set<String> held = collectInDoubt();
    loadMovedMarks();
    deleteDiscardedTrees();
    for (String id : store.table(TableName.PROCESSES).keys()) {
      if (held.contains(id)) {
        continue;
      }
      ProcessRecord rec;
      try {
        rec = ProcessRecord.parseFrom(store.table(TableName.PROCESSES).get(id).orElseThrow());
      } catch (IOException e) {
        log.error("process record {} is corrupt and was skipped: {}", id, e.toString());
        continue;
      }
      Entry e;
      try {
        e = storedEntry(id, rec);
      } catch (IOException ex) {
        log.error("sandbox of process {} cannot be opened: {}", id, ex.toString());
        continue;
      }
      processes.put(id, e);
      if (isFinal(rec.getState())) {
        e.log.close();
        e.finished.complete(info(e));
        continue;
      }
      boolean hasImage = store.table(TableName.IMAGES).contains(id);
      if (rec.getState() == ProcessRecord.State.RUNNING && rec.getResumeOnStart() && hasImage) {
        try {
          synchronized (e) {
            restoreLocked(e, Engine.parse(rec.getEngine()));
          }
          log.info("process {} resumed after node restart", id);
        } catch (RuntimeException ex) {
          log.error("process {} could not be resumed: {}", id, ex.getMessage());
          update(
              e,
              rec.toBuilder()
                  .setState(ProcessRecord.State.CHECKPOINTED)
                  .setError("could not be resumed after node restart: " + ex.getMessage())
                  .build());
        }
      } else if (rec.getState() == ProcessRecord.State.RUNNING
          || rec.getState() == ProcessRecord.State.MIGRATING) {
        if (hasImage) {
          update(
              e,
              rec.toBuilder()
                  .setState(ProcessRecord.State.CHECKPOINTED)
                  .setError(
                      "the node stopped without a shutdown; left at its last checkpoint"
                          + " (ferry restore "
                          + id
                          + " resumes it from there)")
                  .build());
        } else {
          markFinal(
              e,
              rec.toBuilder()
                  .setState(ProcessRecord.State.FAILED)
                  .setError("the node stopped without a shutdown and the process had no checkpoint")
                  .build());
        }
      }
    }
    store.sync();
  }

  /** The entry of a process whose record, logs and sandbox this node has stored. */
  private Entry storedEntry(String id, ProcessRecord rec) throws IOException {
    return new Entry(
        id, rec, told(id, new ProcessLog(id, store.logs())), new Sandbox(sandboxes.resolve(id)));
  }

  // ---------------------------------------------------------------------------------------------
  // ProcessService

  @Override
  public CompletionStage<ModuleInfo> uploadModule(byte[] wasm, boolean preemptible) {
    return async(() -> modules.upload(wasm, preemptible));
  }

  @Override
  public CompletionStage<ProcessInfo> run(RunRequest request) {
    return async(() -> start(request));
  }

  /** Starts a process under an id chosen by the caller (the cluster picks ids before placing). */
  public CompletionStage<ProcessInfo> run(String id, RunRequest req) {
    return async(() -> startWithId(id, req));
  }

  /** Starts a process under an id chosen by the caller (the cluster picks ids before placing). */
  public ProcessInfo startWithId(String id, RunRequest req) {
    if (processes.containsKey(id)) {
      throw FerryException.conflict("process " + id + " already exists");
    }
    return start(id, req);
  }

  private ProcessInfo start(RunRequest req) {
    return start(newId(), req);
  }

  private ProcessInfo start(String id, RunRequest req) {
    refuseWhenClosing();
    if (req.moduleHash() == null || req.moduleHash().isBlank()) {
      throw FerryException.badRequest("no module given: upload one first and pass its hash");
    }
    LoadedModule module = modules.load(req.moduleHash());
    Engine engine = req.engine() != null ? req.engine() : defaultEngine;
    List<String> env = new ArrayList<>();
    if (req.env() != null) {
      req.env()
          .forEach(
              (k, v) -> {
                if (k == null || k.isEmpty() || k.contains("=") || k.indexOf('\0') >= 0) {
                  throw FerryException.badRequest("invalid environment variable name '" + k + "'");
                }
                env.add(k + "=" + (v == null ? "" : v));
              });
    }
    List<String> argv = new ArrayList<>();
    argv.add("main.wasm");
    if (req.args() != null) {
      argv.addAll(req.args());
    }
    Map<String, byte[]> files = req.files() == null ? Map.of() : req.files();
    List<String> guestPaths = new ArrayList<>();
    for (String g : files.keySet()) {
      guestPaths.add(checkGuestFilePath(g));
    }
    Sandbox sandbox;
    try {
      sandbox = new Sandbox(sandboxes.resolve(id));
      int i = 0;
      for (byte[] content : files.values()) {
        Path host = sandbox.hostPath(guestPaths.get(i++));
        Files.createDirectories(host.getParent());
        Files.write(host, content);
      }
    } catch (IOException | WasiException e) {
      deleteTree(sandboxes.resolve(id));
      throw new FerryException(
          FerryException.Kind.INTERNAL, "cannot prepare the process's sandbox: " + e, e);
    }
    ProcessRecord.Builder rb =
        ProcessRecord.newBuilder()
            .setId(id)
            .setModuleHash(module.hash())
            .setEngine(engine.wireName())
            .addAllArgs(argv.subList(1, argv.size()))
            .addAllEnv(env)
            .setState(ProcessRecord.State.RUNNING)
            .setStartedAtMicros(nowMicros())
            .setNode(nodeName);
    int pageSize = paging.settings().pageSize();
    if (req.paged()) {
      rb.setPaging(
          dev.ferry.transport.proto.Paging.newBuilder()
              .setPageSize(pageSize)
              .setFile(dev.ferry.node.paging.PagingFiles.newFile(id)));
    }
    ProcessRecord rec = rb.build();
    Entry e = new Entry(id, rec, told(id, new ProcessLog(id, store.logs())), sandbox);
    synchronized (e) {
      try {
        e.running =
            WasmProcess.start(
                spec(e, module, engine, argv, env),
                req.paged()
                    ? dev.ferry.node.memory.PagedMemory.factory(
                        pageSize, dev.ferry.node.memory.PageSource.zeros())
                    : null);
      } catch (IOException | RuntimeException ex) {
        deleteTree(sandboxes.resolve(id));
        throw FerryException.badRequest("the module cannot be started: " + ex.getMessage());
      }
      if (req.paged()) {
        paging.create(
            id, rec.getPaging().getFile(), (dev.ferry.node.memory.PagedMemory) e.running.memory());
      }
      processes.put(id, e);
      persist(rec);
      watch(e, e.running);
    }
    listener.on(id, "started", null, engine.wireName(), null);
    return info(e);
  }

  private WasmProcess.Spec spec(
      Entry e, LoadedModule module, Engine engine, List<String> argv, List<String> env) {
    return new WasmProcess.Spec(
        e.id,
        module,
        engine,
        e.sandbox,
        argv,
        env,
        e.log,
        settings.runtime().asyncifyBufferBytes(),
        settings.runtime().maxMemoryPages());
  }

  /** Reacts to the end of a process thread. */
  private void watch(Entry e, WasmProcess p) {
    p.end()
        .whenComplete(
            (end, err) -> {
              synchronized (e) {
                if (e.running != p) {
                  return; // superseded: checkpointed and stopped, or restored anew
                }
                e.running = null;
                ProcessRecord.Builder b = e.record.toBuilder().setEndedAtMicros(nowMicros());
                switch (end.outcome()) {
                  case EXITED:
                    b.setState(ProcessRecord.State.EXITED)
                        .setHasExitCode(true)
                        .setExitCode(end.exitCode());
                    break;
                  case KILLED:
                    b.setState(ProcessRecord.State.KILLED);
                    break;
                  case FAILED:
                    b.setState(ProcessRecord.State.FAILED).setError(String.valueOf(end.error()));
                    break;
                  case FROZEN:
                  default:
                    return; // the checkpoint that stopped it has recorded its state
                }
                if (e.record.hasPaging()) {
                  paging.release(e.id, false, List.of());
                }
                markFinal(e, b.build());
              }
            });
  }

  @Override
  public CompletionStage<List<ProcessInfo>> list() {
    List<ProcessInfo> all = new ArrayList<>();
    for (Entry e : processes.values()) {
      all.add(info(e));
    }
    all.sort(Comparator.comparing(ProcessInfo::startedAt).thenComparing(ProcessInfo::id));
    return CompletableFuture.completedFuture(all);
  }

  @Override
  public CompletionStage<ProcessInfo> status(String pid) {
    return async(() -> info(entry(pid)));
  }

  @Override
  public CompletionStage<LogChunk> readLog(
      String pid, LogStream stream, long offset, int maxBytes, Duration waitForData) {
    return async(
        () -> {
          Entry e = entry(pid);
          int s = stream == LogStream.STDERR ? 2 : 1;
          if (offset < 0) {
            throw FerryException.badRequest("offset must be >= 0, got " + offset);
          }
          if (maxBytes <= 0) {
            throw FerryException.badRequest("max must be > 0, got " + maxBytes);
          }
          long length = e.log.length(s);
          if (offset > length && e.log.isClosed()) {
            throw FerryException.badRequest(
                "offset "
                    + offset
                    + " is past the end of the "
                    + stream.name().toLowerCase()
                    + " log ("
                    + length
                    + " bytes)");
          }
          if (offset >= length && waitForData != null && !waitForData.isZero()) {
            try {
              e.log.awaitData(s, offset, waitForData.toMillis());
            } catch (InterruptedException ex) {
              Thread.currentThread().interrupt();
            }
          }
          byte[] data = e.log.read(s, offset, Math.min(maxBytes, 4 << 20));
          long next = offset + data.length;
          boolean complete = e.log.isClosed() && next >= e.log.length(s);
          return new LogChunk(offset, data, next, complete);
        });
  }

  @Override
  public CompletionStage<ProcessInfo> awaitExit(String pid) {
    try {
      return entry(pid).finished.thenApply(x -> x);
    } catch (FerryException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  @Override
  public CompletionStage<ProcessInfo> kill(String pid) {
    return async(
        () -> {
          Entry e = entry(pid);
          WasmProcess p;
          synchronized (e) {
            ProcessRecord.State st = e.record.getState();
            if (isFinal(st)) {
              throw FerryException.conflict(
                  "process " + pid + " has already ended (" + stateName(st) + ")");
            }
            p = e.running;
            if (p == null) {
              // checkpointed: it exists only as an image
              store.table(TableName.IMAGES).delete(pid);
              markFinal(
                  e,
                  e.record.toBuilder()
                      .setState(ProcessRecord.State.KILLED)
                      .setEndedAtMicros(nowMicros())
                      .build());
              return info(e);
            }
          }
          p.kill();
          try {
            e.finished.get(10, TimeUnit.SECONDS);
          } catch (TimeoutException ex) {
            throw new FerryException(
                FerryException.Kind.TIMEOUT, "process " + pid + " did not stop within 10 s");
          } catch (InterruptedException | ExecutionException ex) {
            throw new FerryException(FerryException.Kind.INTERNAL, ex.toString(), ex);
          }
          return info(e);
        });
  }

  @Override
  public CompletionStage<byte[]> readFile(String pid, String guestPath) {
    return async(
        () -> {
          Entry e = entry(pid);
          String g = checkGuestFilePath(guestPath);
          Path host;
          try {
            host = e.sandbox.hostPath(g);
          } catch (WasiException ex) {
            throw FerryException.badRequest("path '" + guestPath + "' leaves the sandbox");
          }
          if (Files.isDirectory(host, LinkOption.NOFOLLOW_LINKS)) {
            throw FerryException.badRequest("'" + g + "' is a directory");
          }
          try {
            return Files.readAllBytes(host);
          } catch (NoSuchFileException ex) {
            throw FerryException.notFound("process " + pid + " has no file '" + g + "'");
          } catch (IOException ex) {
            throw new FerryException(FerryException.Kind.INTERNAL, ex.toString(), ex);
          }
        });
  }

  @Override
  public CompletionStage<CheckpointResult> checkpoint(String pid, boolean leaveRunning) {
    return async(() -> checkpointNow(entry(pid), leaveRunning, false));
  }

  private CheckpointResult checkpointNow(Entry e, boolean leaveRunning, boolean forShutdown) {
    WasmProcess p;
    synchronized (e) {
      ProcessRecord.State st = e.record.getState();
      if (st != ProcessRecord.State.RUNNING || e.running == null) {
        throw FerryException.conflict(
            "process " + e.id + " is " + stateName(st) + ", not running: nothing to checkpoint");
      }
      p = e.running;
    }
    WasmProcess.Frozen f = freeze(p, "checkpoint of " + e.id + " failed: ");
    synchronized (e) {
      long t0 = System.nanoTime();
      ProcessImage image;
      ProcessRecord rec;
      byte[] bytes;
      try {
        e.log.flush();
        image =
            f.image().toBuilder()
                .setStdoutLength(e.log.length(1))
                .setStderrLength(e.log.length(2))
                .build();
        bytes = image.toByteArray();
        CheckpointInfo ci =
            CheckpointInfo.newBuilder()
                .setFreezeMicros(f.freezeNanos() / 1000)
                .setCaptureMicros(f.captureNanos() / 1000)
                .setImageBytes(bytes.length)
                .setMemoryPages(image.getMemory().getPages())
                .setLeftRunning(leaveRunning)
                .build();
        rec =
            e.record.toBuilder()
                .setState(
                    leaveRunning
                        ? ProcessRecord.State.RUNNING
                        : forShutdown
                            ? ProcessRecord.State.RUNNING
                            : ProcessRecord.State.CHECKPOINTED)
                .setResumeOnStart(forShutdown)
                .setLastCheckpoint(ci)
                .clearError()
                .build();
        ProcessRecord toWrite = rec;
        store.write(
            b -> {
              b.put(TableName.IMAGES, e.id, bytes);
              b.put(TableName.PROCESSES, e.id, toWrite.toByteArray());
            });
        store.sync();
      } catch (RuntimeException ex) {
        f.resume();
        throw new FerryException(
            FerryException.Kind.INTERNAL,
            "the image of "
                + e.id
                + " could not be written ("
                + ex.getMessage()
                + "); the process keeps running",
            ex);
      }
      long writeMicros = (System.nanoTime() - t0) / 1000;
      rec =
          rec.toBuilder()
              .setLastCheckpoint(rec.getLastCheckpoint().toBuilder().setWriteMicros(writeMicros))
              .build();
      e.record = rec;
      persist(rec);
      if (leaveRunning) {
        f.resume();
      } else {
        e.running = null;
        f.stop();
        if (rec.hasPaging()) {
          // The image holds the whole memory: a restore starts a new paging file.
          paging.release(e.id, false, List.of());
        }
      }
      listener.on(e.id, "checkpointed", null, rec.getEngine(), null);
      return ProtoRecords.checkpoint(e.id, rec.getLastCheckpoint());
    }
  }

  @Override
  public CompletionStage<ProcessInfo> restore(String pid, Engine engine) {
    return async(
        () -> {
          refuseWhenClosing();
          Entry e = entry(pid);
          synchronized (e) {
            ProcessRecord.State st = e.record.getState();
            if (st != ProcessRecord.State.CHECKPOINTED) {
              throw FerryException.conflict(
                  "process "
                      + pid
                      + " is "
                      + stateName(st)
                      + "; only a checkpointed process can be restored");
            }
            restoreLocked(e, engine != null ? engine : defaultEngine);
            return info(e);
          }
        });
  }

  /** Resumes e from its stored image. Caller holds e's monitor. */
  private void restoreLocked(Entry e, Engine engine) {
    restoreLocked(e, engine, storedImage(e), w -> {});
  }

  private ProcessImage storedImage(Entry e) {
    byte[] bytes =
        store
            .table(TableName.IMAGES)
            .get(e.id)
            .orElseThrow(
                () ->
                    new FerryException(
                        FerryException.Kind.INTERNAL, "process " + e.id + " has no stored image"));
    ProcessImage image;
    try {
      image = ProcessImage.parseFrom(bytes);
    } catch (IOException ex) {
      throw new FerryException(
          FerryException.Kind.INTERNAL,
          "the image of " + e.id + " is corrupt: " + ex.getMessage(),
          ex);
    }
    return image;
  }

  /**
   * Restores {@code image} into a running process; the record saying it runs is written in one
   * transaction with {@code alsoWrite}.
   */
  private void restoreLocked(
      Entry e,
      Engine engine,
      ProcessImage image,
      java.util.function.Consumer<WriteBatch> alsoWrite) {
    // Logs cut back to the image's lengths, so that no byte is repeated.
    e.log.truncate(image.getStdoutLength(), image.getStderrLength());
    runLocked(e, prepareLocked(e, engine, image, false), alsoWrite);
    listener.on(e.id, "restored", null, engine.wireName(), null);
  }

  /**
   * A process rebuilt from its image (instance, memory, files reopened) whose thread has not run
   * yet: {@link #runLocked} makes it the entry's running process.
   */
  private record Restored(
      WasmProcess process,
      Engine engine,
      dev.ferry.transport.proto.Paging paging,
      dev.ferry.node.paging.PagingFiles.FileSource fileSource) {}

  /**
   * Rebuilds the process of {@code image}; with {@code held} its thread waits for {@link
   * WasmProcess#release}. Nothing is written: if what follows fails, {@link WasmProcess#kill} is
   * all there is to undo.
   */
  private Restored prepareLocked(Entry e, Engine engine, ProcessImage image, boolean held) {
    LoadedModule module = modules.load(image.getModuleHash());
    List<String> argv = new ArrayList<>(image.getWasi().getArgsList());
    java.util.function.Function<
            com.dylibso.chicory.wasm.types.MemoryLimits, com.dylibso.chicory.runtime.Memory>
        memory = null;
    dev.ferry.transport.proto.Paging pg = e.record.hasPaging() ? e.record.getPaging() : null;
    boolean fromFile = pg != null && image.getMemory().getInPagingFile();
    if (image.getMemory().getInPagingFile() && pg == null) {
      throw FerryException.conflict(
          "process " + e.id + " has an image without memory but no paging file");
    }
    dev.ferry.node.paging.PagingFiles.FileSource fileSource = null;
    if (fromFile) {
      fileSource = paging.open(e.id, pg);
      memory = dev.ferry.node.memory.PagedMemory.restoreFactory(pg.getPageSize(), fileSource);
    } else if (pg != null) {
      // A full image: the memory is rebuilt from it, into a new paging file.
      pg =
          pg.toBuilder()
              .setFile(dev.ferry.node.paging.PagingFiles.newFile(e.id))
              .clearReplicas()
              .clearFetchFrom()
              .clearFetchFile()
              .clearRemoteBacked()
              .build();
      memory =
          dev.ferry.node.memory.PagedMemory.factory(
              pg.getPageSize(), dev.ferry.node.memory.PageSource.zeros());
    }
    WasmProcess p;
    try {
      WasmProcess.Spec spec = spec(e, module, engine, argv, image.getWasi().getEnvList());
      p =
          held
              ? WasmProcess.restoreHeld(spec, image, memory)
              : WasmProcess.restore(spec, image, memory);
    } catch (IOException | RuntimeException ex) {
      throw FerryException.conflict(
          "process "
              + e.id
              + " cannot be restored: "
              + ex.getMessage()
              + "; it stays checkpointed");
    }
    return new Restored(p, engine, pg, fromFile ? fileSource : null);
  }

  /** Makes a rebuilt process the entry's running one and records that it runs. */
  private void runLocked(Entry e, Restored r, java.util.function.Consumer<WriteBatch> alsoWrite) {
    writeRunning(startLocked(e, r), alsoWrite);
    watch(e, r.process());
  }

  /** Records that a process runs here, with {@code alsoWrite} in the same transaction. */
  private void writeRunning(
      ProcessRecord running, java.util.function.Consumer<WriteBatch> alsoWrite) {
    store.write(
        w -> {
          w.put(TableName.PROCESSES, running.getId(), running.toByteArray());
          alsoWrite.accept(w);
        });
  }

  /**
   * {@link #runLocked} without writing the record (the caller writes it) or watching the process
   * (the caller does, once it has): the entry now holds the process, RUNNING. Returns the record.
   */
  private ProcessRecord startLocked(Entry e, Restored r) {
    WasmProcess p = r.process();
    e.running = p;
    dev.ferry.transport.proto.Paging pg = r.paging();
    if (pg != null) {
      var mem = (dev.ferry.node.memory.PagedMemory) p.memory();
      if (r.fileSource() != null) {
        paging.adopt(e.id, pg, mem, r.fileSource());
      } else {
        paging.create(e.id, pg.getFile(), mem);
      }
      e.record = e.record.toBuilder().setPaging(pg).build();
    }
    e.record =
        e.record.toBuilder()
            .setState(ProcessRecord.State.RUNNING)
            .setEngine(r.engine().wireName())
            .setResumeOnStart(false)
            .setNode(nodeName)
            .clearError()
            .build();
    return e.record;
  }

  // ---------------------------------------------------------------------------------------------
  // Migration, source side

  /** True if this node holds the process (running, checkpointed, migrating or ended). */
  public boolean has(String pid) {
    return processes.containsKey(pid);
  }

  /** The state of a process this node holds, if it holds it. */
  public java.util.Optional<ProcessState> state(String pid) {
    Entry e = processes.get(pid);
    if (e == null) {
      return java.util.Optional.empty();
    }
    synchronized (e) {
      return java.util.Optional.of(ProcessState.valueOf(e.record.getState().name()));
    }
  }

  /**
   * Freezes a process at its next migration point within the freeze timeout; no migration point is
   * a TIMEOUT, any other failure a CONFLICT whose message starts with {@code failure}.
   */
  private WasmProcess.Frozen freeze(WasmProcess p, String failure) {
    return freeze(p, failure, false);
  }

  private WasmProcess.Frozen freeze(WasmProcess p, String failure, boolean memoryInPagingFile) {
    try {
      return p.freeze(settings.runtime().freezeTimeout().toMillis(), memoryInPagingFile).get();
    } catch (ExecutionException ex) {
      Throwable c = ex.getCause();
      if (c instanceof NoMigrationPointException) {
        throw new FerryException(FerryException.Kind.TIMEOUT, c.getMessage());
      }
      throw FerryException.conflict(failure + c.getMessage());
    } catch (InterruptedException ex) {
      Thread.currentThread().interrupt();
      throw new FerryException(FerryException.Kind.UNAVAILABLE, "interrupted");
    }
  }

  /** The hash of the module a process of this node runs, or NOT_FOUND. */
  public String moduleOf(String pid) {
    Entry e = entry(pid);
    synchronized (e) {
      return e.record.getModuleHash();
    }
  }

  /** The stored bytes of a module of this node (as another node's {@link #receiveModule} takes). */
  public byte[] moduleBytes(String hash) {
    return modules.bytes(hash);
  }

  /**
   * A module sent ahead of a migration's bundle: stored durably (so that the source, which from now
   * on sends bundles without it, is never wrong that this node has it) and made ready for {@code
   * engine} (null: this node's default), so that the migration's freeze includes neither.
   */
  public void receiveModule(byte[] stored, Engine engine) {
    String hash = modules.putVerbatim(stored);
    store.sync();
    modules.prepare(hash, (engine != null ? engine : defaultEngine) == Engine.COMPILED);
  }

  /** Where a process that left this node went, if it did. */
  public java.util.Optional<String> movedTo(String pid) {
    return java.util.Optional.ofNullable(moved.get(pid));
  }

  /** Ids of every process this node holds. */
  public List<String> localIds() {
    return new ArrayList<>(processes.keySet());
  }

  /** The node's own processes, oldest first. */
  public List<ProcessInfo> localList() {
    return get(list());
  }

  private static <T> T get(CompletionStage<T> s) {
    return s.toCompletableFuture().join();
  }

  /**
   * Freezes a running process for a migration: it stands still at a migration point, in state
   * MIGRATING, until {@link #resumeAfterAbort} or {@link #discardAfterCommit}.
   */
  public WasmProcess.Frozen freezeForMigration(String pid) {
    return freezeForMigration(pid, false);
  }

  /**
   * {@link #freezeForMigration(String)}; with {@code memoryInPagingFile} the image leaves memory
   * out (a paged process: its pages go to the paging file, {@link #flushFrozen}).
   */
  public WasmProcess.Frozen freezeForMigration(String pid, boolean memoryInPagingFile) {
    Entry e = entry(pid);
    WasmProcess p;
    synchronized (e) {
      if (e.record.getState() != ProcessRecord.State.RUNNING || e.running == null) {
        throw FerryException.conflict(
            "process "
                + pid
                + " is "
                + stateName(e.record.getState())
                + ", not running: only a"
                + " running process can be migrated");
      }
      p = e.running;
    }
    if (memoryInPagingFile && !e.record.hasPaging()) {
      throw FerryException.conflict("process " + pid + " does not run on paged memory");
    }
    WasmProcess.Frozen f =
        freeze(p, "process " + pid + " could not be frozen: ", memoryInPagingFile);
    synchronized (e) {
      e.log.tryFlush(true); // (what the store refuses goes in the bundle from memory)
      e.record = e.record.toBuilder().setState(ProcessRecord.State.MIGRATING).build();
    }
    return f;
  }

  /**
   * Everything the destination needs, serialized: a {@code MigrationBundle} with the record, image,
   * logs, module if asked, and sandbox files.
   */
  public dev.ferry.strategies.Payload bundle(
      String pid, WasmProcess.Frozen f, boolean includeModule, boolean sharedFiles) {
    return bundle(pid, f, includeModule, sharedFiles, null);
  }

  /**
   * {@link #bundle(String, WasmProcess.Frozen, boolean, boolean)}; for a paged process moving with
   * its paging file, {@code plan} says how the destination finds the file.
   */
  public dev.ferry.strategies.Payload bundle(
      String pid,
      WasmProcess.Frozen f,
      boolean includeModule,
      boolean sharedFiles,
      dev.ferry.strategies.PagingPlan plan) {
    Entry e = entry(pid);
    synchronized (e) {
      ProcessRecord.Builder moving =
          e.record.toBuilder().setState(ProcessRecord.State.RUNNING).setNode(nodeName);
      if (plan != null && moving.hasPaging()) {
        var pg = moving.getPaging().toBuilder().clearReplicas().addAllReplicas(plan.replicas());
        if (plan.file() != null) {
          pg.setFile(plan.file());
        }
        pg.setFetchFrom(plan.fetchFrom() == null ? "" : plan.fetchFrom())
            .setFetchFile(plan.fetchFile() == null ? "" : plan.fetchFile())
            .setRemoteBacked(plan.remoteBacked());
        moving.setPaging(pg);
      }
      // From the log itself, stored and buffered bytes alike: a store that refuses output (full)
      // must not keep a process from moving to a node that has room.
      byte[] out = e.log.readAll(1);
      byte[] err = e.log.readAll(2);
      ProcessImage image =
          f.image().toBuilder().setStdoutLength(out.length).setStderrLength(err.length).build();
      var b =
          dev.ferry.transport.proto.MigrationBundle.newBuilder()
              .setRecord(moving)
              .setStdout(com.google.protobuf.UnsafeByteOperations.unsafeWrap(out))
              .setStderr(com.google.protobuf.UnsafeByteOperations.unsafeWrap(err))
              .setSharedFiles(sharedFiles);
      if (includeModule) {
        b.setModule(com.google.protobuf.ByteString.copyFrom(modules.bytes(image.getModuleHash())));
      }
      if (!sharedFiles) {
        Path root = e.sandbox.root();
        try {
          addSandbox(b, root, root);
        } catch (IOException ex) {
          throw new FerryException(
              FerryException.Kind.INTERNAL, "cannot read the sandbox of " + pid + ": " + ex, ex);
        }
      }
      return serialize(b.build(), image);
    }
  }

  /**
   * Adds what is under {@code dir} in a sandbox to a bundle, each directory before what it holds,
   * in name order. (A plain listing: Files.walk and the stream it sorts took 0.16 ms for an empty
   * sandbox, while the process stood still.)
   */
  private static void addSandbox(
      dev.ferry.transport.proto.MigrationBundle.Builder b, Path root, Path dir) throws IOException {
    List<Path> entries = new ArrayList<>();
    try (var list = Files.newDirectoryStream(dir)) {
      for (Path p : list) {
        entries.add(p);
      }
    }
    entries.sort(null);
    for (Path p : entries) {
      String rel = root.relativize(p).toString().replace(java.io.File.separatorChar, '/');
      if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
        b.addFiles(
            dev.ferry.transport.proto.SandboxFile.newBuilder().setPath(rel).setDirectory(true));
        addSandbox(b, root, p);
      } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
        b.addFiles(
            dev.ferry.transport.proto.SandboxFile.newBuilder()
                .setPath(rel)
                .setData(com.google.protobuf.ByteString.copyFrom(Files.readAllBytes(p))));
      }
    }
  }

  /**
   * {@code rest} with {@code image} in its {@code image} field, serialized: the image is written
   * straight into the field (a bytes field and an embedded message share one wire format), not
   * serialized into a ByteString first and copied again. Fields may come in any order.
   */
  static dev.ferry.strategies.Payload serialize(
      dev.ferry.transport.proto.MigrationBundle rest, ProcessImage image) {
    int imageSize = image.getSerializedSize();
    int field = dev.ferry.transport.proto.MigrationBundle.IMAGE_FIELD_NUMBER;
    long total =
        (long) com.google.protobuf.CodedOutputStream.computeTagSize(field)
            + com.google.protobuf.CodedOutputStream.computeUInt32SizeNoTag(imageSize)
            + imageSize
            + rest.getSerializedSize();
    if (total > Integer.MAX_VALUE - 16) {
      throw new FerryException(
          FerryException.Kind.CONFLICT, "the process's bundle would be " + total + " bytes");
    }
    return new dev.ferry.strategies.Payload() {
      @Override
      public long size() {
        return total;
      }

      @Override
      public void writeTo(java.io.OutputStream out) throws IOException {
        var cos = com.google.protobuf.CodedOutputStream.newInstance(out, 1 << 16);
        cos.writeTag(field, com.google.protobuf.WireFormat.WIRETYPE_LENGTH_DELIMITED);
        cos.writeUInt32NoTag(imageSize);
        image.writeTo(cos);
        rest.writeTo(cos);
        cos.flush();
      }
    };
  }

  /** The migration was aborted: the process continues here. */
  public void resumeAfterAbort(String pid, WasmProcess.Frozen f) {
    Entry e = entry(pid);
    paging.stopServing(pid);
    synchronized (e) {
      e.record = e.record.toBuilder().setState(ProcessRecord.State.RUNNING).build();
      persist(e.record);
    }
    f.resume();
  }

  /**
   * The migration committed: the destination runs the process. The frozen thread ends and this node
   * forgets the process at once (keeping only a note of where it went, for requests that arrive
   * before the cluster's routing has followed); its copy in the store and its sandbox are removed
   * after, in the background: the returned future completes when they are.
   */
  public CompletableFuture<Void> discardAfterCommit(
      String pid, WasmProcess.Frozen f, boolean sharedFiles, String toNode) {
    return discardAfterCommit(pid, f, sharedFiles, toNode, null);
  }

  /**
   * {@link #discardAfterCommit(String, WasmProcess.Frozen, boolean, String)}; with {@code
   * keepCopiesOn} (a paging strategy) copies of the paging file on those nodes are kept (this
   * node's too, if named) and the others dropped. Without, a paged process's file is dropped
   * everywhere (the destination started a new one).
   */
  public CompletableFuture<Void> discardAfterCommit(
      String pid,
      WasmProcess.Frozen f,
      boolean sharedFiles,
      String toNode,
      List<String> keepCopiesOn) {
    Entry e = entry(pid);
    if (keepCopiesOn != null) {
      paging.release(pid, keepCopiesOn.contains(nodeName), keepCopiesOn);
    } else {
      paging.release(pid, false, List.of());
    }
    // The copy in the store and the sandbox go off the migration's path (the caller stores the
    // migration's final record once the returned future completes); a process coming back waits
    // for them (awaitForgotten: noted before the process leaves the table, so that no arrival
    // misses it).
    // A stop before they are done leaves what a stop before the commit leaves: the source's
    // migration record is not final yet, so its next start settles it with the destination
    // (ClusterRuntime), which drops the copy left here.
    CompletableFuture<Void> done = new CompletableFuture<>();
    forgetting.put(pid, done);
    synchronized (e) {
      e.running = null;
      f.stop();
      forgetInMemory(e, toNode);
    }
    Path sandbox = sharedFiles ? null : e.sandbox.root();
    afterForgetting(
        () -> {
          try {
            forgetStored(pid, toNode);
            if (sandbox != null) {
              discardTree(sandbox);
            }
            done.complete(null);
          } catch (RuntimeException ex) {
            done.completeExceptionally(ex);
          } finally {
            forgetting.remove(pid, done);
          }
        });
    return done;
  }

  /**
   * Runs {@code work} after the store work of every commit so far at this node (see {@link
   * #discardAfterCommit}), on the one thread that does it; at once if the node is closing.
   */
  void afterForgetting(Runnable work) {
    try {
      forgetter.execute(work);
    } catch (java.util.concurrent.RejectedExecutionException ex) {
      work.run();
    }
  }

  /**
   * Waits until a process that left this node is forgotten in its store and its sandbox moved
   * aside: before it may come back.
   */
  private void awaitForgotten(String pid) {
    CompletableFuture<Void> f = forgetting.get(pid);
    if (f != null) {
      try {
        f.join();
      } catch (java.util.concurrent.CompletionException ex) {
        throw new FerryException(
            FerryException.Kind.INTERNAL,
            "process "
                + pid
                + " left this node, but its copy here could not be removed: "
                + ex.getCause(),
            ex.getCause());
      }
    }
  }

  /**
   * This node forgets a process that now lives on {@code toNode}, in memory: requests find a note
   * of where it went (until the cluster's routing has followed). Caller holds e's monitor.
   */
  private void forgetInMemory(Entry e, String toNode) {
    processes.remove(e.id);
    moved.put(e.id, toNode);
    e.finished.complete(info(e));
  }

  /**
   * This node forgets a moved process in its store: its record, image and logs go, in one
   * transaction with the note of where it went.
   */
  private void forgetStored(String pid, String toNode) {
    // One transaction (the log call inside the batch joins it).
    store.write(
        b -> {
          b.delete(TableName.PROCESSES, pid);
          b.delete(TableName.IMAGES, pid);
          store.logs().delete(pid);
          b.put(
              TableName.META,
              "moved:" + pid,
              toNode.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        });
  }

  /** Prefix of a discarded sandbox waiting to be deleted (see {@link #discardTree}). */
  private static final String DISCARDED = ".discarded-";

  /**
   * Removes a sandbox without waiting for its files to be deleted: it is renamed out of the way at
   * once (so the process may come back and get a fresh one), then deleted in the background.
   * Leftovers of a node that stopped meanwhile are deleted at its next start.
   */
  private void discardTree(Path root) {
    Path trash = root.resolveSibling(DISCARDED + root.getFileName() + "-" + System.nanoTime());
    try {
      Files.move(root, trash, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (NoSuchFileException ex) {
      return;
    } catch (IOException | RuntimeException ex) {
      deleteTree(root);
      return;
    }
    BACKGROUND.execute(() -> deleteTree(trash));
  }

  /** Deletes sandboxes discarded before the node last stopped. */
  private void deleteDiscardedTrees() {
    try (var dirs = Files.list(sandboxes)) {
      dirs.filter(d -> d.getFileName().toString().startsWith(DISCARDED))
          .forEach(NodeProcesses::deleteTree);
    } catch (IOException ignored) {
      // no sandboxes yet
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Migration, destination side

  /**
   * An incoming process, stored durably and ready: {@link #run} lets it go (after its source has
   * been answered). {@code durableAt} is when the store was durable ({@link System#nanoTime}).
   */
  public record Arrival(ProcessInfo info, Runnable run, long durableAt) {}

  /**
   * Takes in a migrated process: stores it durably (module, sandbox, logs, image, record, in one
   * transaction and one sync) and, while the sync runs, rebuilds it from {@code image} under {@code
   * engine} (null: the default). When both are done the process is recorded as running here, but
   * its thread waits for {@link Arrival#run}: the caller answers the source first. If anything
   * fails, what arrived is dropped (the source resumes the process) and the error is thrown.
   */
  public Arrival receiveIncoming(
      String migrationId,
      dev.ferry.transport.proto.MigrationBundle bundle,
      ProcessImage image,
      Engine engine,
      ImageSpool spool) {
    if (spool != null
        && (spool.staged().length() != bundle.getImage().size() || !spool.imageAppearsOnce())) {
      throw FerryException.badRequest("the bundle's image is not the one spooled as it arrived");
    }
    Engine eng = engine != null ? engine : defaultEngine;
    ProcessRecord adopted = writeIncoming(migrationId, bundle, eng);
    // (an empty sandbox needs no sync: a lost one is made again, empty, when the process opens it)
    boolean copiedFiles = !bundle.getSharedFiles() && bundle.getFilesCount() > 0;
    // The store's transaction and its sync run on another thread, while this one rebuilds the
    // process (which reads nothing they write). Only for images up to OVERLAP_MAX_BYTES: for
    // larger ones, copying the image into the store and into memory at once was slower than one
    // after the other (docs/BENCHMARKS.md).
    CompletableFuture<Long> durable =
        CompletableFuture.supplyAsync(
            () -> {
              if (copiedFiles) {
                syncTree(sandboxes.resolve(adopted.getId()));
              }
              if (spool != null) {
                spool.awaitWritten();
              }
              storeIncoming(migrationId, bundle, adopted, spool);
              store.sync();
              return System.nanoTime();
            },
            BACKGROUND);
    if (spool == null && bundle.getImage().size() > OVERLAP_MAX_BYTES) {
      durable.exceptionally(t -> 0L).join(); // a failure is reported below
    }
    String pid = adopted.getId();
    Entry e;
    Restored r;
    try {
      e =
          new Entry(
              pid,
              adopted,
              told(
                  pid,
                  new ProcessLog(
                      pid, store.logs(), bundle.getStdout().size(), bundle.getStderr().size())),
              new Sandbox(sandboxes.resolve(pid)));
      synchronized (e) {
        r = prepareLocked(e, eng, image, true);
      }
    } catch (IOException | RuntimeException ex) {
      durable.exceptionally(t -> 0L).join();
      dropIncoming(migrationId, bundle);
      if (ex instanceof RuntimeException re) {
        throw re;
      }
      throw new FerryException(FerryException.Kind.INTERNAL, ex.toString(), ex);
    }
    long durableAt;
    try {
      durableAt = durable.join();
    } catch (RuntimeException ex) {
      r.process().kill();
      dropIncoming(migrationId, bundle);
      Throwable c = ex.getCause() != null ? ex.getCause() : ex;
      throw new FerryException(
          FerryException.Kind.INTERNAL,
          "incoming " + pid + " could not be stored durably: " + c.getMessage(),
          c);
    }
    if (dev.ferry.node.Failpoint.at("halt-before-answer")) {
      dev.ferry.node.Failpoint.halt("halt-before-answer");
    }
    if (dev.ferry.node.Failpoint.at("halt-after-answer")) {
      // The source gets its answer, then this node stops as a machine crash would leave it:
      // with what was synced (the process, in doubt) and without the unsynced record that it
      // runs here.
      return new Arrival(
          info(e), () -> dev.ferry.node.Failpoint.haltSoon("halt-after-answer"), durableAt);
    }
    ProcessRecord running;
    synchronized (e) {
      try {
        running = startLocked(e, r);
      } catch (RuntimeException ex) {
        e.running = null;
        r.process().kill();
        if (e.record.hasPaging()) {
          paging.release(pid, false, List.of());
        }
        dropIncoming(migrationId, bundle);
        throw ex;
      }
      processes.put(pid, e);
      moved.remove(pid);
    }
    WasmProcess p = r.process();
    return new Arrival(
        info(e),
        () -> {
          // Only after the answer: the record that it runs here and the "arrived" mark. Until
          // they are written the store says "incoming", which a restart holds in doubt and settles
          // with the source; written before the answer, a stop before the answer would have left
          // a process recorded here that the source, without an answer, kept too.
          try {
            writeRunning(running, w -> arrivedMarks(w, migrationId, pid));
          } catch (RuntimeException ex) {
            // The source has its answer: this is the only copy. It runs; its durable state is
            // still "incoming", settled with the source after a restart.
            log.error(
                "process {} arrived by migration {}, but the record that it runs here could not"
                    + " be written ({}); it runs, and a restart will ask node {} about it",
                pid,
                migrationId,
                ex.getMessage(),
                bundle.getRecord().getNode());
          }
          synchronized (e) {
            watch(e, p);
          }
          p.release();
          listener.on(pid, "restored", null, eng.wireName(), null);
          // Synced off the path, so that a machine crash soon after finds the process recorded
          // here (else it is in doubt, and settled with the source).
          BACKGROUND.execute(this::syncQuietly);
        },
        durableAt);
  }

  /** The marks saying that the process of a migration runs here (with its record). */
  private static void arrivedMarks(WriteBatch w, String migrationId, String pid) {
    w.delete(TableName.META, "incoming:" + migrationId);
    w.delete(TableName.META, INCOMING_FROM + migrationId);
    w.delete(TableName.META, "moved:" + pid);
    // So that a repeated request for this migration is recognised here, where the process now
    // is, and not taken for a new one.
    w.put(
        TableName.META,
        "arrived:" + migrationId,
        pid.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  private void syncQuietly() {
    try {
      store.sync();
    } catch (RuntimeException ex) {
      log.warn("store sync failed: {}", ex.toString());
    }
  }

  /**
   * Forces a copied sandbox's files and directories to disk (and its entry in the sandboxes
   * directory): an incoming process is durable only with its files.
   */
  private void syncTree(Path root) {
    try (var paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        force(p, Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS));
      }
      force(sandboxes, true);
    } catch (IOException ex) {
      throw new java.io.UncheckedIOException("cannot sync the sandbox " + root + ": " + ex, ex);
    }
  }

  private static void force(Path p, boolean directory) throws IOException {
    try (var ch =
        java.nio.channels.FileChannel.open(
            p,
            directory
                ? java.nio.file.StandardOpenOption.READ
                : java.nio.file.StandardOpenOption.WRITE)) {
      ch.force(true);
    }
  }

  /** Drops what arrived by a migration that failed here, even if its records were never written. */
  private void dropIncoming(String migrationId, dev.ferry.transport.proto.MigrationBundle b) {
    abortIncoming(migrationId);
    if (!b.getSharedFiles() && !sharedSandboxes) {
      deleteTree(sandboxes.resolve(b.getRecord().getId()));
    }
  }

  /**
   * Writes an incoming process's module and sandbox; {@link #storeIncoming} writes the rest. Until
   * it runs it is invisible; {@link #abortIncoming} removes it, and so does the next start of the
   * node. Returns its record here, with the engine it is restored under (for a restore after a
   * restart too: {@link #settleInDoubt}).
   */
  private ProcessRecord writeIncoming(
      String migrationId, dev.ferry.transport.proto.MigrationBundle b, Engine engine) {
    refuseWhenClosing();
    ProcessRecord rec = b.getRecord();
    String pid = rec.getId();
    if (processes.containsKey(pid)) {
      throw FerryException.conflict("process " + pid + " is already on node " + nodeName);
    }
    awaitForgotten(pid); // back soon after it left: its old copy and sandbox go first
    inDoubtOf(pid)
        .ifPresent(
            d -> {
              throw FerryException.conflict(
                  "node "
                      + nodeName
                      + " still holds "
                      + pid
                      + " from migration "
                      + d.migrationId()
                      + ", until node "
                      + d.fromNode()
                      + " says how that one ended");
            });
    if (!b.getModule().isEmpty()) {
      modules.putVerbatim(b.getModule().toByteArray());
    }
    modules.load(rec.getModuleHash()); // the module must be here now
    Path root = sandboxes.resolve(pid);
    if (!b.getSharedFiles()) {
      deleteTree(root);
      try {
        Files.createDirectories(root);
        for (var f : b.getFilesList()) {
          String g = Sandbox.resolveGuest("/", "/" + f.getPath());
          Path host = root.resolve(g.substring(1));
          if (f.getDirectory()) {
            Files.createDirectories(host);
          } else {
            Files.createDirectories(host.getParent());
            Files.write(host, f.getData().toByteArray());
          }
        }
      } catch (IOException | WasiException ex) {
        deleteTree(root);
        throw new FerryException(
            FerryException.Kind.INTERNAL,
            "cannot write the sandbox of incoming " + pid + ": " + ex,
            ex);
      }
    }
    return rec.toBuilder()
        .setState(ProcessRecord.State.MIGRATING)
        .setNode(nodeName)
        .setEngine(engine.wireName())
        .build();
  }

  /**
   * An incoming process's logs, image (written ahead by {@code spool}, if not null) and record, in
   * one transaction; the caller syncs.
   */
  private void storeIncoming(
      String migrationId,
      dev.ferry.transport.proto.MigrationBundle b,
      ProcessRecord incoming,
      ImageSpool spool) {
    String pid = incoming.getId();
    byte[] out = b.getStdout().toByteArray();
    byte[] err = b.getStderr().toByteArray();
    // Log calls inside a batch join its transaction.
    store.write(
        w -> {
          store.logs().delete(pid);
          store.logs().append(pid, 1, out, 0, out.length);
          store.logs().append(pid, 2, err, 0, err.length);
          if (spool != null) {
            w.putStaged(spool.staged());
          } else {
            w.put(TableName.IMAGES, pid, b.getImage().asReadOnlyByteBuffer());
          }
          w.put(TableName.PROCESSES, pid, incoming.toByteArray());
          w.put(
              TableName.META,
              "incoming:" + migrationId,
              pid.getBytes(java.nio.charset.StandardCharsets.UTF_8));
          // Whom to ask, if this node stops before it records the process as running here.
          w.put(
              TableName.META,
              INCOMING_FROM + migrationId,
              b.getRecord().getNode().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        });
  }

  private static final String INCOMING_FROM = "incoming-from:";

  /** True if the migration with this id brought a process to this node. */
  public boolean arrivedBy(String migrationId) {
    return store.table(TableName.META).contains("arrived:" + migrationId);
  }

  /** Drops an adopted, not yet activated process. */
  public void abortIncoming(String migrationId) {
    String pid;
    try {
      pid = incomingPid(migrationId);
    } catch (FerryException ex) {
      return; // nothing arrived, or already dropped
    }
    if (processes.containsKey(pid)) {
      return; // activated: no longer ours to drop
    }
    store.write(
        w -> {
          w.delete(TableName.IMAGES, pid);
          w.delete(TableName.PROCESSES, pid);
          w.delete(TableName.META, "incoming:" + migrationId);
          w.delete(TableName.META, INCOMING_FROM + migrationId);
        });
    store.logs().delete(pid);
    inDoubt.remove(migrationId); // (the source told us: it aborted)
    if (!sharedSandboxes) {
      // (a shared sandbox is the one the process goes on using at its source)
      deleteTree(sandboxes.resolve(pid));
    }
    store.sync();
  }

  private String incomingPid(String migrationId) {
    return store
        .table(TableName.META)
        .get("incoming:" + migrationId)
        .map(v -> new String(v, java.nio.charset.StandardCharsets.UTF_8))
        .orElseThrow(() -> FerryException.notFound("no incoming migration " + migrationId));
  }

  /**
   * A process that arrived by migration {@code migrationId} from {@code fromNode} and was stored
   * here durably, but this node stopped before it recorded the process as running here.
   */
  public record InDoubt(String migrationId, String pid, String fromNode, long heldSinceMicros) {}

  /** Held while an in-doubt migration is settled: by its source's answer or by an operator. */
  private final Object settling = new Object();

  /**
   * The source of an in-doubt migration has said how it ended. Committed: the process runs here,
   * from the image that arrived (what it did here before this node stopped was lost with the record
   * that it ran here, its output too, so nothing is repeated or missing); if it cannot be restored
   * it stays here CHECKPOINTED with the error, never dropped. Not committed: what arrived is
   * dropped (the source has the process). Returns the process if it is now this node's.
   */
  public java.util.Optional<ProcessInfo> settleInDoubt(String migrationId, boolean committed) {
    synchronized (settling) {
      return settleInDoubtLocked(migrationId, committed);
    }
  }

  private java.util.Optional<ProcessInfo> settleInDoubtLocked(
      String migrationId, boolean committed) {
    InDoubt d = inDoubt.get(migrationId);
    if (d == null) {
      return java.util.Optional.empty();
    }
    if (!committed) {
      abortIncoming(migrationId);
      log.info(
          "migration {} of {} did not commit at {}: what arrived here was dropped",
          migrationId,
          d.pid(),
          d.fromNode());
      return java.util.Optional.empty();
    }
    String pid = d.pid();
    ProcessRecord rec;
    try {
      rec = ProcessRecord.parseFrom(store.table(TableName.PROCESSES).get(pid).orElseThrow());
    } catch (IOException | java.util.NoSuchElementException ex) {
      throw new FerryException(
          FerryException.Kind.INTERNAL, "the record of in-doubt " + pid + " is unreadable", ex);
    }
    Entry e;
    try {
      e = storedEntry(pid, rec);
    } catch (IOException ex) {
      throw new FerryException(
          FerryException.Kind.INTERNAL, "the sandbox of in-doubt " + pid + " cannot be opened", ex);
    }
    synchronized (e) {
      try {
        // (the engine receiveIncoming recorded)
        Engine engine = Engine.parse(rec.getEngine());
        restoreLocked(e, engine, storedImage(e), w -> arrivedMarks(w, migrationId, pid));
        log.info(
            "migration {} of {} committed at {}: the process runs here",
            migrationId,
            pid,
            d.fromNode());
      } catch (RuntimeException ex) {
        log.error("in-doubt process {} could not be restored: {}", pid, ex.getMessage());
        e.running = null;
        e.record =
            rec.toBuilder()
                .setState(ProcessRecord.State.CHECKPOINTED)
                .setNode(nodeName)
                .setError("arrived by a migration, but could not be restored: " + ex.getMessage())
                .build();
        ProcessRecord stays = e.record;
        store.write(
            w -> {
              w.put(TableName.PROCESSES, pid, stays.toByteArray());
              arrivedMarks(w, migrationId, pid);
            });
      }
      processes.put(pid, e);
      moved.remove(pid);
      inDoubt.remove(migrationId);
    }
    store.sync();
    return java.util.Optional.of(info(e));
  }

  /**
   * True if the migration with this id brought its process to this node: it runs (or ran) here, or
   * this node holds it in doubt.
   */
  public boolean holdsMigration(String migrationId) {
    return inDoubt.containsKey(migrationId) || arrivedBy(migrationId);
  }

  /**
   * The source's side of a migration its node did not live to finish: the destination holds the
   * process, so the copy left here by the stop (checkpointed or failed, never running) is
   * forgotten, as a commit would have done, and requests are sent on to {@code toNode}.
   */
  public void dropLeftBehind(String pid, String toNode) {
    Entry e = processes.get(pid);
    if (e == null) {
      return;
    }
    synchronized (e) {
      if (e.running != null) {
        throw FerryException.conflict(
            "process " + pid + " runs on node " + nodeName + ": it is not a left-behind copy");
      }
      forgetInMemory(e, toNode);
      forgetStored(pid, toNode);
      e.log.close();
    }
    store.sync();
    if (!sharedSandboxes) {
      discardTree(e.sandbox.root());
    }
  }

  /** True if this node holds {@code pid} in doubt (see {@link #settleInDoubt}). */
  public boolean isInDoubt(String pid) {
    return inDoubtOf(pid).isPresent();
  }

  private java.util.Optional<InDoubt> inDoubtOf(String pid) {
    return inDoubt.values().stream().filter(d -> d.pid().equals(pid)).findFirst();
  }

  /** The process this node holds in doubt from migration {@code migrationId}, if any. */
  public java.util.Optional<InDoubt> inDoubtFrom(String migrationId) {
    return java.util.Optional.ofNullable(inDoubt.get(migrationId));
  }

  /** Migrations whose process this node holds in doubt (see {@link #settleInDoubt}). */
  public List<InDoubt> inDoubt() {
    return List.copyOf(inDoubt.values());
  }

  /**
   * Start-up: migrations whose process arrived but was never recorded as running here. The source
   * may have committed (it had the answer; this node then stopped before the record that the
   * process runs here was durable) or not: they are held, not run and not dropped, until the source
   * says ({@link #settleInDoubt}). Returns their process ids.
   */
  private java.util.Set<String> collectInDoubt() {
    java.util.Set<String> pids = new java.util.HashSet<>();
    for (String k : store.table(TableName.META).keys("incoming:")) {
      String migrationId = k.substring("incoming:".length());
      String pid;
      try {
        pid = incomingPid(migrationId);
      } catch (FerryException ex) {
        continue;
      }
      String from =
          store
              .table(TableName.META)
              .get(INCOMING_FROM + migrationId)
              .map(v -> new String(v, java.nio.charset.StandardCharsets.UTF_8))
              .orElse("");
      if (from.isEmpty() || !store.table(TableName.PROCESSES).contains(pid)) {
        // Stored by a version that did not record the source: nobody to ask.
        abortIncoming(migrationId);
        continue;
      }
      inDoubt.put(migrationId, new InDoubt(migrationId, pid, from, nowMicros()));
      pids.add(pid);
      log.warn(
          "process {} arrived by migration {} from node {} just before this node stopped;"
              + " it is held (not run, not dropped) until {} says whether the migration committed",
          pid,
          migrationId,
          from,
          from);
    }
    return pids;
  }

  /** Where processes that left this node went (see {@link #movedTo}). */
  private void loadMovedMarks() {
    for (String k : store.table(TableName.META).keys("moved:")) {
      store
          .table(TableName.META)
          .get(k)
          .ifPresent(
              v ->
                  moved.put(
                      k.substring("moved:".length()),
                      new String(v, java.nio.charset.StandardCharsets.UTF_8)));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Shutdown

  /**
   * Checkpoints every running process durably (they resume on the next start of this data
   * directory), then stops. A process that cannot be frozen within the freeze timeout (a CPU-bound
   * loop in a module that is not preemptible) is logged and recorded as FAILED.
   */
  @Override
  public void close() {
    if (closing) {
      return;
    }
    closing = true;
    // A full store must not cost a running process its checkpoint (nor its output): the store
    // grows past ferry.store.map-size now rather than fail them (it logs that it did).
    store.growWhenFull();
    List<CompletableFuture<Void>> all = new ArrayList<>();
    for (Entry e : processes.values()) {
      boolean running;
      synchronized (e) {
        running = e.running != null && e.record.getState() == ProcessRecord.State.RUNNING;
      }
      if (!running) {
        continue;
      }
      all.add(
          CompletableFuture.runAsync(
              () -> {
                try {
                  checkpointNow(e, false, true);
                  log.info("process {} checkpointed for shutdown", e.id);
                } catch (RuntimeException ex) {
                  log.warn(
                      "process {} could not be checkpointed at shutdown: {}",
                      e.id,
                      ex.getMessage());
                  WasmProcess p;
                  synchronized (e) {
                    if (isFinal(e.record.getState())) {
                      return; // it ended on its own while the node was stopping: already recorded
                    }
                    p = e.running;
                    e.running = null;
                    // If the process itself ended meanwhile, that is what happened to it.
                    WasmProcess.End end =
                        p == null ? null : p.end().toCompletableFuture().getNow(null);
                    if (end != null && end.outcome() == WasmProcess.Outcome.EXITED) {
                      markFinal(
                          e,
                          e.record.toBuilder()
                              .setState(ProcessRecord.State.EXITED)
                              .setHasExitCode(true)
                              .setExitCode(end.exitCode())
                              .setEndedAtMicros(nowMicros())
                              .build());
                      return;
                    }
                    String why =
                        end != null && end.error() != null
                            ? end.error()
                            : "could not be checkpointed when its node shut down: "
                                + ex.getMessage();
                    markFinal(
                        e,
                        e.record.toBuilder()
                            .setState(ProcessRecord.State.FAILED)
                            .setError(why)
                            .setEndedAtMicros(nowMicros())
                            .build());
                  }
                  if (p != null) {
                    p.kill();
                  }
                }
              },
              ops));
    }
    CompletableFuture.allOf(all.toArray(new CompletableFuture[0])).join();
    // What commits left to do in the store is done before the last sync.
    forgetter.shutdown();
    try {
      if (!forgetter.awaitTermination(30, TimeUnit.SECONDS)) {
        log.warn("the store work of earlier commits did not finish within 30 s");
      }
    } catch (InterruptedException ex) {
      Thread.currentThread().interrupt();
    }
    flusher.shutdownNow();
    paging.close();
    flushLogs(true);
    store.sync();
    ops.shutdownNow();
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /**
   * Offers every process's buffered output to the store and records the ends the store refused
   * before; with {@code now} false, output refused lately waits for its retry interval.
   */
  private void flushLogs(boolean now) {
    for (Entry e : processes.values()) {
      e.log.tryFlush(now); // (a refusal is logged once by the log, and offered again later)
      if (e.endUnrecorded) {
        recordEndAgain(e);
      }
    }
  }

  /** Stores an end the store refused before ({@link #markFinal}), if it takes it now. */
  private void recordEndAgain(Entry e) {
    synchronized (e) {
      if (!e.endUnrecorded) {
        return; // (recorded meanwhile, by the periodic flush or the shutdown's)
      }
      try {
        recordEnd(e);
        store.sync();
        e.endUnrecorded = false;
        log.info("the end of process {} is recorded in the store now", e.id);
      } catch (RuntimeException ex) {
        // still no room: tried again at the next flush
      }
    }
  }

  private void refuseWhenClosing() {
    if (closing) {
      throw new FerryException(FerryException.Kind.UNAVAILABLE, "the node is shutting down");
    }
  }

  private <T> CompletionStage<T> async(Supplier<T> work) {
    try {
      return CompletableFuture.supplyAsync(work, ops);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      return CompletableFuture.failedFuture(
          new FerryException(FerryException.Kind.UNAVAILABLE, "the node is shutting down"));
    }
  }

  private Entry entry(String pid) {
    Entry e = pid == null ? null : processes.get(pid);
    if (e == null) {
      throw FerryException.notFound("no process '" + pid + "' on node " + nodeName);
    }
    return e;
  }

  private static String checkGuestFilePath(String g) {
    if (g == null || !g.startsWith("/")) {
      throw FerryException.badRequest("guest path '" + g + "' must be absolute, like /in.txt");
    }
    String n;
    try {
      n = Sandbox.resolveGuest("/", g);
    } catch (WasiException ex) {
      throw FerryException.badRequest("guest path '" + g + "' leaves the sandbox");
    }
    if (n.equals("/")) {
      throw FerryException.badRequest("guest path '" + g + "' names the sandbox root, not a file");
    }
    return n;
  }

  private void markFinal(Entry e, ProcessRecord rec) {
    listener.on(
        e.id,
        stateName(rec.getState()),
        rec.getHasExitCode() ? rec.getExitCode() : null,
        rec.getEngine(),
        rec.getError().isEmpty() ? null : rec.getError());
    e.record = rec;
    try {
      recordEnd(e);
    } catch (dev.ferry.statestore.StoreException ex) {
      // A full store must not leave the process unfinished: it has ended, and waiters hear it
      // now; the store hears it once it has room (the periodic flush retries), at the latest
      // when the node stops (the store then grows if it must).
      synchronized (e) {
        e.endUnrecorded = true;
      }
      log.warn(
          "the end of process {} ({}) could not be recorded in the store ({}); it will be once"
              + " the store has room, at the latest when the node stops",
          e.id,
          stateName(rec.getState()),
          ex.getMessage());
    }
    e.log.close();
    try {
      store.sync();
    } catch (dev.ferry.statestore.StoreException ex) {
      log.warn("syncing the store after process {} ended failed: {}", e.id, ex.getMessage());
    }
    e.finished.complete(info(e));
  }

  /** Stores a final record and drops the process's image (it ran to its end); not synced. */
  private void recordEnd(Entry e) {
    persist(e.record);
    store.table(TableName.IMAGES).delete(e.id);
  }

  private void update(Entry e, ProcessRecord rec) {
    e.record = rec;
    persist(rec);
  }

  private void persist(ProcessRecord rec) {
    store.table(TableName.PROCESSES).put(rec.getId(), rec.toByteArray());
  }

  private static boolean isFinal(ProcessRecord.State s) {
    return s == ProcessRecord.State.EXITED
        || s == ProcessRecord.State.FAILED
        || s == ProcessRecord.State.KILLED;
  }

  private static String stateName(ProcessRecord.State s) {
    return s.name().toLowerCase();
  }

  private ProcessInfo info(Entry e) {
    ProcessRecord r;
    synchronized (e) {
      r = e.record;
    }
    return ProtoRecords.processInfo(
        r, e.log.length(1), e.log.length(2), paging.status(e.id).orElse(null), e.log.held());
  }

  /** The paging file of a paged process running here, as a migration starts; empty if flat. */
  public java.util.Optional<dev.ferry.strategies.PagingView> pagingView(String pid) {
    Entry e = processes.get(pid);
    if (e == null) {
      return java.util.Optional.empty();
    }
    WasmProcess p;
    synchronized (e) {
      if (!e.record.hasPaging() || e.running == null) {
        return java.util.Optional.empty();
      }
      p = e.running;
    }
    var replicas = paging.replicas(pid);
    if (replicas.isEmpty()) {
      return java.util.Optional.empty();
    }
    var mem = (dev.ferry.node.memory.PagedMemory) p.memory();
    return java.util.Optional.of(
        new dev.ferry.strategies.PagingView(
            mem.pageSize(), replicas.get(), mem.pageCount(), mem.dirtyCount(), paging.busy(pid)));
  }

  /** Writes a frozen paged process's dirty pages out (see {@code PagingFiles#flushFrozen}). */
  public dev.ferry.strategies.PageFlush flushFrozen(
      String pid,
      String mustHold,
      String fullCopyTo,
      java.util.function.BiConsumer<Long, Long> progress)
      throws IOException {
    return paging.flushFrozen(pid, mustHold, fullCopyTo, progress);
  }

  private static long nowMicros() {
    return ProtoRecords.nowMicros();
  }

  public static String newId() {
    byte[] b = new byte[5];
    RANDOM.nextBytes(b);
    return "p-" + HexFormat.of().formatHex(b);
  }

  /**
   * Largest incoming image rebuilt while the store syncs, unless it was spooled (see {@link
   * #receiveIncoming}).
   */
  static final int OVERLAP_MAX_BYTES = 32 << 20;

  /** Smallest incoming image copied into the store while it arrives ({@link ImageSpool}). */
  public static final int SPOOL_MIN_BYTES = 4 << 20;

  /**
   * Starts copying the image of an incoming process into the store while its bundle arrives in
   * {@code data} (from {@code start}, {@code length} bytes): an {@link ImageSpool}, or null if the
   * image is too small to gain from it or an image is stored under {@code pid} here (the receiver
   * has refused a process this node holds already).
   */
  public ImageSpool spoolIncomingImage(String pid, byte[] data, int start, int length) {
    if (length < SPOOL_MIN_BYTES) {
      return null;
    }
    awaitForgotten(pid); // a process back soon after it left: its old image is being deleted
    dev.ferry.statestore.StagedValue staged;
    try {
      staged = store.table(TableName.IMAGES).stage(pid, length);
    } catch (IllegalStateException | IllegalArgumentException ex) {
      return null; // an image is stored under this pid: the usual way will refuse or replace it
    }
    return new ImageSpool(store, staged, data, start, BACKGROUND);
  }

  /**
   * Store and file work off a migration's path: the sync an incoming process's rebuild overlaps
   * ({@link #receiveIncoming}), syncs after it, deleting discarded sandboxes ({@link
   * #discardTree}).
   */
  private static final java.util.concurrent.ExecutorService BACKGROUND =
      java.util.concurrent.Executors.newCachedThreadPool(
          dev.ferry.node.DaemonThreads.named("ferry-store-io"));

  private static void deleteTree(Path dir) {
    if (!dir.toFile().exists()) {
      return; // (without the exception Files.walk would throw and this method catch)
    }
    try (var s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // nothing was created, or it is already gone
    }
  }
}
