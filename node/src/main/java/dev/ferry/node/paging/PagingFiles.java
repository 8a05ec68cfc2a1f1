package dev.ferry.node.paging;

import com.google.protobuf.UnsafeByteOperations;
import dev.ferry.node.DaemonThreads;
import dev.ferry.node.memory.PagedMemory;
import dev.ferry.strategies.GfvmSettings;
import dev.ferry.strategies.PageFlush;
import dev.ferry.transport.proto.Empty;
import dev.ferry.transport.proto.ErrorMsg;
import dev.ferry.transport.proto.PageList;
import dev.ferry.transport.proto.PageReply;
import dev.ferry.transport.proto.PageRequest;
import dev.ferry.transport.proto.PageWrite;
import dev.ferry.transport.proto.PagingStatus;
import dev.ferry.transport.proto.ReplicaStatus;
import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The paging files of this node's paged processes (their primary copies) and the replicas it keeps
 * for other nodes' processes.
 *
 * <p>A paged process runs on a {@link PagedMemory}. Its paging file lives in this node's {@link
 * PageStore} and, written in parallel, on {@code replication-factor - 1} other nodes. The invariant
 * that makes a migration cheap: every page that is not dirty in memory holds exactly what the local
 * copy and every in-sync replica hold. A flush keeps it: under the file's lock it clears each
 * page's dirty bit, copies the page, and writes the copies to the local store and to every in-sync
 * replica (a write the guest makes meanwhile dirties the page again). So when the process stands
 * still, writing its dirty pages makes every in-sync replica a complete image of its memory, and a
 * replica holder can resume it with no page resident, reading pages from its own store.
 *
 * <p>The background flusher runs every {@code flush-interval} and writes the dirty pages that
 * nothing wrote for {@code quiet-time}. It also keeps replica sets whole: a replica whose node left
 * or whose write failed is reported lost (a {@code replica-lost} event) and replaced by a full copy
 * on another node (a {@code replicated} event), or stays missing, reported by {@code ferry status},
 * until a node is available.
 *
 * <p>Not guaranteed: a replica set is not re-established after the primary's node dies (the
 * process, which lived in that node's JVM, is lost with it unless it had a checkpoint); copies left
 * on a node that was down when their process ended are not collected.
 */
