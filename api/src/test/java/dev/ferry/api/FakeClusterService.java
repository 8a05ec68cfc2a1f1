package dev.ferry.api;

import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ModuleInfo;
import dev.ferry.node.service.NodeInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.node.service.RunRequest;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.NodeEvent;
import dev.ferry.transport.proto.ProcessEvent;
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
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * An in-memory {@link ClusterService} for API tests: processes do nothing by themselves; tests
 * write their output ({@link #append}) and end them ({@link #exit}, {@link #fail}). It follows the
 * service contract's states and failures (404 unknown pid or node, 409 wrong state, 400 bad module
 * or strategy).
 *
 * <p>The cluster is three nodes: {@value #SELF} (up, where processes start), {@value #OTHER} (up,
 * compiled engine) and {@value #UNREACHABLE} (unreachable, nothing known). A migration stays {@code
 * pending} until a test moves it ({@link #advance}, {@link #abort}), or, with {@link #autoAdvance}
 * set when it starts, it takes one step every {@link #AUTO_STEP} to {@code committed} (to {@code
 * aborted} at {@code transferring} if {@link #abortReason} was set). Like a node's coordinator,
 * committing shows the state first and completes the record ({@code finishedAt}, {@code
 * totalMicros}) a step later. Every change of a migration is published as an event, like a node
 * does; tests publish others with {@link #emit}.
 */
public final class FakeClusterService implements ClusterService, AutoCloseable {
  /** The default engine of this fake "node". */
  public static final Engine DEFAULT_ENGINE = Engine.INTERPRETER;

  /** This node's name; processes start here. */
  public static final String SELF = "fake-node";

  /** Another node that is up. */
  public static final String OTHER = "n2";

  /** A node the failure detector reports unreachable. */
  public static final String UNREACHABLE = "n3";

  /** The strategies this fake knows. */
  public static final List<String> STRATEGIES =
      List.of(
          "data-segment",
          "gfvm",
          "rpc-handoff",
          "syscall-forwarding",
          "environment",
          "pre-copy",
          "post-copy",
          "flushing");

  /** The step of an auto-advancing migration. */
  public static final Duration AUTO_STEP = Duration.ofMillis(10);

  private static final Instant MIGRATIONS_START = Instant.parse("2025-01-02T03:06:00Z");

  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "fake-service-timer");
            t.setDaemon(true);
            return t;
          });
  private final Map<String, ModuleInfo> modules = new LinkedHashMap<>();
  private final Map<String, FakeProcess> processes = new LinkedHashMap<>();
  private final Map<String, FakeMigration> migrations = new LinkedHashMap<>();
  private final List<FakeSubscription> subscriptions = new CopyOnWriteArrayList<>();
  private int nextPid = 1;
  private int nextMigration = 1;
  private int closedSubscriptions;

  /** New migrations advance by themselves (see the class comment). */
  public volatile boolean autoAdvance;

  /** When set as an auto-advancing migration starts, it aborts with this error. */
  public volatile String abortReason;

  /**
   * When set, {@link #migration} answers NOT_FOUND (as a node does for a migration not yet listed
   * by every node): only the event stream tells how a migration goes.
   */
  public volatile boolean recordsLag;

  /** The last RunRequest received, for assertions. */
  public volatile RunRequest lastRun;

  /** When set, every list() fails with this (to test 500 mapping). */
  public volatile RuntimeException listFailure;

  private static final class FakeProcess {
    final String id;
    ProcessState state = ProcessState.RUNNING;
    Engine engine;
    String node = SELF;
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

  private static final class FakeMigration {
    final String id;
    final String pid;
    final String from;
    final String to;
    final String strategy;
    final Instant requestedAt;
    final String fromEngine;
    final String toEngine;
    final String plannedAbort;
    String state = "pending";
    Instant finishedAt;
    long freeze;
    long capture;
    long transfer;
    long restore;
    long totalFreeze;
    long total;
    long bytes;
    String error;

    FakeMigration(
        String id,
        String pid,
        String from,
        String to,
        String strategy,
        Instant requestedAt,
        String fromEngine,
        String toEngine,
        String plannedAbort) {
      this.id = id;
      this.pid = pid;
      this.from = from;
      this.to = to;
      this.strategy = strategy;
      this.requestedAt = requestedAt;
      this.fromEngine = fromEngine;
      this.toEngine = toEngine;
      this.plannedAbort = plannedAbort;
    }

    boolean ended() {
      return state.equals("committed") || state.equals("aborted") || state.equals("cancelled");
    }
  }

  private final class FakeSubscription implements Subscription {
    final Consumer<FerryEvent> listener;
    final AtomicBoolean closed = new AtomicBoolean();

    FakeSubscription(Consumer<FerryEvent> listener) {
      this.listener = listener;
    }

    @Override
    public void close() {
      if (closed.compareAndSet(false, true)) {
        subscriptions.remove(this);
        synchronized (FakeClusterService.this) {
          closedSubscriptions++;
          FakeClusterService.this.notifyAll();
        }
      }
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

  public synchronized String node(String pid) {
    return get(pid).node;
  }

  /** Moves a migration one state on; from restoring it commits (the process moves). */
  public synchronized void advance(String id) {
    commitStep(id);
    FakeMigration m = migrationOrThrow(id);
    if (m.state.equals("committed") && m.finishedAt == null) {
      complete(m);
    }
  }

  /**
   * One step, where committing leaves the record without its end time and total for a moment, as a
   * node's coordinator does (it publishes the state, then completes the record).
   */
  private void commitStep(String id) {
    FakeMigration m = migrationOrThrow(id);
    FakeProcess p = get(m.pid);
    if (m.state.equals("committed") && m.finishedAt == null) {
      complete(m);
      return;
    }
    switch (m.state) {
      case "pending" -> {
        m.state = "freezing";
        p.state = ProcessState.MIGRATING;
      }
      case "freezing" -> m.state = "transferring";
      case "transferring" -> m.state = "restoring";
      case "restoring" -> {
        m.state = "committed";
        m.freeze = 1234;
        m.capture = 567;
        m.transfer = 8901;
        m.restore = 2345;
        m.totalFreeze = 13047;
        m.bytes = 3 * 1024 * 1024 / 2;
        p.state = ProcessState.RUNNING;
        p.node = m.to;
        p.engine = Engine.parse(m.toEngine);
      }
      default -> throw new IllegalStateException("migration " + id + " has ended");
    }
    published(m);
  }

  private void complete(FakeMigration m) {
    m.total = 15000;
    m.finishedAt = m.requestedAt.plusMillis(15);
    published(m);
  }

  /** Ends a migration as aborted with {@code error}; the process runs on at its source. */
  public synchronized void abort(String id, String error) {
    FakeMigration m = migrationOrThrow(id);
    if (m.ended()) {
      throw new IllegalStateException("migration " + id + " has ended");
    }
    end(m, "aborted", error);
  }

  /**
   * Makes a migration one its destination holds in doubt (it restarted holding the process and its
   * source cannot say whether it committed); the process is the destination's, not running.
   */
  public synchronized void holdInDoubt(String id) {
    FakeMigration m = migrationOrThrow(id);
    m.state = "in_doubt";
    m.error = "node " + m.to + " restarted holding the process and waits for node " + m.from;
    published(m);
  }

  public synchronized String migrationState(String id) {
    return migrationOrThrow(id).state;
  }

  /** The id of the latest migration of {@code pid}, or null if it has never been moved. */
  public synchronized String lastMigrationOf(String pid) {
    String last = null;
    for (FakeMigration m : migrations.values()) {
      if (m.pid.equals(pid)) {
        last = m.id;
      }
    }
    return last;
  }

  /** Publishes an event to every subscriber, in the calling thread, in order. */
  public synchronized void emit(FerryEvent e) {
    for (FakeSubscription s : subscriptions) {
      s.listener.accept(e);
    }
  }

  /** A process event published by this node at {@code atMicros}. */
  public static FerryEvent processEvent(long atMicros, String pid, String what, int exitCode) {
    return FerryEvent.newBuilder()
        .setAtMicros(atMicros)
        .setNode(SELF)
        .setProcessEvent(
            ProcessEvent.newBuilder()
                .setPid(pid)
                .setWhat(what)
                .setExitCode(exitCode)
                .setEngine("interpreter"))
        .build();
  }

  /** A membership event about {@code name}, published by this node. */
  public static FerryEvent nodeEvent(long atMicros, String name, String status) {
    return FerryEvent.newBuilder()
        .setAtMicros(atMicros)
        .setNode(SELF)
        .setNodeEvent(
            NodeEvent.newBuilder()
                .setName(name)
                .setAddress("pekko://ferry@127.0.0.1:7411")
                .setStatus(status))
        .build();
  }

  /** Subscriptions open now. */
  public int subscriberCount() {
    return subscriptions.size();
  }

  /** Subscriptions closed so far. */
  public synchronized int closedSubscriptions() {
    return closedSubscriptions;
  }

  /** Waits until {@code n} subscriptions are open; false if the timeout passes first. */
  public boolean awaitSubscribers(int n, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (subscriptions.size() < n) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      Thread.sleep(5);
    }
    return true;
  }

  /** Waits until no subscription is open; false if the timeout passes first. */
  public boolean awaitNoSubscribers(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!subscriptions.isEmpty()) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      Thread.sleep(5);
    }
    return true;
  }

  /** Waits until {@code n} subscriptions in all have been closed; false if the timeout passes. */
  public synchronized boolean awaitClosedSubscriptions(int n, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (closedSubscriptions < n) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
    }
    return true;
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

  // ---------------------------------------------------------------- the cluster

  @Override
  public synchronized CompletionStage<List<NodeInfo>> nodes() {
    List<NodeInfo> nodes = new ArrayList<>();
    nodes.add(node(SELF, "pekko://ferry@127.0.0.1:7401", "up", "interpreter", 0.25, 7400));
    nodes.add(node(OTHER, "pekko://ferry@127.0.0.1:7411", "up", "compiled", 0.5, 7410));
    nodes.add(
        new NodeInfo(
            UNREACHABLE,
            "pekko://ferry@127.0.0.1:7421",
            "unreachable",
            null,
            null,
            -1,
            0,
            0,
            null));
    return done(nodes);
  }

  private NodeInfo node(
      String name, String address, String status, String engine, double load, int httpPort) {
    int all = 0;
    int running = 0;
    for (FakeProcess p : processes.values()) {
      if (p.node.equals(name)) {
        all++;
        running += p.state == ProcessState.RUNNING ? 1 : 0;
      }
    }
    return new NodeInfo(
        name,
        address,
        status,
        engine,
        "17.0.15 (Fake)",
        load,
        all,
        running,
        "http://127.0.0.1:" + httpPort);
  }

  private static String engineOf(String node) {
    return node.equals(OTHER) ? "compiled" : "interpreter";
  }

  @Override
  public synchronized CompletionStage<MigrationInfo> migrate(
      String pid, String toNode, String strategy) {
    String s = strategy == null ? "data-segment" : strategy;
    if (!STRATEGIES.contains(s)) {
      return failed(
          FerryException.badRequest("unknown strategy '" + s + "'; available: " + STRATEGIES));
    }
    FakeProcess p = processes.get(pid);
    if (p == null) {
      return failed(noProcess(pid));
    }
    String to = toNode == null ? (p.node.equals(OTHER) ? SELF : OTHER) : toNode;
    if (!List.of(SELF, OTHER, UNREACHABLE).contains(to)) {
      return failed(
          FerryException.notFound("no node '" + to + "' in the cluster (see ferry nodes)"));
    }
    for (FakeMigration m : migrations.values()) {
      if (m.pid.equals(pid) && !m.ended()) {
        return failed(
            FerryException.conflict(
                "process " + pid + " is already migrating (" + m.id + ", " + m.state + ")"));
      }
    }
    if (p.state != ProcessState.RUNNING) {
      return failed(
          FerryException.conflict(
              "process '"
                  + pid
                  + "' is "
                  + p.state.name().toLowerCase(Locale.ROOT)
                  + ", not running"));
    }
    if (to.equals(p.node)) {
      return failed(FerryException.conflict("process " + pid + " is already on " + to));
    }
    int n = nextMigration++;
    FakeMigration m =
        new FakeMigration(
            "m-" + n,
            pid,
            p.node,
            to,
            s,
            MIGRATIONS_START.plusSeconds(n),
            p.engine.wireName(),
            engineOf(to),
            abortReason);
    migrations.put(m.id, m);
    published(m);
    if (autoAdvance) {
      scheduleStep(m.id);
    }
    return done(info(m));
  }

  private void scheduleStep(String id) {
    timer.schedule(
        () -> {
          synchronized (this) {
            FakeMigration m = migrations.get(id);
            if (m.finishedAt != null) {
              return;
            }
            if (m.plannedAbort != null && m.state.equals("transferring")) {
              end(m, "aborted", m.plannedAbort);
              return;
            }
            commitStep(id);
            if (m.finishedAt == null) {
              scheduleStep(id);
            }
          }
        },
        AUTO_STEP.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  private void end(FakeMigration m, String state, String error) {
    FakeProcess p = get(m.pid);
    m.state = state;
    m.error = error;
    m.finishedAt = m.requestedAt.plusMillis(5);
    if (p.state == ProcessState.MIGRATING) {
      p.state = ProcessState.RUNNING;
    }
    published(m);
  }

  @Override
  public synchronized CompletionStage<List<MigrationInfo>> migrations() {
    List<MigrationInfo> all = new ArrayList<>();
    for (FakeMigration m : migrations.values()) {
      all.add(0, info(m));
    }
    return done(all);
  }

  @Override
  public synchronized CompletionStage<MigrationInfo> migration(String id) {
    FakeMigration m = migrations.get(id);
    return m == null || recordsLag ? failed(noMigration(id)) : done(info(m));
  }

  @Override
  public synchronized CompletionStage<MigrationInfo> cancelMigration(String id) {
    FakeMigration m = migrations.get(id);
    if (m == null) {
      return failed(noMigration(id));
    }
    if (m.ended()) {
      return failed(
          FerryException.conflict("migration " + id + " has already ended (" + m.state + ")"));
    }
    if (m.state.equals("in_doubt")) {
      return failed(
          FerryException.conflict(
              "migration " + id + " is in doubt: node " + m.to + " holds the process"));
    }
    if (m.state.equals("restoring")) {
      // Past the point of no return: like a node's coordinator, it goes on and commits.
      return done(info(m));
    }
    end(m, "cancelled", "cancelled by the operator");
    return done(info(m));
  }

  @Override
  public synchronized CompletionStage<MigrationInfo> commitInDoubt(String id) {
    FakeMigration m = migrations.get(id);
    if (m == null) {
      return failed(noMigration(id));
    }
    if (!m.state.equals("in_doubt")) {
      return failed(
          FerryException.conflict(
              "migration "
                  + id
                  + " is "
                  + m.state
                  + ", not in doubt: only a migration a"
                  + " destination holds in doubt can be committed by hand"));
    }
    end(
        m,
        "committed",
        "committed by an operator: node "
            + m.from
            + " is not in the cluster; the process runs on node "
            + m.to
            + " from the image that arrived");
    get(m.pid).node = m.to;
    return done(info(m));
  }

  @Override
  public Subscription subscribe(Consumer<FerryEvent> listener) {
    FakeSubscription s = new FakeSubscription(listener);
    subscriptions.add(s);
    return s;
  }

  private void published(FakeMigration m) {
    emit(
        FerryEvent.newBuilder()
            .setAtMicros(micros(m.finishedAt == null ? m.requestedAt : m.finishedAt))
            .setNode(SELF)
            .setMigration(record(m))
            .build());
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

  private FakeMigration migrationOrThrow(String id) {
    FakeMigration m = migrations.get(id);
    if (m == null) {
      throw noMigration(id);
    }
    return m;
  }

  private static MigrationInfo info(FakeMigration m) {
    return new MigrationInfo(
        m.id,
        m.pid,
        m.from,
        m.to,
        m.strategy,
        m.state,
        m.requestedAt,
        m.finishedAt,
        m.freeze,
        m.capture,
        m.transfer,
        m.restore,
        m.totalFreeze,
        m.total,
        m.bytes,
        m.bytes,
        m.fromEngine,
        m.toEngine,
        m.error,
        m.transfer / 2,
        m.transfer / 2,
        null);
  }

  private static MigrationRecord record(FakeMigration m) {
    MigrationRecord.Builder b =
        MigrationRecord.newBuilder()
            .setId(m.id)
            .setPid(m.pid)
            .setFromNode(m.from)
            .setToNode(m.to)
            .setStrategy(m.strategy)
            .setState(MigrationRecord.State.valueOf(m.state.toUpperCase(Locale.ROOT)))
            .setRequestedAtMicros(micros(m.requestedAt))
            .setFreezeMicros(m.freeze)
            .setCaptureMicros(m.capture)
            .setTransferMicros(m.transfer)
            .setRestoreMicros(m.restore)
            .setTotalFreezeMicros(m.totalFreeze)
            .setTotalMicros(m.total)
            .setBytesMoved(m.bytes)
            .setImageBytes(m.bytes)
            .setFromEngine(m.fromEngine)
            .setToEngine(m.toEngine);
    if (m.finishedAt != null) {
      b.setFinishedAtMicros(micros(m.finishedAt));
    }
    if (m.error != null) {
      b.setError(m.error);
    }
    return b.build();
  }

  private static long micros(Instant t) {
    return t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }

  private static FerryException noMigration(String id) {
    return FerryException.notFound("no migration '" + id + "' in the cluster");
  }

  private static ProcessInfo info(FakeProcess p) {
    return new ProcessInfo(
        p.id,
        p.state,
        p.engine,
        p.node,
        p.moduleHash,
        p.args,
        p.exitCode,
        p.stdout.size(),
        p.stderr.size(),
        p.startedAt,
        p.endedAt,
        p.lastCheckpoint,
        p.error,
        null,
        null);
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
