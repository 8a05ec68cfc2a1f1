package dev.ferry.node.runtime;

import com.dylibso.chicory.runtime.ChicoryInterruptedException;
import com.dylibso.chicory.runtime.ExportFunction;
import com.dylibso.chicory.runtime.GlobalInstance;
import com.dylibso.chicory.runtime.HostFunction;
import com.dylibso.chicory.runtime.ImportValues;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.wasm.types.FunctionType;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import com.dylibso.chicory.wasm.types.MutabilityType;
import com.dylibso.chicory.wasm.types.ValType;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.ferry.node.DaemonThreads;
import dev.ferry.node.service.Engine;
import dev.ferry.node.wasi.CallGate;
import dev.ferry.node.wasi.FerryWasi;
import dev.ferry.node.wasi.GuestClock;
import dev.ferry.node.wasi.OutputSink;
import dev.ferry.node.wasi.Sandbox;
import dev.ferry.transport.proto.AsyncifyBuffer;
import dev.ferry.transport.proto.GlobalValue;
import dev.ferry.transport.proto.GuestClocks;
import dev.ferry.transport.proto.LinearMemory;
import dev.ferry.transport.proto.MemoryRun;
import dev.ferry.transport.proto.ProcessImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * One running wasm process: a Chicory instance of an Asyncify-instrumented module, run on its own
 * platform thread, never on an actor dispatcher.
 *
 * <p>Freezing works at migration points — every WASI call, and loop heads in preemptible modules.
 * The protocol, seen from the process thread:
 *
 * <pre>
 *  freeze() sets a request ──► next WASI call: gate claims it, writes the buffer header
 *                              [current=buf+8, end=buf+size], asyncify_start_unwind(buf),
 *                              returns a dummy result
 *                         ──► the guest unwinds its whole stack into the buffer; _start returns
 *                         ──► asyncify_stop_unwind(); capture memory, globals, WASI state
 *                         ──► the requester gets a {@link Frozen} and decides:
 *       resume(): asyncify_start_rewind(buf); _start() ──► the guest rewinds to the same WASI
 *                 call; the gate sees "rewinding", calls asyncify_stop_rewind() and only then
 *                 runs the call for real (exactly once)
 *       stop():   the thread ends; the image is all that remains of the process
 * </pre>
 *
 * A request that finds no migration point within its timeout is withdrawn and the process is not
 * disturbed. Restoring an image on any node and engine runs the same rewind on a fresh instance
 * ({@link #restore}).
 *
 * <p>Not guaranteed: the guest's tables are not saved (C, Rust and Go WASI programs do not modify
 * them at run time); threads inside the guest are not supported.
 */
public final class WasmProcess implements CallGate {
  static final int PAGE = 65536;

  /** Bytes of an image's memory copied into linear memory at a time on a restore. */
  private static final int RESTORE_BUFFER = 16 * PAGE;

  /** Freeze timeouts of every process; cancelled tasks leave the queue at once. */
  private static final java.util.concurrent.ScheduledThreadPoolExecutor TIMEOUTS =
      new java.util.concurrent.ScheduledThreadPoolExecutor(
          1, DaemonThreads.named("ferry-freeze-timeouts"));

  static {
    TIMEOUTS.setRemoveOnCancelPolicy(true);
  }

  private static final byte[] ZERO_PAGE = new byte[PAGE];

  /** Everything needed to start or restore a process. */
  public record Spec(
      String pid,
      LoadedModule module,
      Engine engine,
      Sandbox sandbox,
      List<String> argv,
      List<String> env,
      OutputSink out,
      int asyncifyBufferBytes,
      int maxMemoryPages) {}

  /** How the process thread ended. */
  public enum Outcome {
    EXITED,
    FAILED,
    KILLED,
    /** Frozen and stopped: only its image remains. */
    FROZEN
  }

  /** The end of the process thread. {@code error} is set for FAILED. */
  public record End(Outcome outcome, int exitCode, String error) {}

  private enum Decision {
    RESUME,
    STOP,
    KILL
  }

  /** A request to freeze, waiting to be claimed at a migration point. */
  private static final class FreezeRequest {
    final long requestedAt = System.nanoTime();
    final boolean memoryInPagingFile;
    final CompletableFuture<Frozen> result = new CompletableFuture<>();
    boolean claimed;

    FreezeRequest(boolean memoryInPagingFile) {
      this.memoryInPagingFile = memoryInPagingFile;
    }
  }

  /**
   * A process standing still at a migration point, with its image captured. Exactly one of {@link
   * #resume()} or {@link #stop()} must follow.
   */
  public final class Frozen {
    private final ProcessImage image;
    private final long freezeNanos;
    private final long captureNanos;
    private final CompletableFuture<Decision> decision = new CompletableFuture<>();

    private Frozen(ProcessImage image, long freezeNanos, long captureNanos) {
      this.image = image;
      this.freezeNanos = freezeNanos;
      this.captureNanos = captureNanos;
    }

    public ProcessImage image() {
      return image;
    }

    /** From the freeze request until the guest stood still. */
    public long freezeNanos() {
      return freezeNanos;
    }

    /** Reading memory, globals and WASI state into the image. */
    public long captureNanos() {
      return captureNanos;
    }

    /** Lets the process continue here, at the call where it stopped. */
    public void resume() {
      release();
      decision.complete(Decision.RESUME);
    }

    /** From the decision on, a new freeze may be requested. */
    private void release() {
      synchronized (lock) {
        if (frozen == this) {
          frozen = null;
        }
      }
    }

    /** Ends the process thread; the process now exists only as its image. */
    public void stop() {
      release();
      decision.complete(Decision.STOP);
    }
  }

  /** Thrown through the guest's stack when the process is killed. */
  private static final class KilledException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    KilledException() {
      super("killed", null, false, false);
    }
  }

  private final Spec spec;
  private final Function<MemoryLimits, Memory> memoryFactory; // null: Chicory's default
  private final Instance instance;
  private final FerryWasi wasi;
  private final UnwindBound unwindBound;
  private final ExportFunction start;
  private final ExportFunction startUnwind;
  private final ExportFunction stopUnwind;
  private final ExportFunction startRewind;
  private final ExportFunction stopRewind;
  private final CompletableFuture<End> end = new CompletableFuture<>();
  private final ProcessThreads.Slot slot;
  private final Runnable body;

  private final Object lock = new Object();
  private FreezeRequest pending; // guarded by lock
  private Frozen frozen; // guarded by lock: set while standing still
  private volatile boolean freezeRequested;
  private volatile boolean killed;

  /**
   * Started by {@link #restoreHeld}: its thread gets its body only at {@link #release} (or {@link
   * #kill}, and then ends without running the guest).
   */
  private final boolean held;

  // process-thread-only state
  private boolean rewinding;
  private FreezeRequest unwindingFor;

  /** Where the Asyncify buffer sits while unwinding or rewinding, and what it covered. */
  private int regionAddress;

  private byte[] regionSaved;

  /**
   * On paged memory: which pages of the region were dirty before it was borrowed, and the memory's
   * count of cleared dirty bits then (see {@link #returnRegion}).
   */
  private java.util.BitSet regionDirty;

  private long regionCleared;

  private WasmProcess(
      Spec spec, ProcessImage image, Function<MemoryLimits, Memory> memoryFactory, boolean held)
      throws IOException {
    this.spec = spec;
    this.memoryFactory = memoryFactory;
    this.held = held;
    GuestClock clock =
        image == null
            ? GuestClock.start()
            : GuestClock.resumeAt(image.getClocks().getMonotonicNanos());
    this.wasi =
        image == null
            ? FerryWasi.create(spec.sandbox(), spec.argv(), spec.env(), spec.out(), clock, this)
            : FerryWasi.restore(image.getWasi(), spec.sandbox(), spec.out(), clock, this);
    try {
      this.instance = instantiate();
      this.start = instance.export("_start");
      this.startUnwind = instance.export("asyncify_start_unwind");
      this.stopUnwind = instance.export("asyncify_stop_unwind");
      this.startRewind = instance.export("asyncify_start_rewind");
      this.stopRewind = instance.export("asyncify_stop_rewind");
      this.unwindBound = spec.module().unwindBound();
      if (image != null) {
        loadImage(image);
      }
    } catch (IOException | RuntimeException e) {
      wasi.close();
      throw e;
    }
    byte[] frames = image == null ? null : image.getAsyncify().getData().toByteArray();
    this.body = () -> run(frames);
    try {
      this.slot = ProcessThreads.take("wasm-" + spec.pid());
    } catch (OutOfMemoryError e) {
      wasi.close();
      throw new IOException("no thread for the process: " + e.getMessage(), e);
    }
  }

  /** Starts a new process: its thread runs {@code _start}. */
  public static WasmProcess start(Spec spec) throws IOException {
    return start(spec, null);
  }

  /** {@link #start(Spec)} on linear memory made by {@code memoryFactory} (null: the default). */
  public static WasmProcess start(Spec spec, Function<MemoryLimits, Memory> memoryFactory)
      throws IOException {
    WasmProcess p = new WasmProcess(spec, null, memoryFactory, false);
    p.slot.run(p.body);
    return p;
  }

  /**
   * Resumes a process from its image, on {@code spec.engine()}: files are reopened by path in
   * {@code spec.sandbox()} and the guest continues inside the WASI call where it was frozen.
   */
  public static WasmProcess restore(Spec spec, ProcessImage image) throws IOException {
    return restore(spec, image, null);
  }

  /** {@link #restore(Spec, ProcessImage)} on memory from {@code memoryFactory} (null: default). */
  public static WasmProcess restore(
      Spec spec, ProcessImage image, Function<MemoryLimits, Memory> memoryFactory)
      throws IOException {
    return restore(spec, image, memoryFactory, false);
  }

  private static WasmProcess restore(
      Spec spec, ProcessImage image, Function<MemoryLimits, Memory> memoryFactory, boolean held)
      throws IOException {
    if (!image.getModuleHash().equals(spec.module().hash())) {
      throw new IOException(
          "image is of module " + image.getModuleHash() + ", not " + spec.module().hash());
    }
    if (image.getMemory().getPages() > spec.maxMemoryPages()) {
      throw new IOException(
          "image has "
              + image.getMemory().getPages()
              + " memory pages, more than ferry.runtime.max-memory-pages = "
              + spec.maxMemoryPages());
    }
    WasmProcess p = new WasmProcess(spec, image, memoryFactory, held);
    if (!held) {
      p.slot.run(p.body);
    }
    return p;
  }

  /**
   * {@link #restore(Spec, ProcessImage, Function)}, but the guest does not run until {@link
   * #release}: its thread exists (a failure to start it is known now) and waits. Used where running
   * must wait for something else to finish (an incoming migration's answer to its source); {@link
   * #kill} ends a held process without it ever running.
   */
  public static WasmProcess restoreHeld(
      Spec spec, ProcessImage image, Function<MemoryLimits, Memory> memoryFactory)
      throws IOException {
    return restore(spec, image, memoryFactory, true);
  }

  /** Lets a process started by {@link #restoreHeld} run; does nothing otherwise. */
  public void release() {
    slot.run(body);
  }

  private Instance instantiate() {
    List<HostFunction> fns = new ArrayList<>(wasi.hostFunctions());
    fns.add(
        new HostFunction(
            "env",
            "log_execution",
            FunctionType.of(List.of(ValType.I32), List.of()),
            (Instance inst, long... a) -> {
              proceed(inst);
              return null;
            }));
    Instance.Builder b =
        Instance.builder(spec.module().module())
            .withStart(false)
            .withImportValues(ImportValues.builder().withFunctions(new ArrayList<>(fns)).build());
    spec.module()
        .module()
        .memorySection()
        .filter(s -> s.memoryCount() > 0)
        .ifPresent(
            s -> {
              MemoryLimits declared = s.getMemory(0).limits();
              int max = Math.min(declared.maximumPages(), spec.maxMemoryPages());
              b.withMemoryLimits(
                  new MemoryLimits(Math.min(declared.initialPages(), max), Math.max(max, 1)));
            });
    if (memoryFactory != null) {
      b.withMemoryFactory(memoryFactory);
    }
    if (spec.engine() == Engine.COMPILED) {
      b.withMachineFactory(spec.module().compiledMachineFactory());
    }
    return b.build();
  }

  public String pid() {
    return spec.pid();
  }

  /** The process's linear memory (a {@link dev.ferry.node.memory.PagedMemory} if paged). */
  public Memory memory() {
    return instance.memory();
  }

  public Engine engine() {
    return spec.engine();
  }

  /** Completes when the process thread ends, however it ends. */
  public CompletionStage<End> end() {
    return end;
  }

  // ---------------------------------------------------------------------------------------------
  // Requests from other threads

  /**
   * Asks the process to stand still at its next migration point. Completes with a {@link Frozen}
   * (the caller must then resume or stop it); completes exceptionally with {@link
   * NoMigrationPointException} if none is reached within {@code timeoutMillis} (the process is not
   * disturbed) or {@link FreezeFailedException} if the process ends or is already freezing.
   */
  public CompletableFuture<Frozen> freeze(long timeoutMillis) {
    return freeze(timeoutMillis, false);
  }

  /**
   * {@link #freeze(long)}; with {@code memoryInPagingFile} the image leaves linear memory out (its
   * {@code memory.in_paging_file} is set, with the page count): the caller writes the memory's
   * dirty pages to the process's paging file while it stands still, and a restore reads pages from
   * there ({@link dev.ferry.node.memory.PagedMemory#restoreFactory}).
   */
  public CompletableFuture<Frozen> freeze(long timeoutMillis, boolean memoryInPagingFile) {
    FreezeRequest r = new FreezeRequest(memoryInPagingFile);
    synchronized (lock) {
      if (end.isDone()) {
        r.result.completeExceptionally(new FreezeFailedException("the process has ended"));
        return r.result;
      }
      if (pending != null || frozen != null) {
        r.result.completeExceptionally(
            new FreezeFailedException("the process is already being frozen"));
        return r.result;
      }
      pending = r;
      freezeRequested = true;
      lock.notifyAll();
    }
    // The timeout task must not outlive the request: it would keep the captured image (through
    // the request's result) reachable until it fires.
    java.util.concurrent.ScheduledFuture<?> timeout =
        TIMEOUTS.schedule(
            () -> {
              synchronized (lock) {
                if (pending == r && !r.claimed) {
                  pending = null;
                  freezeRequested = false;
                  r.result.completeExceptionally(
                      new NoMigrationPointException(
                          "process "
                              + spec.pid()
                              + " reached no migration point (WASI call or loop point) within "
                              + timeoutMillis
                              + " ms; it keeps running. A CPU-bound loop needs a preemptible"
                              + " module (ferry run --preemptible)."));
                }
              }
            },
            timeoutMillis,
            TimeUnit.MILLISECONDS);
    r.result.whenComplete((f, e) -> timeout.cancel(false));
    return r.result;
  }

  /** Stops the process for good, wherever it is: running, sleeping or frozen. */
  public void kill() {
    killed = true;
    release(); // a held process wakes to find itself killed
    Frozen f;
    synchronized (lock) {
      f = frozen;
      lock.notifyAll();
    }
    if (f != null) {
      f.decision.complete(Decision.KILL);
    }
    slot.thread().interrupt();
  }

  // ---------------------------------------------------------------------------------------------
  // CallGate: runs on the process thread, inside WASI calls

  @Override
  public boolean proceed(Instance inst) {
    if (rewinding) {
      // The rewind has reached the call where the process was frozen: from here on the guest
      // runs normally, and this call now executes for real.
      rewinding = false;
      stopRewind.apply();
      returnRegion();
      return true;
    }
    if (killed) {
      throw new KilledException();
    }
    if (freezeRequested) {
      FreezeRequest r = claim();
      if (r != null && beginUnwind(r)) {
        return false;
      }
    }
    return true;
  }

  @Override
  public boolean sleep(Instance inst, long nanos) {
    long deadline = System.nanoTime() + nanos;
    FreezeRequest r = null;
    synchronized (lock) {
      while (true) {
        if (killed) {
          throw new KilledException();
        }
        if (pending != null && !pending.claimed) {
          pending.claimed = true;
          r = pending;
          break;
        }
        long remaining = deadline - System.nanoTime();
        if (remaining <= 0) {
          return true;
        }
        try {
          TimeUnit.NANOSECONDS.timedWait(lock, remaining);
        } catch (InterruptedException e) {
          if (killed) {
            throw new KilledException();
          }
        }
      }
    }
    if (beginUnwind(r)) {
      return false;
    }
    return sleep(inst, deadline - System.nanoTime());
  }

  private FreezeRequest claim() {
    synchronized (lock) {
      if (pending != null && !pending.claimed) {
        pending.claimed = true;
        return pending;
      }
      return null;
    }
  }

  /**
   * Starts an Asyncify unwind for {@code r}, or, if the stack might not fit the buffer, fails
   * {@code r} and returns false (the WASI call then runs normally).
   */
  private boolean beginUnwind(FreezeRequest r) {
    Memory mem = instance.memory();
    int capacity = regionCapacity(mem);
    long need = 8 + unwindBound.current(instance, capacity - 8);
    if (need > capacity) {
      synchronized (lock) {
        pending = null;
        freezeRequested = false;
      }
      r.result.completeExceptionally(
          new FreezeFailedException(
              "the call stack may need up to "
                  + need
                  + " bytes to unwind but the Asyncify buffer has "
                  + capacity
                  + " (ferry.runtime.asyncify-buffer-bytes, and at most the process's memory);"
                  + " the process keeps running"));
      return false;
    }
    int size = regionSize(need, capacity);
    borrowRegion(mem, size);
    mem.writeI32(regionAddress, regionAddress + 8);
    mem.writeI32(regionAddress + 4, regionAddress + size);
    unwindingFor = r;
    startUnwind.apply(regionAddress);
    return true;
  }

  /**
   * The Asyncify buffer is not reserved memory: wasi-libc's malloc claims every page below
   * memory.size on its first call, so pages grown for a buffer before _start become heap. Instead
   * the buffer borrows the top of linear memory (what the unwind can need, see {@link #regionSize},
   * at most {@code capacity} bytes) only while an unwind or a rewind is in progress; its bytes are
   * saved first and put back before the guest runs again. The region ends at the end of memory, so
   * even an unwind that outgrew it (which {@link UnwindBound} prevents) would trap rather than
   * overwrite guest data.
   *
   * <pre>
   *   0                                       memEnd - capacity            memEnd
   *   |  guest data, stack, heap ...          | hdr | unwound frames ... ->|
   *                                           ^ regionAddress (bytes saved, restored after)
   * </pre>
   */
  private int regionCapacity(Memory mem) {
    long memEnd = (long) mem.pages() * PAGE;
    return (int) Math.min(spec.asyncifyBufferBytes(), memEnd);
  }

  /**
   * How much of the top of memory to borrow for {@code need} bytes: that rounded up to whole wasm
   * pages (so that paged memory's pages are wholly inside or outside it, and an unwind that needs a
   * little more than its bound still fits), at most {@code capacity}. Only the region is saved and
   * put back around a freeze, not the whole configured buffer (1 MiB by default).
   */
  private static int regionSize(long need, int capacity) {
    long pages = (need + PAGE - 1) / PAGE;
    return (int) Math.min(capacity, pages * PAGE);
  }

  private void borrowRegion(Memory mem, int capacity) {
    int memEnd = mem.pages() * PAGE;
    regionAddress = memEnd - capacity;
    if (mem instanceof dev.ferry.node.memory.PagedMemory pm) {
      regionCleared = pm.clearedCount();
      regionDirty = pm.dirtyBits(regionAddress / pm.pageSize(), memEnd / pm.pageSize());
    }
    regionSaved = mem.readBytes(regionAddress, capacity);
  }

  /**
   * Puts the region's own bytes back. On paged memory the pages that were clean before the borrow
   * are marked clean again, their bytes being what they were (and so what the paging file holds),
   * unless a flusher wrote pages out meanwhile: otherwise every freeze and every resume would leave
   * the whole region (a megabyte by default) to be written out again.
   */
  private void returnRegion() {
    if (regionSaved != null) {
      Memory mem = instance.memory();
      mem.write(regionAddress, regionSaved);
      if (mem instanceof dev.ferry.node.memory.PagedMemory pm && regionDirty != null) {
        int ps = pm.pageSize();
        int base = regionAddress / ps;
        // Only pages wholly inside the region: the guest may write next to it meanwhile.
        int first = (regionAddress + ps - 1) / ps;
        int end = (regionAddress + regionSaved.length) / ps;
        pm.restoreClean(base, first, end, regionDirty, regionCleared);
      }
      regionSaved = null;
      regionDirty = null;
    }
  }

  /** Places unwound frames back in linear memory and starts the rewind to where they froze. */
  private void beginRewind(byte[] frames) {
    Memory mem = instance.memory();
    if (frames.length + 8 > (long) mem.pages() * PAGE) {
      throw new IllegalStateException("saved call stack larger than memory");
    }
    // The rewind only reads the frames; the region needs to hold them and no more. (The image may
    // come from a node with a larger buffer setting, hence at least the frames' size.)
    int capacity = Math.max(regionSize(frames.length + 8, regionCapacity(mem)), frames.length + 8);
    borrowRegion(mem, capacity);
    mem.writeI32(regionAddress, regionAddress + 8 + frames.length);
    mem.writeI32(regionAddress + 4, regionAddress + capacity);
    mem.write(regionAddress + 8, frames);
    startRewind.apply(regionAddress);
    rewinding = true;
  }

  // ---------------------------------------------------------------------------------------------
  // The process thread

  private void run(byte[] framesToRewind) {
    try {
      if (held && killed) {
        throw new KilledException(); // killed while held: it never ran
      }
      if (framesToRewind != null) {
        beginRewind(framesToRewind);
      }
      while (true) {
        try {
          start.apply();
        } catch (FerryWasi.ExitException e) {
          finish(Outcome.EXITED, e.code(), null);
          return;
        }
        if (unwindingFor == null) {
          finish(Outcome.EXITED, 0, null);
          return;
        }
        stopUnwind.apply();
        byte[] frames = takeFrames();
        Decision d = standStill(frames);
        if (d == Decision.STOP) {
          finish(Outcome.FROZEN, 0, null);
          return;
        }
        if (d == Decision.KILL) {
          finish(Outcome.KILLED, 0, null);
          return;
        }
        beginRewind(frames);
      }
    } catch (KilledException e) {
      finish(Outcome.KILLED, 0, null);
    } catch (ChicoryInterruptedException e) {
      if (killed) {
        finish(Outcome.KILLED, 0, null);
      } else {
        fail(e);
      }
    } catch (Throwable t) {
      if (killed) {
        finish(Outcome.KILLED, 0, null);
      } else {
        fail(t);
      }
    }
  }

  /** After an unwind: copies the frames out of the region and gives the region back. */
  private byte[] takeFrames() {
    Memory mem = instance.memory();
    int current = mem.readInt(regionAddress);
    byte[] frames = mem.readBytes(regionAddress + 8, current - regionAddress - 8);
    returnRegion();
    return frames;
  }

  /** Captures the image, hands it to the requester and waits for its decision. */
  private Decision standStill(byte[] frames) {
    FreezeRequest r = unwindingFor;
    unwindingFor = null;
    long stoodStill = System.nanoTime();
    ProcessImage image;
    try {
      image = capture(frames, r.memoryInPagingFile);
    } catch (RuntimeException | OutOfMemoryError e) {
      // Capturing copies the whole memory: if that fails (even for want of heap) the freeze
      // fails and the process runs on, never the other way round.
      synchronized (lock) {
        pending = null;
        freezeRequested = false;
      }
      r.result.completeExceptionally(new FreezeFailedException("capture failed: " + e, e));
      return Decision.RESUME;
    }
    Frozen f = new Frozen(image, stoodStill - r.requestedAt, System.nanoTime() - stoodStill);
    synchronized (lock) {
      pending = null;
      freezeRequested = false;
      frozen = f;
    }
    r.result.complete(f);
    Decision d;
    if (killed) {
      d = Decision.KILL;
    } else {
      d = f.decision.join();
    }
    synchronized (lock) {
      frozen = null;
    }
    return d;
  }

  private void fail(Throwable t) {
    FreezeRequest r = unwindingFor;
    String why;
    if (r != null) {
      why = "unwinding for a freeze failed (" + t + ")";
      r.result.completeExceptionally(new FreezeFailedException(why, t));
    } else {
      why = String.valueOf(t.getMessage() != null ? t.getMessage() : t);
    }
    finish(Outcome.FAILED, 0, why);
  }

  private void finish(Outcome outcome, int code, String error) {
    FreezeRequest r;
    synchronized (lock) {
      r = pending;
      pending = null;
      freezeRequested = false;
    }
    if (r != null) {
      r.result.completeExceptionally(
          new FreezeFailedException("the process ended (" + outcome + ") before it froze"));
    }
    wasi.close();
    end.complete(new End(outcome, code, error));
  }

  // ---------------------------------------------------------------------------------------------
  // Image capture and load

  private ProcessImage capture(byte[] frames, boolean memoryInPagingFile) {
    Memory mem = instance.memory();
    int pages = mem.pages();
    LinearMemory.Builder lm =
        memoryInPagingFile
            ? LinearMemory.newBuilder().setPages(pages).setInPagingFile(true)
            : memoryRuns(mem, pages);
    ProcessImage.Builder b =
        ProcessImage.newBuilder()
            .setFormatVersion(1)
            .setProcessId(spec.pid())
            .setModuleHash(spec.module().hash())
            .setMemory(lm)
            .setAsyncify(AsyncifyBuffer.newBuilder().setData(ByteString.copyFrom(frames)))
            .setWasi(wasi.snapshot())
            .setClocks(GuestClocks.newBuilder().setMonotonicNanos(wasi.clock().snapshot()))
            .setCapturedAtMicros(System.currentTimeMillis() * 1000)
            .setCapturedOnEngine(spec.engine().wireName());
    for (int i = 0; i < instance.globalCount(); i++) {
      GlobalInstance g = instance.global(i);
      if (g.getMutabilityType() == MutabilityType.Var) {
        b.addGlobals(
            GlobalValue.newBuilder()
                .setIndex(i)
                .setType(g.getType().toString())
                .setLow(g.getValueLow())
                .setHigh(g.getValueHigh()));
      }
    }
    return b.build();
  }

  /** Linear memory as runs of non-zero wasm pages. */
  private static LinearMemory.Builder memoryRuns(Memory mem, int pages) {
    LinearMemory.Builder lm = LinearMemory.newBuilder().setPages(pages);
    // One bulk copy out of the engine's memory; the image's runs of non-zero pages are slices of
    // it (the array is never written again), not copies.
    byte[] all = mem.readBytes(0, pages * PAGE);
    int runStart = -1;
    for (int p = 0; p <= pages; p++) {
      boolean zero = p == pages || Arrays.equals(all, p * PAGE, (p + 1) * PAGE, ZERO_PAGE, 0, PAGE);
      if (!zero && runStart < 0) {
        runStart = p;
      } else if (zero && runStart >= 0) {
        lm.addRuns(
            MemoryRun.newBuilder()
                .setFirstPage(runStart)
                .setData(
                    UnsafeByteOperations.unsafeWrap(all, runStart * PAGE, (p - runStart) * PAGE)));
        runStart = -1;
      }
    }
    return lm;
  }

  private void loadImage(ProcessImage image) throws IOException {
    Memory mem = instance.memory();
    int want = image.getMemory().getPages();
    int have = mem.pages();
    if (want > have && mem.grow(want - have) < 0) {
      throw new IOException("cannot grow memory to " + want + " pages");
    }
    if (want < have) {
      throw new IOException("image has fewer memory pages than the module's initial memory");
    }
    if (image.getMemory().getInPagingFile()) {
      // The memory (a PagedMemory over the paging file) reads every page from there.
      if (!(mem instanceof dev.ferry.node.memory.PagedMemory)) {
        throw new IOException("image keeps its memory in a paging file but memory is not paged");
      }
      loadGlobals(image);
      return;
    }
    // Data segments initialised the first pages; the image says what they hold now.
    boolean[] covered = new boolean[have];
    int largest = 0;
    for (MemoryRun r : image.getMemory().getRunsList()) {
      largest = Math.max(largest, r.getData().size());
      int n = r.getData().size() / PAGE;
      if (r.getData().size() % PAGE != 0 || r.getFirstPage() + n > want) {
        throw new IOException("corrupt image: memory run outside memory");
      }
      for (int i = 0; i < n; i++) {
        if (r.getFirstPage() + i < have) {
          covered[r.getFirstPage() + i] = true;
        }
      }
    }
    for (int p = 0; p < have; p++) {
      if (!covered[p]) {
        mem.write(p * PAGE, ZERO_PAGE);
      }
    }
    // Through one reused buffer: Chicory's memory is written from byte arrays, and an array per
    // page would be as much garbage as the image.
    byte[] buf = new byte[Math.min(RESTORE_BUFFER, largest)];
    for (MemoryRun r : image.getMemory().getRunsList()) {
      ByteString data = r.getData();
      for (int off = 0; off < data.size(); off += buf.length) {
        int len = Math.min(buf.length, data.size() - off);
        data.copyTo(buf, off, 0, len);
        mem.write(r.getFirstPage() * PAGE + off, buf, 0, len);
      }
    }
    loadGlobals(image);
  }

  private void loadGlobals(ProcessImage image) throws IOException {
    for (GlobalValue g : image.getGlobalsList()) {
      if (g.getIndex() >= instance.globalCount()) {
        throw new IOException("corrupt image: global " + g.getIndex() + " does not exist");
      }
      GlobalInstance gi = instance.global(g.getIndex());
      gi.setValueLow(g.getLow());
      gi.setValueHigh(g.getHigh());
    }
  }
}