public final class PagingFiles implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PagingFiles.class);
  private static final SecureRandom RANDOM = new SecureRandom();

  /** Pages per write request: bounded frames, and replicas written while the next batch fills. */
  static final int BATCH_BYTES = 4 << 20;

  /** The other nodes, as paging files need them. Implemented by the cluster. */
  public interface Peers {
    /** Nodes that could hold a replica: up, not this node, least loaded first. */
    List<String> candidates();

    /** Whether {@code node} is a member that is up. */
    boolean isUp(String node);

    /**
     * Sends a request to {@code node}'s page channel and waits for its answer; {@code patient}:
     * wait out a moment of unreachability (a page a process needs) rather than fail at once.
     */
    PageReply call(String node, PageRequest request, boolean patient) throws IOException;
  }

  /** Told of replica losses and re-replications, for the event stream. */
  @FunctionalInterface
  public interface Events {
    void on(String pid, String what, String detail);
  }

  private static final Peers NO_PEERS =
      new Peers() {
        @Override
        public List<String> candidates() {
          return List.of();
        }

        @Override
        public boolean isUp(String node) {
          return false;
        }

        @Override
        public PageReply call(String node, PageRequest request, boolean patient)
            throws IOException {
          throw new IOException("not in a cluster");
        }
      };

  private final String self;
  private final PageStore store;
  private final GfvmSettings settings;
  private final Events events;
  private final Map<String, Primary> primaries = new ConcurrentHashMap<>();

  /** Files whose frozen process serves its pages to other nodes (post-copy), by file name. */
  private final Map<String, Primary> serving = new ConcurrentHashMap<>();

  /**
   * Files this node served from a frozen process's memory and no longer does: what its store holds
   * of them is older than that memory was, so reads of them are refused, never answered stale.
   */
  private final java.util.Set<String> retired = ConcurrentHashMap.newKeySet();

  private final ExecutorService io =
      Executors.newCachedThreadPool(DaemonThreads.named("ferry-paging-io"));
  private final ScheduledExecutorService flusher =
      Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("ferry-paging-flusher"));
  private volatile Peers peers = NO_PEERS;

  public PagingFiles(String self, PageStore store, GfvmSettings settings, Events events) {
    this.self = self;
    this.store = store;
    this.settings = settings;
    this.events = events;
    long every = settings.flushInterval().toMillis();
    flusher.scheduleWithFixedDelay(this::pass, every, every, TimeUnit.MILLISECONDS);
  }

  public void setPeers(Peers peers) {
    this.peers = peers;
  }

  public GfvmSettings settings() {
    return settings;
  }

  public PageStore store() {
    return store;
  }

  /** One replica of a primary's file, as the primary sees it. */
  private static final class Replica {
    final String node;
    volatile String state; // in-sync, seeding, lost
    volatile long pages;

    Replica(String node, String state) {
      this.node = node;
      this.state = state;
    }
  }

  /**
   * Where a restored memory reads the pages it does not hold: this node's copy of the file and, for
   * pages it lacks, another node's copy (the post-copy source until it says the file is complete;
   * the flushing file server, always).
   */
  public final class FileSource implements dev.ferry.node.memory.PageSource {
    final String pid;
    final String file;
    final String fetchFrom;
    final String fetchFile;
    final boolean remoteBacked;
    volatile boolean complete;
    final AtomicLong remoteFaults = new AtomicLong();

    FileSource(String pid, dev.ferry.transport.proto.Paging pg) {
      this.pid = pid;
      this.file = pg.getFile();
      this.fetchFrom = pg.getFetchFrom().isEmpty() ? null : pg.getFetchFrom();
      this.fetchFile = pg.getFetchFile().isEmpty() ? pg.getFile() : pg.getFetchFile();
      this.remoteBacked = pg.getRemoteBacked() && fetchFrom != null;
      // Post-copy: incomplete until the source says every page is here. Flushing: never here.
      this.complete = fetchFrom == null || remoteBacked;
    }

    @Override
    public byte[] load(int page) {
      while (true) {
        if (!remoteBacked) {
          byte[] b = store.read(file, page);
          if (b != null || complete) {
            return b;
          }
        }
        PageReply r;
        try {
          r =
              call(
                  fetchFrom,
                  PageRequest.newBuilder()
                      .setFile(fetchFile)
                      .setRead(PageList.newBuilder().addPages(page))
                      .build(),
                  true);
        } catch (IOException e) {
          if (!remoteBacked && complete) {
            continue; // the push completed meanwhile: the page is here now
          }
          throw new IllegalStateException(
              "page "
                  + page
                  + " of process "
                  + pid
                  + " could not be fetched from node "
                  + fetchFrom
                  + " ("
                  + e.getMessage()
                  + ")"
                  + (remoteBacked
                      ? ": its paging file is on that file server only (flushing)"
                      : ": post-copy had not moved every page from its source node yet"),
              e);
        }
        if (!remoteBacked && complete) {
          // The push completed while the page was asked for: the source may have stopped
          // serving its frozen memory. Every page is here now, and this copy is the one to trust.
          continue;
        }
        remoteFaults.incrementAndGet();
        byte[] got = r.getPagesCount() == 0 ? null : r.getData().toByteArray();
        log.debug(
            "remote fault of {}: page {} from {}:{} -> {}",
            pid,
            page,
            fetchFrom,
            fetchFile,
            got == null ? "zero" : got.length + " bytes");
        return got;
      }
    }
  }

  /** The primary copy of a running paged process's file. Mutated under {@code this}. */
  private final class Primary {
    final String pid;
    final String file;
    final PagedMemory memory;
    final FileSource source; // null: a fresh memory, every absent page is zeros
    final List<Replica> replicas = new ArrayList<>();
    final AtomicLong flushed = new AtomicLong();
    final long quietEpochs;
    volatile boolean released;

    /** Whether this node keeps a copy (not for a file on a flushing file server). */
    boolean localCopy() {
      return source == null || !source.remoteBacked;
    }

    /** False while post-copy is still pushing pages here: nothing may be written out yet. */
    boolean complete() {
      return source == null || source.complete;
    }

    Primary(String pid, String file, PagedMemory memory, FileSource source) {
      this.pid = pid;
      this.file = file;
      this.memory = memory;
      this.source = source;
      long interval = Math.max(1, settings.flushInterval().toMillis());
      this.quietEpochs = (settings.quietTime().toMillis() + interval - 1) / interval;
    }

    synchronized List<String> replicaNodes(String state) {
      List<String> out = new ArrayList<>();
      for (Replica r : replicas) {
        if (state == null || r.state.equals(state)) {
          out.add(r.node);
        }
      }
      return out;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Primaries: processes running here

  /** The primary copy of a paged process running here, or an error saying there is none. */
  private Primary primary(String pid) throws IOException {
    Primary p = primaries.get(pid);
    if (p == null) {
      throw new IOException("process " + pid + " has no paging file on " + self);
    }
    return p;
  }

  /** A new name for a process's paging file. */
  public static String newFile(String pid) {
    byte[] b = new byte[6];
    RANDOM.nextBytes(b);
    return pid + "@" + HexFormat.of().formatHex(b);
  }

  /**
   * Starts a new, empty paging file for {@code memory} (a process started here, or restored from a
   * full image): every page is zeros or dirty, so the file starts empty; replicas are placed by the
   * next flusher pass.
   */
  public void create(String pid, String file, PagedMemory memory) {
    store.drop(file);
    Primary p = new Primary(pid, file, memory, null);
    primaries.put(pid, p);
    membershipChanged(); // place its replicas now rather than at the next pass
  }

  /** Where a memory restored here from {@code pg} reads its pages (see {@link FileSource}). */
  public FileSource open(String pid, dev.ferry.transport.proto.Paging pg) {
    return new FileSource(pid, pg);
  }

  /**
   * Takes over the file a process moved here with: after gfvm or pre-copy this node's copy is
   * complete and so is each of the replicas' (they received the last flush before the process
   * froze); after post-copy pages are still arriving; after flushing the file is on the file server
   * (its only replica) and this node keeps no copy.
   */
  public void adopt(
      String pid, dev.ferry.transport.proto.Paging pg, PagedMemory memory, FileSource source) {
    Primary p = new Primary(pid, pg.getFile(), memory, source);
    synchronized (p) {
      for (String r : pg.getReplicasList()) {
        if (!r.equals(self)) {
          p.replicas.add(new Replica(r, "in-sync"));
        }
      }
    }
    primaries.put(pid, p);
  }

  /** The replicas of a paged process running here, in-sync ones only. */
  public Optional<List<String>> replicas(String pid) {
    Primary p = primaries.get(pid);
    return p == null ? Optional.empty() : Optional.of(p.replicaNodes("in-sync"));
  }

  /** Why a paged process running here cannot move now, or null. */
  public String busy(String pid) {
    Primary p = primaries.get(pid);
    if (p == null || p.complete()) {
      return null;
    }
    return "process "
        + pid
        + " is still receiving its pages from node "
        + p.source.fetchFrom
        + " (post-copy); move it once that migration has committed";
  }

  /**
   * The process no longer runs here. With {@code keepLocal} this node's copy stays (as a replica of
   * the process's new primary); copies on nodes not in {@code keep} are dropped, in the background.
   */
  public void release(String pid, boolean keepLocal, Collection<String> keep) {
    Primary p = primaries.remove(pid);
    if (p == null) {
      return;
    }
    if (serving.remove(p.file) != null) {
      retired.add(p.file);
    }
    List<String> drop;
    synchronized (p) {
      p.released = true;
      drop = p.replicaNodes(null);
    }
    drop.removeIf(keep::contains);
    io.execute(
        () -> {
          if (!keepLocal) {
            try {
              store.drop(p.file);
            } catch (RuntimeException e) {
              log.warn("paging file {}: local copy not dropped: {}", p.file, e.toString());
            }
          }
          for (String n : drop) {
            try {
              call(n, PageRequest.newBuilder().setFile(p.file).setDrop(Empty.getDefaultInstance()));
            } catch (IOException e) {
              log.info("paging file {}: copy on {} not dropped: {}", p.file, n, e.getMessage());
            }
          }
        });
  }

  /** What {@code ferry status} shows of a paged process running here. */
  public Optional<PagingStatus> status(String pid) {
    Primary p = primaries.get(pid);
    if (p == null) {
      return Optional.empty();
    }
    PagingStatus.Builder b =
        PagingStatus.newBuilder()
            .setPageSize(p.memory.pageSize())
            .setPages(p.memory.pageCount())
            .setResident(p.memory.residentPages())
            .setDirty(p.memory.dirtyCount())
            .setStored(p.localCopy() ? store.count(p.file) : 0)
            .setFaults(p.memory.faults())
            .setFlushed(p.flushed.get());
    synchronized (p) {
      for (Replica r : p.replicas) {
        b.addReplicas(
            ReplicaStatus.newBuilder().setNode(r.node).setState(r.state).setPages(r.pages));
      }
    }
    int want = p.localCopy() ? settings.replicationFactor() - 1 : 1;
    for (int i = b.getReplicasCount(); i < want; i++) {
      b.addReplicas(ReplicaStatus.newBuilder().setNode("").setState("missing"));
    }
    return Optional.of(b.build());
  }

  /**
   * Writes every dirty page of a frozen process to its file and every in-sync replica, durably;
   * with {@code fullCopyTo}, also copies the whole file to that node. Throws if the local write, or
   * the write on {@code mustHold}, fails. {@code progress} is told the bytes of dirty pages written
   * so far and still to write after each batch.
   */
  public PageFlush flushFrozen(
      String pid,
      String mustHold,
      String fullCopyTo,
      java.util.function.BiConsumer<Long, Long> progress)
      throws IOException {
    Primary p = primary(pid);
    synchronized (p) {
      if (!p.complete()) {
        throw new IOException(
            "process " + pid + " is still receiving its pages from " + p.source.fetchFrom);
      }
      if (fullCopyTo != null && !p.localCopy()) {
        throw new IOException(
            "process "
                + pid
                + "'s paging file is on file server "
                + p.source.fetchFrom
                + " only; it cannot be copied whole from here");
      }
      long dirty = p.memory.dirtyCount();
      long[] sent = {0};
      long written = flush(p, p.memory.dirtyPages(), mustHold, sent, null, progress);
      long full = 0;
      if (fullCopyTo != null) {
        full = seed(p, fullCopyTo, sent, null);
        p.replicas.removeIf(r -> r.node.equals(fullCopyTo));
        p.replicas.add(new Replica(fullCopyTo, "in-sync"));
      } else if (mustHold != null && !p.replicaNodes("in-sync").contains(mustHold)) {
        throw new IOException("node " + mustHold + " holds no in-sync replica");
      }
      return new PageFlush(dirty, written, sent[0], full);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Flushing

  /**
   * Writes {@code candidates} that are dirty (clearing their bits first) to the local copy and to
   * every in-sync replica, in batches (at the {@code throttle}'s rate, if any, telling {@code
   * progress}, if any, the bytes written and still to write); the last batch is synced everywhere.
   * Returns pages written. Caller holds {@code p}'s lock.
   */
  private long flush(
      Primary p,
      int[] candidates,
      String mustHold,
      long[] sent,
      Throttle throttle,
      java.util.function.BiConsumer<Long, Long> progress)
      throws IOException {
    int pageSize = p.memory.pageSize();
    int perBatch = Math.max(1, BATCH_BYTES / pageSize);
    byte[] batch = new byte[perBatch * pageSize];
    int[] pages = new int[perBatch];
    int[] zeros = new int[perBatch];
    int n = 0;
    int z = 0;
    long written = 0;
    boolean any = false;
    for (int i = 0; i < candidates.length; i++) {
      int page = candidates[i];
      if (!p.memory.clearDirty(page)) {
        continue;
      }
      any = true;
      if (p.memory.copyPage(page, batch, n * pageSize) && !allZero(batch, n * pageSize, pageSize)) {
        pages[n++] = page;
      } else {
        zeros[z++] = page;
      }
      written++;
      if (n == perBatch || z == perBatch) {
        if (throttle != null) {
          throttle.sent((long) n * pageSize);
        }
        writeBatch(
            p, Arrays.copyOf(pages, n), batch, Arrays.copyOf(zeros, z), false, mustHold, sent);
        n = 0;
        z = 0;
        if (progress != null) {
          progress.accept(written * pageSize, (long) (candidates.length - i - 1) * pageSize);
        }
      }
    }
    if (any) {
      writeBatch(p, Arrays.copyOf(pages, n), batch, Arrays.copyOf(zeros, z), true, mustHold, sent);
    }
    p.flushed.addAndGet(written);
    return written;
  }

  private static boolean allZero(byte[] b, int off, int len) {
    for (int i = off; i < off + len; i++) {
      if (b[i] != 0) {
        return false;
      }
    }
    return true;
  }

  /** One batch to the local copy and every in-sync replica, in parallel. */
  private void writeBatch(
      Primary p, int[] pages, byte[] data, int[] zeros, boolean sync, String mustHold, long[] sent)
      throws IOException {
    int pageSize = p.memory.pageSize();
    PageRequest req = writeRequest(p.file, pageSize, pages, data, zeros, false, sync);
    List<Replica> targets = new ArrayList<>();
    for (Replica r : p.replicas) {
      if (r.state.equals("in-sync")) {
        targets.add(r);
      }
    }
    List<Future<PageReply>> replies = new ArrayList<>();
    for (Replica r : targets) {
      replies.add(io.submit(() -> call(r.node, req)));
    }
    if (p.localCopy()) {
      store.write(p.file, pageSize, pages, data, 0, zeros, false, sync);
    }
    for (int i = 0; i < targets.size(); i++) {
      Replica r = targets.get(i);
      try {
        PageReply reply =
            replies.get(i).get(settings.transferTimeout().toMillis(), TimeUnit.MILLISECONDS);
        if (sync) {
          r.pages = reply.getStored(); // counted on the last batch of a flush only
        }
        sent[0] += (long) pages.length * pageSize;
      } catch (ExecutionException | TimeoutException e) {
        replies.get(i).cancel(true);
        String why = e instanceof TimeoutException ? "timed out" : e.getCause().getMessage();
        lost(p, r, "a write failed: " + why);
        if (r.node.equals(mustHold)) {
          throw new IOException("writing pages to " + r.node + " failed: " + why);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted");
      }
    }
  }

  /** A write of {@code pages} (their bytes back to back in {@code data}) to {@code file}. */
  private static PageRequest writeRequest(
      String file,
      int pageSize,
      int[] pages,
      byte[] data,
      int[] zeros,
      boolean reset,
      boolean sync) {
    return PageRequest.newBuilder()
        .setFile(file)
        .setPageSize(pageSize)
        .setWrite(
            PageWrite.newBuilder()
                .addAllPages(ints(pages))
                .setData(UnsafeByteOperations.unsafeWrap(data, 0, pages.length * pageSize))
                .addAllZeroPages(ints(zeros))
                .setReset(reset)
                .setSync(sync))
        .build();
  }

  private static List<Integer> ints(int[] a) {
    List<Integer> out = new ArrayList<>(a.length);
    for (int x : a) {
      out.add(x);
    }
    return out;
  }

  private PageReply call(String node, PageRequest.Builder req) throws IOException {
    return call(node, req.build());
  }

  private PageReply call(String node, PageRequest req) throws IOException {
    return call(node, req, false);
  }

  private PageReply call(String node, PageRequest req, boolean patient) throws IOException {
    PageReply r = peers.call(node, req, patient);
    if (r.hasError()) {
      throw new IOException(node + ": " + r.getError().getMessage());
    }
    return r;
  }

  private void lost(Primary p, Replica r, String why) {
    if (r.state.equals("lost")) {
      return;
    }
    r.state = "lost";
    log.warn("paging file {}: replica on {} lost: {}", p.file, r.node, why);
    events.on(p.pid, "replica-lost", "replica of the paging file on " + r.node + " lost: " + why);
  }

  /**
   * Copies the whole local copy to {@code node} (reset first), synced, at the {@code throttle}'s
   * rate if any. Caller holds {@code p}'s lock. Returns pages copied.
   */
  private long seed(Primary p, String node, long[] sent, Throttle throttle) throws IOException {
    int pageSize = p.memory.pageSize();
    int perBatch = Math.max(1, BATCH_BYTES / pageSize);
    int[] all = store.pages(p.file);
    byte[] data = new byte[perBatch * pageSize];
    boolean first = true;
    for (int from = 0; from < all.length || first; from += perBatch) {
      int n = Math.min(perBatch, all.length - from);
      int[] pages = Arrays.copyOfRange(all, from, from + n);
      for (int i = 0; i < n; i++) {
        byte[] b = store.read(p.file, pages[i]);
        if (b == null || b.length != pageSize) {
          throw new IOException("local copy of " + p.file + " lost page " + pages[i]);
        }
        System.arraycopy(b, 0, data, i * pageSize, pageSize);
      }
      boolean last = from + perBatch >= all.length;
      if (throttle != null) {
        throttle.sent((long) n * pageSize);
      }
      call(node, writeRequest(p.file, pageSize, pages, data, new int[0], first, last));
      sent[0] += (long) n * pageSize;
      first = false;
    }
    return all.length;
  }

  /** One flusher pass: quiet dirty pages of every primary, and replica sets kept whole. */
  private void pass() {
    for (Primary p : primaries.values()) {
      try {
        synchronized (p) {
          if (p.released || !p.complete()) {
            continue; // post-copy: the source is still pushing pages into the local copy
          }
          repair(p);
          long epoch = p.memory.tick();
          int[] dirty = p.memory.dirtyPages();
          int quiet = 0;
          for (int page : dirty) {
            if (p.memory.lastWrite(page) <= epoch - 1 - p.quietEpochs) {
              dirty[quiet++] = page;
            }
          }
          if (quiet > 0) {
            flush(p, Arrays.copyOf(dirty, quiet), null, new long[1], null, null);
          }
        }
      } catch (IOException | RuntimeException e) {
        log.warn("paging file {}: background flush failed: {}", p.file, e.toString());
      }
    }
  }

  /** Replaces lost replicas and fills the set up to the replication factor. Holds p's lock. */
  private void repair(Primary p) {
    for (Replica r : p.replicas) {
      if (!r.state.equals("lost") && !peers.isUp(r.node)) {
        lost(p, r, "its node left the cluster or is unreachable");
      }
    }
    if (!p.localCopy()) {
      return; // flushing: the file server is the one copy, never replaced here
    }
    p.replicas.removeIf(r -> r.state.equals("lost"));
    int want = settings.replicationFactor() - 1;
    if (p.replicas.size() >= want) {
      return;
    }
    for (String node : peers.candidates()) {
      if (p.replicas.size() >= want) {
        return;
      }
      if (node.equals(self) || p.replicaNodes(null).contains(node)) {
        continue;
      }
      Replica r = new Replica(node, "seeding");
      p.replicas.add(r);
      try {
        long n = seed(p, node, new long[1], null);
        r.pages = n;
        r.state = "in-sync";
        log.info("paging file {}: replica on {} ({} pages)", p.file, node, n);
        events.on(p.pid, "replicated", "paging file replicated on " + node + " (" + n + " pages)");
      } catch (IOException | RuntimeException e) {
        p.replicas.remove(r);
        log.warn("paging file {}: cannot replicate on {}: {}", p.file, node, e.toString());
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Pre-copy and post-copy

  /**
   * The current content of page {@code page} of a frozen process: resident in memory, or where its
   * memory would read it from; null for zeros.
   */
  private byte[] content(Primary p, int page) {
    if (page >= p.memory.pageCount()) {
      return null; // grown at the destination after the freeze: zeros
    }
    if (p.memory.isResident(page)) {
      byte[] b = p.memory.copyPage(page);
      return allZero(b, 0, b.length) ? null : b;
    }
    return p.source == null ? null : p.source.load(page);
  }

  /** Limits the bytes per second a pre-copy round sends; 0: no limit. */
  public static final class Throttle {
    private final long bytesPerSecond;
    private final long start = System.nanoTime();
    private long sent;

    public Throttle(long bytesPerSecond) {
      this.bytesPerSecond = bytesPerSecond;
    }

    void sent(long bytes) throws IOException {
      sent += bytes;
      if (bytesPerSecond <= 0) {
        return;
      }
      long due = start + sent * 1_000_000_000L / bytesPerSecond;
      long wait = due - System.nanoTime();
      if (wait > 0) {
        try {
          Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted");
        }
      }
    }
  }

  /**
   * One pre-copy round while the process runs. The first makes {@code node} an in-sync replica:
   * dirty pages are written out (to the local copy and every replica) and the whole local copy is
   * copied to {@code node}; later rounds write every dirty page (not only quiet ones) to every
   * replica, {@code node} included. Returns the pages sent to {@code node} and the bytes sent to
   * every node.
   */
  public long[] precopyRound(String pid, String node, boolean first, Throttle throttle)
      throws IOException {
    Primary p = primary(pid);
    synchronized (p) {
      if (!p.complete() || !p.localCopy()) {
        throw new IOException(
            "process "
                + pid
                + "'s pages are not all on "
                + self
                + " (post-copy still running, or a flushing file server holds them)");
      }
      long[] sent = {0};
      long written = flush(p, p.memory.dirtyPages(), null, sent, throttle, null);
      if (!first) {
        return new long[] {written, sent[0]};
      }
      long seeded = seed(p, node, sent, throttle);
      p.replicas.removeIf(r -> r.node.equals(node));
      Replica r = new Replica(node, "in-sync");
      r.pages = seeded;
      p.replicas.add(r);
      return new long[] {seeded, sent[0]};
    }
  }

  /** Pre-copy aborted: {@code node} stops being a replica and drops its copy. */
  public void dropReplica(String pid, String node) {
    Primary p = primaries.get(pid);
    if (p == null) {
      return;
    }
    synchronized (p) {
      p.replicas.removeIf(r -> r.node.equals(node));
    }
    io.execute(
        () -> {
          try {
            call(
                node, PageRequest.newBuilder().setFile(p.file).setDrop(Empty.getDefaultInstance()));
          } catch (IOException e) {
            log.info("paging file {}: copy on {} not dropped: {}", p.file, node, e.getMessage());
          }
        });
  }

  /** Post-copy: the frozen process's pages are served to other nodes under its file's name. */
  public String serveFrozen(String pid) throws IOException {
    Primary p = primary(pid);
    serving.put(p.file, p);
    return p.file;
  }

  /** Post-copy aborted before the destination ran the process: stop serving its pages. */
  public void stopServing(String pid) {
    Primary p = primaries.get(pid);
    if (p != null) {
      serving.remove(p.file);
    }
  }

  /** What a post-copy push did. */
  public record Push(long pages, long bytes, long remoteFaults) {}

  /**
   * Post-copy: pushes every non-zero page of the frozen process into {@code node}'s copy of {@code
   * file}, in batches (at the {@code throttle}'s rate), then tells it the file is complete. {@code
   * progress} is told the pages and bytes sent so far after each batch.
   */
  public Push push(
      String pid,
      String node,
      String file,
      Throttle throttle,
      java.util.function.BiConsumer<Long, Long> progress)
      throws IOException {
    Primary p = primary(pid);
    int pageSize = p.memory.pageSize();
    int perBatch = Math.max(1, BATCH_BYTES / pageSize);
    byte[] data = new byte[perBatch * pageSize];
    int[] pages = new int[perBatch];
    int n = 0;
    long total = 0;
    boolean first = true;
    int count = p.memory.pageCount();
    for (int page = 0; page <= count; page++) {
      byte[] b = page < count ? content(p, page) : null;
      if (b != null) {
        System.arraycopy(b, 0, data, n * pageSize, pageSize);
        pages[n++] = page;
      }
      if (n == perBatch || (page == count && (n > 0 || first))) {
        throttle.sent((long) n * pageSize);
        call(
            node,
            writeRequest(
                file, pageSize, Arrays.copyOf(pages, n), data, new int[0], first, page == count),
            true);
        total += n;
        progress.accept(total, total * pageSize);
        first = false;
        n = 0;
      }
    }
    PageReply done =
        call(
            node,
            PageRequest.newBuilder().setFile(file).setComplete(Empty.getDefaultInstance()).build(),
            true);
    return new Push(total, total * pageSize, done.getRemoteFaults());
  }

  // ---------------------------------------------------------------------------------------------
  // This node's copies, as other nodes ask for them (the page channel)

  /** Serves one request of another node's page channel. */
  public PageReply serve(PageRequest req) {
    try {
      String file = req.getFile();
      if (file.isEmpty() || file.indexOf('/') >= 0) {
        throw new IllegalArgumentException("bad paging file name '" + file + "'");
      }
      switch (req.getOpCase()) {
        case WRITE:
          {
            PageWrite w = req.getWrite();
            int ps = req.getPageSize();
            if (ps < PagedMemory.MIN_PAGE_SIZE
                || (long) w.getPagesCount() * ps != w.getData().size()) {
              throw new IllegalArgumentException(
                  w.getPagesCount() + " pages of " + ps + " bytes in " + w.getData().size());
            }
            int[] pages = w.getPagesList().stream().mapToInt(Integer::intValue).toArray();
            int[] zeros = w.getZeroPagesList().stream().mapToInt(Integer::intValue).toArray();
            store.write(
                file,
                ps,
                pages,
                w.getData().asReadOnlyByteBuffer(),
                zeros,
                w.getReset(),
                w.getSync());
            // Counting walks the file's keys: once per flush (its last, synced batch), not per
            // batch.
            return PageReply.newBuilder().setStored(w.getSync() ? store.count(file) : 0).build();
          }
        case READ:
          {
            PageList l = req.getRead();
            PageReply.Builder b = PageReply.newBuilder();
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            Primary frozen = serving.get(file);
            if (frozen == null && retired.contains(file)) {
              throw new IllegalArgumentException(
                  "the pages of " + file + " are no longer served here (its post-copy has ended)");
            }
            for (int page : l.getPagesList()) {
              byte[] d = frozen != null ? content(frozen, page) : store.read(file, page);
              if (d != null) {
                b.addPages(page);
                out.write(d, 0, d.length);
              }
            }
            return b.setData(UnsafeByteOperations.unsafeWrap(out.toByteArray())).build();
          }
        case DROP:
          store.drop(file);
          return PageReply.newBuilder().setStored(0).build();
        case COMPLETE:
          {
            log.debug("paging file {} complete", file);
            for (Primary p : primaries.values()) {
              if (p.file.equals(file) && p.source != null) {
                p.source.complete = true;
                membershipChanged(); // write out and replicate it now
                return PageReply.newBuilder()
                    .setStored(store.count(file))
                    .setRemoteFaults(p.source.remoteFaults.get())
                    .build();
              }
            }
            throw new IllegalArgumentException("no process here runs on paging file " + file);
          }
        default:
          throw new IllegalArgumentException("empty page request");
      }
    } catch (RuntimeException e) {
      return PageReply.newBuilder()
          .setError(
              ErrorMsg.newBuilder()
                  .setKind("BAD_REQUEST")
                  .setMessage(e.getMessage() == null ? e.toString() : e.getMessage()))
          .build();
    }
  }

  /** Checks the replica sets now (a node joined or left). */
  public void membershipChanged() {
    try {
      flusher.execute(this::pass);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // stopping: nothing to keep whole any more
    }
  }

  @Override
  public void close() {
    flusher.shutdownNow();
    io.shutdownNow();
  }
}
