package dev.ferry.node.wasi;

import static dev.ferry.node.wasi.Wasi.MODULE;

import com.dylibso.chicory.runtime.HostFunction;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Memory;
import com.dylibso.chicory.runtime.WasmRuntimeException;
import com.dylibso.chicory.wasm.types.FunctionType;
import com.dylibso.chicory.wasm.types.ValType;
import dev.ferry.transport.proto.FdEntry;
import dev.ferry.transport.proto.WasiState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Ferry's WASI preview 1 implementation. Unlike Chicory's own, all of its state — argv, env, the
 * descriptor table with full guest paths, rights, flags and offsets — can be saved in an image
 * ({@link #snapshot()}) and reopened by path on another node ({@link #restore}).
 *
 * <p>The guest sees its {@link Sandbox} as "/" (preopened as fd 3), stdin as empty, and
 * stdout/stderr as the process's log. Every function first passes the {@link CallGate}, which is
 * what makes every WASI call a migration point.
 *
 * <p>Not supported (the functions return NOTSUP or NOSYS): sockets, symbolic and hard links,
 * proc_raise. Descriptors are not shared with any other process.
 */
public final class FerryWasi implements AutoCloseable {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final int ROOT_FD = 3;

  private final Sandbox sandbox;
  private final List<String> args;
  private final List<String> env;
  private final OutputSink out;
  private final GuestClock clock;
  private final CallGate gate;
  private final TreeMap<Integer, Descriptor> fds = new TreeMap<>();

  /** A process's exit through proc_exit; unwinds the engine and ends the run. */
  public static final class ExitException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int code;

    ExitException(int code) {
      super("proc_exit(" + code + ")", null, false, false);
      this.code = code;
    }

    public int code() {
      return code;
    }
  }

  private FerryWasi(
      Sandbox sandbox,
      List<String> args,
      List<String> env,
      OutputSink out,
      GuestClock clock,
      CallGate gate) {
    this.sandbox = sandbox;
    this.args = List.copyOf(args);
    this.env = List.copyOf(env);
    this.out = out;
    this.clock = clock;
    this.gate = gate;
  }

  /** WASI state for a new process: stdio on fds 0–2 and the sandbox preopened as "/" on fd 3. */
  public static FerryWasi create(
      Sandbox sandbox,
      List<String> args,
      List<String> env,
      OutputSink out,
      GuestClock clock,
      CallGate gate) {
    FerryWasi w = new FerryWasi(sandbox, args, env, out, clock, gate);
    w.fds.put(0, stdio(FdEntry.Kind.STDIN, "<stdin>", true, false));
    w.fds.put(1, stdio(FdEntry.Kind.STDOUT, "<stdout>", false, true));
    w.fds.put(2, stdio(FdEntry.Kind.STDERR, "<stderr>", false, true));
    w.fds.put(
        ROOT_FD,
        new Descriptor(
            FdEntry.Kind.PREOPEN, "/", Wasi.RIGHTS_DIRECTORY, Wasi.RIGHT_ALL, 0, false, false));
    return w;
  }

  /**
   * WASI state restored from an image: every file is reopened by its guest path in this sandbox and
   * will be read or written at its saved offset.
   *
   * @throws IOException if a file the process had open no longer exists
   */
  public static FerryWasi restore(
      WasiState state, Sandbox sandbox, OutputSink out, GuestClock clock, CallGate gate)
      throws IOException {
    FerryWasi w = new FerryWasi(sandbox, state.getArgsList(), state.getEnvList(), out, clock, gate);
    for (FdEntry e : state.getFdsList()) {
      Descriptor d = Descriptor.fromProto(e);
      if (d.kind == FdEntry.Kind.FILE) {
        Path host = sandbox.hostPath(d.guestPath);
        if (!Files.isRegularFile(host)) {
          w.close();
          throw new NoSuchFileException(
              d.guestPath, null, "file open in the image is missing from the sandbox");
        }
        d.channel = openChannel(host, d.readable, d.writable, false);
      }
      w.fds.put(e.getFd(), d);
    }
    return w;
  }

  /** The state to save in an image. Call only while the guest is frozen. */
  public WasiState snapshot() {
    WasiState.Builder b = WasiState.newBuilder().addAllArgs(args).addAllEnv(env).setCwd("/");
    fds.forEach((fd, d) -> b.addFds(d.toProto(fd)));
    return b.build();
  }

  public GuestClock clock() {
    return clock;
  }

  @Override
  public void close() {
    fds.values().forEach(Descriptor::closeChannel);
  }

  private static Descriptor stdio(FdEntry.Kind kind, String name, boolean r, boolean w) {
    return new Descriptor(kind, name, Wasi.RIGHTS_STDIO, 0, 0, r, w);
  }

  private static FileChannel openChannel(
      Path host, boolean readable, boolean writable, boolean create) throws IOException {
    Set<OpenOption> opts = new HashSet<>();
    opts.add(StandardOpenOption.READ);
    if (writable) {
      opts.add(StandardOpenOption.WRITE);
    }
    if (create) {
      opts.add(StandardOpenOption.CREATE);
    }
    opts.add(LinkOption.NOFOLLOW_LINKS);
    return FileChannel.open(host, opts);
  }

  // ---------------------------------------------------------------------------------------------
  // Host functions

  @FunctionalInterface
  private interface Impl {
    /** Runs the call; returns the errno (0 for success). */
    int call(Memory mem, long[] a) throws IOException;
  }

  private static final ValType I32 = ValType.I32;
  private static final ValType I64 = ValType.I64;

  private HostFunction fn(String name, List<ValType> params, Impl impl) {
    FunctionType type = FunctionType.of(params, List.of(I32));
    return new HostFunction(
        MODULE,
        name,
        type,
        (Instance inst, long... a) -> {
          if (!gate.proceed(inst)) {
            return new long[] {0};
          }
          return new long[] {invoke(impl, inst.memory(), a)};
        });
  }

  private static int invoke(Impl impl, Memory mem, long[] a) {
    try {
      return impl.call(mem, a);
    } catch (WasiException e) {
      return e.errno().code();
    } catch (NoSuchFileException e) {
      return WasiErrno.NOENT.code();
    } catch (FileAlreadyExistsException e) {
      return WasiErrno.EXIST.code();
    } catch (DirectoryNotEmptyException e) {
      return WasiErrno.NOTEMPTY.code();
    } catch (NotDirectoryException e) {
      return WasiErrno.NOTDIR.code();
    } catch (AccessDeniedException e) {
      return WasiErrno.ACCES.code();
    } catch (IOException e) {
      return isNoSpace(e) ? WasiErrno.NOSPC.code() : WasiErrno.IO.code();
    } catch (WasmRuntimeException e) {
      // a guest pointer outside linear memory
      return WasiErrno.FAULT.code();
    }
  }

  private static boolean isNoSpace(IOException e) {
    String m = e.getMessage();
    return m != null && m.contains("No space left");
  }

  /** All host functions for {@code wasi_snapshot_preview1}. */
  public List<HostFunction> hostFunctions() {
    List<HostFunction> f = new ArrayList<>();
    f.add(fn("args_get", List.of(I32, I32), (m, a) -> writeStrings(m, args, a[0], a[1])));
    f.add(fn("args_sizes_get", List.of(I32, I32), (m, a) -> writeSizes(m, args, a[0], a[1])));
    f.add(fn("environ_get", List.of(I32, I32), (m, a) -> writeStrings(m, env, a[0], a[1])));
    f.add(fn("environ_sizes_get", List.of(I32, I32), (m, a) -> writeSizes(m, env, a[0], a[1])));
    f.add(fn("clock_res_get", List.of(I32, I32), this::clockResGet));
    f.add(fn("clock_time_get", List.of(I32, I64, I32), this::clockTimeGet));
    f.add(fn("fd_advise", List.of(I32, I64, I64, I32), (m, a) -> ok(file((int) a[0]))));
    f.add(fn("fd_allocate", List.of(I32, I64, I64), this::fdAllocate));
    f.add(fn("fd_close", List.of(I32), this::fdClose));
    f.add(fn("fd_datasync", List.of(I32), this::fdSync));
    f.add(fn("fd_fdstat_get", List.of(I32, I32), this::fdFdstatGet));
    f.add(fn("fd_fdstat_set_flags", List.of(I32, I32), this::fdFdstatSetFlags));
    f.add(fn("fd_fdstat_set_rights", List.of(I32, I64, I64), this::fdFdstatSetRights));
    f.add(fn("fd_filestat_get", List.of(I32, I32), this::fdFilestatGet));
    f.add(fn("fd_filestat_set_size", List.of(I32, I64), this::fdFilestatSetSize));
    f.add(fn("fd_filestat_set_times", List.of(I32, I64, I64, I32), this::fdFilestatSetTimes));
    f.add(fn("fd_pread", List.of(I32, I32, I32, I64, I32), this::fdPread));
    f.add(fn("fd_prestat_get", List.of(I32, I32), this::fdPrestatGet));
    f.add(fn("fd_prestat_dir_name", List.of(I32, I32, I32), this::fdPrestatDirName));
    f.add(fn("fd_pwrite", List.of(I32, I32, I32, I64, I32), this::fdPwrite));
    f.add(fn("fd_read", List.of(I32, I32, I32, I32), this::fdRead));
    f.add(fn("fd_readdir", List.of(I32, I32, I32, I64, I32), this::fdReaddir));
    f.add(fn("fd_renumber", List.of(I32, I32), this::fdRenumber));
    f.add(fn("fd_seek", List.of(I32, I64, I32, I32), this::fdSeek));
    f.add(fn("fd_sync", List.of(I32), this::fdSync));
    f.add(fn("fd_tell", List.of(I32, I32), this::fdTell));
    f.add(fdWriteFunction());
    f.add(fn("path_create_directory", List.of(I32, I32, I32), this::pathCreateDirectory));
    f.add(fn("path_filestat_get", List.of(I32, I32, I32, I32, I32), this::pathFilestatGet));
    f.add(
        fn(
            "path_filestat_set_times",
            List.of(I32, I32, I32, I32, I64, I64, I32),
            this::pathFilestatSetTimes));
    f.add(
        fn(
            "path_link",
            List.of(I32, I32, I32, I32, I32, I32, I32),
            (m, a) -> WasiErrno.NOTSUP.code()));
    f.add(fn("path_open", List.of(I32, I32, I32, I32, I32, I64, I64, I32, I32), this::pathOpen));
    f.add(fn("path_readlink", List.of(I32, I32, I32, I32, I32, I32), this::pathReadlink));
    f.add(fn("path_remove_directory", List.of(I32, I32, I32), this::pathRemoveDirectory));
    f.add(fn("path_rename", List.of(I32, I32, I32, I32, I32, I32), this::pathRename));
    f.add(fn("path_symlink", List.of(I32, I32, I32, I32, I32), (m, a) -> WasiErrno.NOTSUP.code()));
    f.add(fn("path_unlink_file", List.of(I32, I32, I32), this::pathUnlinkFile));
    f.add(pollOneoffFunction());
    f.add(
        new HostFunction(
            MODULE,
            "proc_exit",
            FunctionType.of(List.of(I32), List.of()),
            (Instance inst, long... a) -> {
              throw new ExitException((int) a[0]);
            }));
    f.add(fn("proc_raise", List.of(I32), (m, a) -> WasiErrno.NOSYS.code()));
    f.add(
        fn(
            "sched_yield",
            List.of(),
            (m, a) -> {
              Thread.yield();
              return 0;
            }));
    f.add(fn("random_get", List.of(I32, I32), this::randomGet));
    f.add(fn("sock_accept", List.of(I32, I32, I32), (m, a) -> WasiErrno.NOTSUP.code()));
    f.add(
        fn("sock_recv", List.of(I32, I32, I32, I32, I32, I32), (m, a) -> WasiErrno.NOTSUP.code()));
    f.add(fn("sock_send", List.of(I32, I32, I32, I32, I32), (m, a) -> WasiErrno.NOTSUP.code()));
    f.add(fn("sock_shutdown", List.of(I32, I32), (m, a) -> WasiErrno.NOTSUP.code()));
    return f;
  }

  /** Names of every function {@link #hostFunctions()} provides. */
  public static Set<String> functionNames() {
    Set<String> names = new HashSet<>();
    FerryWasi probe = new FerryWasi(null, List.of(), List.of(), null, null, null);
    probe.hostFunctions().forEach(h -> names.add(h.name()));
    return names;
  }

  private static int ok(Object ignored) {
    return 0;
  }

  // --- args / env

  private static int writeStrings(Memory m, List<String> list, long ptrs, long buf) {
    int p = (int) ptrs;
    int b = (int) buf;
    for (String s : list) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      m.writeI32(p, b);
      m.write(b, bytes);
      m.writeByte(b + bytes.length, (byte) 0);
      p += 4;
      b += bytes.length + 1;
    }
    return 0;
  }

  private static int writeSizes(Memory m, List<String> list, long countPtr, long sizePtr) {
    int size = 0;
    for (String s : list) {
      size += s.getBytes(StandardCharsets.UTF_8).length + 1;
    }
    m.writeI32((int) countPtr, list.size());
    m.writeI32((int) sizePtr, size);
    return 0;
  }

  // --- clocks

  private int clockResGet(Memory m, long[] a) {
    int id = (int) a[0];
    if (id < 0 || id > 3) {
      return WasiErrno.INVAL.code();
    }
    m.writeLong((int) a[1], 1000L);
    return 0;
  }

  private long now(int id) {
    switch (id) {
      case Wasi.CLOCK_REALTIME:
        java.time.Instant t = java.time.Instant.now();
        return t.getEpochSecond() * 1_000_000_000L + t.getNano();
      case Wasi.CLOCK_MONOTONIC:
      case Wasi.CLOCK_PROCESS_CPUTIME:
      case Wasi.CLOCK_THREAD_CPUTIME:
        return clock.monotonicNanos();
      default:
        throw new WasiException(WasiErrno.INVAL);
    }
  }

  private int clockTimeGet(Memory m, long[] a) {
    m.writeLong((int) a[2], now((int) a[0]));
    return 0;
  }

  private int randomGet(Memory m, long[] a) {
    byte[] b = new byte[(int) a[1]];
    RANDOM.nextBytes(b);
    m.write((int) a[0], b);
    return 0;
  }

  // --- descriptors

  private Descriptor fd(int fd) {
    Descriptor d = fds.get(fd);
    if (d == null) {
      throw new WasiException(WasiErrno.BADF);
    }
    return d;
  }

  private Descriptor file(int fd) {
    Descriptor d = fd(fd);
    if (d.isDirectory()) {
      throw new WasiException(WasiErrno.ISDIR);
    }
    return d;
  }

  private Descriptor dir(int fd) {
    Descriptor d = fd(fd);
    if (!d.isDirectory()) {
      throw new WasiException(WasiErrno.NOTDIR);
    }
    return d;
  }

  private int allocateFd() {
    int fd = 0;
    while (fds.containsKey(fd)) {
      fd++;
    }
    return fd;
  }

  private int fdClose(Memory m, long[] a) {
    Descriptor d = fds.remove((int) a[0]);
    if (d == null) {
      return WasiErrno.BADF.code();
    }
    d.closeChannel();
    return 0;
  }

  private int fdRenumber(Memory m, long[] a) {
    int from = (int) a[0];
    int to = (int) a[1];
    Descriptor d = fd(from);
    fd(to);
    if (from != to) {
      fds.remove(to).closeChannel();
      fds.remove(from);
      fds.put(to, d);
    }
    return 0;
  }

  private int fdSync(Memory m, long[] a) throws IOException {
    Descriptor d = fd((int) a[0]);
    if (d.channel != null && d.writable) {
      d.channel.force(true);
    }
    return 0;
  }

  private int fdAllocate(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    long end = a[1] + a[2];
    if (end > d.channel.size()) {
      if (!d.writable) {
        return WasiErrno.BADF.code();
      }
      d.channel.write(ByteBuffer.wrap(new byte[1]), end - 1);
    }
    return 0;
  }

  private static void requireChannel(Descriptor d) {
    if (d.channel == null) {
      throw new WasiException(d.isStdio() ? WasiErrno.SPIPE : WasiErrno.BADF);
    }
  }

  private static int filetype(Descriptor d) {
    if (d.isDirectory()) {
      return Wasi.FILETYPE_DIRECTORY;
    }
    if (d.isStdio()) {
      return Wasi.FILETYPE_CHARACTER_DEVICE;
    }
    return Wasi.FILETYPE_REGULAR_FILE;
  }

  private int fdFdstatGet(Memory m, long[] a) {
    Descriptor d = fd((int) a[0]);
    int p = (int) a[1];
    m.writeByte(p, (byte) filetype(d));
    m.writeByte(p + 1, (byte) 0);
    m.writeShort(p + 2, (short) d.fdflags);
    m.writeI32(p + 4, 0);
    m.writeLong(p + 8, d.rightsBase);
    m.writeLong(p + 16, d.rightsInheriting);
    return 0;
  }

  private int fdFdstatSetFlags(Memory m, long[] a) {
    Descriptor d = fd((int) a[0]);
    d.fdflags =
        (int) a[1]
            & (Wasi.FDFLAGS_APPEND
                | Wasi.FDFLAGS_NONBLOCK
                | Wasi.FDFLAGS_SYNC
                | Wasi.FDFLAGS_DSYNC
                | Wasi.FDFLAGS_RSYNC);
    return 0;
  }

  private int fdFdstatSetRights(Memory m, long[] a) {
    Descriptor d = fd((int) a[0]);
    long base = a[1];
    long inh = a[2];
    if ((base & ~d.rightsBase) != 0 || (inh & ~d.rightsInheriting) != 0) {
      return WasiErrno.NOTCAPABLE.code();
    }
    d.rightsBase = base;
    d.rightsInheriting = inh;
    return 0;
  }

  private int fdFilestatGet(Memory m, long[] a) throws IOException {
    Descriptor d = fd((int) a[0]);
    int p = (int) a[1];
    if (d.isStdio()) {
      writeFilestat(m, p, 0, Wasi.FILETYPE_CHARACTER_DEVICE, 0, 0);
      return 0;
    }
    Path host = sandbox.hostPath(d.guestPath);
    BasicFileAttributes attrs =
        Files.readAttributes(host, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    writeFilestat(m, p, inode(d.guestPath), filetypeOf(attrs), attrs.size(), mtime(attrs));
    return 0;
  }

  private int fdFilestatSetSize(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    if (!d.writable) {
      return WasiErrno.BADF.code();
    }
    long size = a[1];
    if (size < d.channel.size()) {
      d.channel.truncate(size);
    } else if (size > d.channel.size()) {
      d.channel.write(ByteBuffer.wrap(new byte[1]), size - 1);
    }
    return 0;
  }

  private int fdFilestatSetTimes(Memory m, long[] a) throws IOException {
    Descriptor d = fd((int) a[0]);
    if (!d.isStdio()) {
      setTimes(sandbox.hostPath(d.guestPath), a[2], (int) a[3]);
    }
    return 0;
  }

  private void setTimes(Path host, long mtim, int fstflags) throws IOException {
    // fstflags: 1 atim, 2 atim_now, 4 mtim, 8 mtim_now
    if ((fstflags & 4) != 0) {
      Files.setLastModifiedTime(host, FileTime.from(java.time.Instant.ofEpochSecond(0, mtim)));
    } else if ((fstflags & 8) != 0) {
      Files.setLastModifiedTime(host, FileTime.from(java.time.Instant.now()));
    }
  }

  private int fdPrestatGet(Memory m, long[] a) {
    Descriptor d = fd((int) a[0]);
    if (d.kind != FdEntry.Kind.PREOPEN) {
      return WasiErrno.BADF.code();
    }
    int p = (int) a[1];
    m.writeI32(p, 0);
    m.writeI32(p + 4, d.guestPath.getBytes(StandardCharsets.UTF_8).length);
    return 0;
  }

  private int fdPrestatDirName(Memory m, long[] a) {
    Descriptor d = fd((int) a[0]);
    if (d.kind != FdEntry.Kind.PREOPEN) {
      return WasiErrno.BADF.code();
    }
    byte[] name = d.guestPath.getBytes(StandardCharsets.UTF_8);
    if (a[2] < name.length) {
      return WasiErrno.NAMETOOLONG.code();
    }
    m.write((int) a[1], name);
    return 0;
  }

  // --- reading and writing

  private int fdRead(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    if (!d.readable) {
      return WasiErrno.BADF.code();
    }
    if (d.kind == FdEntry.Kind.STDIN) {
      m.writeI32((int) a[3], 0);
      return 0;
    }
    requireChannel(d);
    long n = readInto(m, d.channel, (int) a[1], (int) a[2], d.offset);
    d.offset += n;
    m.writeI32((int) a[3], (int) n);
    return 0;
  }

  private int fdPread(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    if (!d.readable) {
      return WasiErrno.BADF.code();
    }
    if (a[3] < 0) {
      return WasiErrno.INVAL.code();
    }
    long n = readInto(m, d.channel, (int) a[1], (int) a[2], a[3]);
    m.writeI32((int) a[4], (int) n);
    return 0;
  }

  /** Reads from the channel at {@code pos} into the guest iovecs; returns bytes read. */
  private static long readInto(Memory m, FileChannel ch, int iovs, int iovsLen, long pos)
      throws IOException {
    long total = 0;
    for (int i = 0; i < iovsLen; i++) {
      int buf = m.readInt(iovs + i * 8);
      int len = m.readInt(iovs + i * 8 + 4);
      if (len == 0) {
        continue;
      }
      ByteBuffer bb = ByteBuffer.allocate(len);
      int r = 0;
      while (bb.hasRemaining()) {
        int k = ch.read(bb, pos + total + r);
        if (k <= 0) {
          break;
        }
        r += k;
      }
      if (r > 0) {
        m.write(buf, bb.array(), 0, r);
      }
      total += r;
      if (r < len) {
        break;
      }
    }
    return total;
  }

  private static byte[] gather(Memory m, int iovs, int iovsLen) {
    int total = 0;
    for (int i = 0; i < iovsLen; i++) {
      total += m.readInt(iovs + i * 8 + 4);
    }
    byte[] data = new byte[total];
    int at = 0;
    for (int i = 0; i < iovsLen; i++) {
      int buf = m.readInt(iovs + i * 8);
      int len = m.readInt(iovs + i * 8 + 4);
      if (len > 0) {
        System.arraycopy(m.readBytes(buf, len), 0, data, at, len);
        at += len;
      }
    }
    return data;
  }

  private int fdWrite(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    if (!d.writable) {
      return WasiErrno.BADF.code();
    }
    byte[] data = gather(m, (int) a[1], (int) a[2]);
    if (d.kind == FdEntry.Kind.STDOUT || d.kind == FdEntry.Kind.STDERR) {
      out.write(d.kind == FdEntry.Kind.STDOUT ? 1 : 2, data, 0, data.length);
    } else {
      requireChannel(d);
      long pos = (d.fdflags & Wasi.FDFLAGS_APPEND) != 0 ? d.channel.size() : d.offset;
      writeFully(d.channel, data, pos);
      d.offset = pos + data.length;
    }
    m.writeI32((int) a[3], data.length);
    return 0;
  }

  private int fdPwrite(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    if (!d.writable) {
      return WasiErrno.BADF.code();
    }
    if (a[3] < 0) {
      return WasiErrno.INVAL.code();
    }
    byte[] data = gather(m, (int) a[1], (int) a[2]);
    writeFully(d.channel, data, a[3]);
    m.writeI32((int) a[4], data.length);
    return 0;
  }

  private static void writeFully(FileChannel ch, byte[] data, long pos) throws IOException {
    ByteBuffer bb = ByteBuffer.wrap(data);
    long p = pos;
    while (bb.hasRemaining()) {
      p += ch.write(bb, p);
    }
  }

  private int fdSeek(Memory m, long[] a) throws IOException {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    long base;
    switch ((int) a[2]) {
      case Wasi.WHENCE_SET:
        base = 0;
        break;
      case Wasi.WHENCE_CUR:
        base = d.offset;
        break;
      case Wasi.WHENCE_END:
        base = d.channel.size();
        break;
      default:
        return WasiErrno.INVAL.code();
    }
    long target = base + a[1];
    if (target < 0) {
      return WasiErrno.INVAL.code();
    }
    d.offset = target;
    m.writeLong((int) a[3], target);
    return 0;
  }

  private int fdTell(Memory m, long[] a) {
    Descriptor d = file((int) a[0]);
    requireChannel(d);
    m.writeLong((int) a[1], d.offset);
    return 0;
  }

  // --- directories and paths

  private String guestPath(Memory m, Descriptor dir, long ptr, long len) {
    String p = new String(m.readBytes((int) ptr, (int) len), StandardCharsets.UTF_8);
    return Sandbox.resolveGuest(dir.guestPath, p);
  }

  private int fdReaddir(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    int buf = (int) a[1];
    int bufLen = (int) a[2];
    long cookie = a[3];
    Path host = sandbox.hostPath(d.guestPath);
    List<String> names = new ArrayList<>();
    names.add(".");
    names.add("..");
    try (Stream<Path> s = Files.list(host)) {
      s.map(p -> p.getFileName().toString()).sorted().forEach(names::add);
    }
    int used = 0;
    for (long i = cookie; i < names.size() && used < bufLen; i++) {
      String name = names.get((int) i);
      byte[] nb = name.getBytes(StandardCharsets.UTF_8);
      String child =
          name.equals(".") || name.equals("..")
              ? d.guestPath
              : (d.guestPath.equals("/") ? "/" + name : d.guestPath + "/" + name);
      int type;
      if (name.equals(".") || name.equals("..")) {
        type = Wasi.FILETYPE_DIRECTORY;
      } else {
        Path hp = host.resolve(name);
        type =
            Files.isSymbolicLink(hp)
                ? Wasi.FILETYPE_SYMBOLIC_LINK
                : Files.isDirectory(hp, LinkOption.NOFOLLOW_LINKS)
                    ? Wasi.FILETYPE_DIRECTORY
                    : Files.isRegularFile(hp, LinkOption.NOFOLLOW_LINKS)
                        ? Wasi.FILETYPE_REGULAR_FILE
                        : Wasi.FILETYPE_UNKNOWN;
      }
      ByteBuffer ent = ByteBuffer.allocate(24 + nb.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      ent.putLong(i + 1).putLong(inode(child)).putInt(nb.length).put((byte) type);
      ent.put(new byte[3]);
      ent.put(nb);
      int n = Math.min(ent.capacity(), bufLen - used);
      m.write(buf + used, ent.array(), 0, n);
      used += n;
    }
    d.dirCookie = cookie;
    m.writeI32((int) a[4], used);
    return 0;
  }

  private static long inode(String guestPath) {
    long h = 1125899906842597L;
    for (int i = 0; i < guestPath.length(); i++) {
      h = 31 * h + guestPath.charAt(i);
    }
    return h == 0 ? 1 : h;
  }

  private static int filetypeOf(BasicFileAttributes attrs) {
    if (attrs.isDirectory()) {
      return Wasi.FILETYPE_DIRECTORY;
    }
    if (attrs.isRegularFile()) {
      return Wasi.FILETYPE_REGULAR_FILE;
    }
    if (attrs.isSymbolicLink()) {
      return Wasi.FILETYPE_SYMBOLIC_LINK;
    }
    return Wasi.FILETYPE_UNKNOWN;
  }

  private static long mtime(BasicFileAttributes attrs) {
    java.time.Instant t = attrs.lastModifiedTime().toInstant();
    return t.getEpochSecond() * 1_000_000_000L + t.getNano();
  }

  private static void writeFilestat(Memory m, int p, long ino, int type, long size, long mtim) {
    m.writeLong(p, 0); // dev
    m.writeLong(p + 8, ino);
    m.writeByte(p + 16, (byte) type);
    for (int i = 17; i < 24; i++) {
      m.writeByte(p + i, (byte) 0);
    }
    m.writeLong(p + 24, 1); // nlink
    m.writeLong(p + 32, size);
    m.writeLong(p + 40, mtim);
    m.writeLong(p + 48, mtim);
    m.writeLong(p + 56, mtim);
  }

  private int pathFilestatGet(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    String guest = guestPath(m, d, a[2], a[3]);
    Path host = sandbox.hostPath(guest);
    BasicFileAttributes attrs =
        Files.readAttributes(host, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    writeFilestat(m, (int) a[4], inode(guest), filetypeOf(attrs), attrs.size(), mtime(attrs));
    return 0;
  }

  private int pathFilestatSetTimes(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    Path host = sandbox.hostPath(guestPath(m, d, a[2], a[3]));
    if (!Files.exists(host, LinkOption.NOFOLLOW_LINKS)) {
      return WasiErrno.NOENT.code();
    }
    setTimes(host, a[5], (int) a[6]);
    return 0;
  }

  private int pathCreateDirectory(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    Files.createDirectory(sandbox.hostPath(guestPath(m, d, a[1], a[2])));
    return 0;
  }

  private int pathRemoveDirectory(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    String guest = guestPath(m, d, a[1], a[2]);
    if (guest.equals("/")) {
      return WasiErrno.PERM.code();
    }
    Path host = sandbox.hostPath(guest);
    if (!Files.isDirectory(host, LinkOption.NOFOLLOW_LINKS)) {
      return Files.exists(host, LinkOption.NOFOLLOW_LINKS)
          ? WasiErrno.NOTDIR.code()
          : WasiErrno.NOENT.code();
    }
    Files.delete(host);
    return 0;
  }

  private int pathUnlinkFile(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    Path host = sandbox.hostPath(guestPath(m, d, a[1], a[2]));
    if (Files.isDirectory(host, LinkOption.NOFOLLOW_LINKS)) {
      return WasiErrno.ISDIR.code();
    }
    Files.delete(host);
    return 0;
  }

  private int pathRename(Memory m, long[] a) throws IOException {
    Descriptor from = dir((int) a[0]);
    Descriptor to = dir((int) a[3]);
    String src = guestPath(m, from, a[1], a[2]);
    String dst = guestPath(m, to, a[4], a[5]);
    if (src.equals("/") || dst.equals("/")) {
      return WasiErrno.PERM.code();
    }
    Path hs = sandbox.hostPath(src);
    Path hd = sandbox.hostPath(dst);
    if (!Files.exists(hs, LinkOption.NOFOLLOW_LINKS)) {
      return WasiErrno.NOENT.code();
    }
    Files.move(hs, hd, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return 0;
  }

  private int pathReadlink(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    Path host = sandbox.hostPath(guestPath(m, d, a[1], a[2]));
    if (!Files.exists(host, LinkOption.NOFOLLOW_LINKS)) {
      return WasiErrno.NOENT.code();
    }
    return WasiErrno.INVAL.code(); // Ferry sandboxes contain no symbolic links the guest made
  }

  private int pathOpen(Memory m, long[] a) throws IOException {
    Descriptor d = dir((int) a[0]);
    String guest = guestPath(m, d, a[2], a[3]);
    int oflags = (int) a[4];
    long rightsBase = a[5];
    long rightsInheriting = a[6];
    int fdflags = (int) a[7];
    Path host = sandbox.hostPath(guest);
    boolean exists = Files.exists(host, LinkOption.NOFOLLOW_LINKS);
    boolean isDir = exists && Files.isDirectory(host, LinkOption.NOFOLLOW_LINKS);

    if ((oflags & Wasi.OFLAGS_CREAT) != 0 && (oflags & Wasi.OFLAGS_EXCL) != 0 && exists) {
      return WasiErrno.EXIST.code();
    }
    if ((oflags & Wasi.OFLAGS_DIRECTORY) != 0 || isDir) {
      if (!exists) {
        return WasiErrno.NOENT.code();
      }
      if (!isDir) {
        return WasiErrno.NOTDIR.code();
      }
      if ((rightsBase & Wasi.RIGHT_FD_WRITE) != 0 && (oflags & Wasi.OFLAGS_DIRECTORY) == 0) {
        return WasiErrno.ISDIR.code();
      }
      int fd = allocateFd();
      fds.put(
          fd,
          new Descriptor(
              FdEntry.Kind.DIRECTORY,
              guest,
              rightsBase & Wasi.RIGHTS_DIRECTORY,
              rightsInheriting,
              fdflags,
              false,
              false));
      m.writeI32((int) a[8], fd);
      return 0;
    }
    if (!exists && (oflags & Wasi.OFLAGS_CREAT) == 0) {
      return WasiErrno.NOENT.code();
    }
    if (exists && !Files.isRegularFile(host, LinkOption.NOFOLLOW_LINKS)) {
      return WasiErrno.NOTSUP.code();
    }
    boolean writable =
        (rightsBase
                    & (Wasi.RIGHT_FD_WRITE
                        | Wasi.RIGHT_FD_ALLOCATE
                        | Wasi.RIGHT_FD_FILESTAT_SET_SIZE))
                != 0
            || (oflags & (Wasi.OFLAGS_CREAT | Wasi.OFLAGS_TRUNC)) != 0;
    boolean readable = (rightsBase & Wasi.RIGHT_FD_READ) != 0;
    FileChannel ch = openChannel(host, true, writable, (oflags & Wasi.OFLAGS_CREAT) != 0);
    if ((oflags & Wasi.OFLAGS_TRUNC) != 0) {
      ch.truncate(0);
    }
    Descriptor nd =
        new Descriptor(
            FdEntry.Kind.FILE,
            guest,
            rightsBase & Wasi.RIGHTS_FILE,
            rightsInheriting,
            fdflags,
            readable,
            writable);
    nd.channel = ch;
    int fd = allocateFd();
    fds.put(fd, nd);
    m.writeI32((int) a[8], fd);
    return 0;
  }

  // --- fd_write: output waits while its sink takes no more (interruptible by a freeze)

  /** How often a write held by its sink asks again. */
  static final long OUTPUT_HOLD_POLL_NANOS = 100_000_000L;

  private HostFunction fdWriteFunction() {
    return new HostFunction(
        MODULE,
        "fd_write",
        FunctionType.of(List.of(I32, I32, I32, I32), List.of(I32)),
        (Instance inst, long... a) -> {
          if (!gate.proceed(inst)) {
            return new long[] {0};
          }
          Descriptor d = fds.get((int) a[0]);
          if (d != null && (d.kind == FdEntry.Kind.STDOUT || d.kind == FdEntry.Kind.STDERR)) {
            // Before any byte is taken: a freeze meanwhile re-runs this call whole after the
            // rewind.
            while (!out.accepting()) {
              if (!gate.sleep(inst, OUTPUT_HOLD_POLL_NANOS)) {
                return new long[] {0}; // unwinding: this call will run again after the rewind
              }
            }
          }
          return new long[] {invoke(this::fdWrite, inst.memory(), a)};
        });
  }

  // --- poll_oneoff: clocks sleep (interruptible by a freeze), fds are always ready

  private HostFunction pollOneoffFunction() {
    return new HostFunction(
        MODULE,
        "poll_oneoff",
        FunctionType.of(List.of(I32, I32, I32, I32), List.of(I32)),
        (Instance inst, long... a) -> {
          if (!gate.proceed(inst)) {
            return new long[] {0};
          }
          try {
            return new long[] {pollOneoff(inst, a)};
          } catch (WasiException e) {
            return new long[] {e.errno().code()};
          } catch (WasmRuntimeException e) {
            return new long[] {WasiErrno.FAULT.code()};
          }
        });
  }

  private int pollOneoff(Instance inst, long[] a) {
    Memory m = inst.memory();
    int in = (int) a[0];
    int out = (int) a[1];
    int n = (int) a[2];
    if (n == 0) {
      return WasiErrno.INVAL.code();
    }
    long nowMono = clock.monotonicNanos();
    long earliest = Long.MAX_VALUE;
    int readyFds = 0;
    for (int i = 0; i < n; i++) {
      int s = in + i * 48;
      int tag = m.read(s + 8);
      if (tag == 0) {
        int clockId = m.readInt(s + 16);
        long timeout = m.readLong(s + 24);
        int flags = m.readShort(s + 40);
        long wait =
            (flags & 1) != 0
                ? timeout - (clockId == Wasi.CLOCK_REALTIME ? now(Wasi.CLOCK_REALTIME) : nowMono)
                : timeout;
        earliest = Math.min(earliest, Math.max(0, wait));
      } else {
        readyFds++;
      }
    }
    if (readyFds == 0 && earliest > 0 && earliest != Long.MAX_VALUE) {
      if (!gate.sleep(inst, earliest)) {
        return 0; // unwinding: this call will run again after the rewind
      }
    }
    int events = 0;
    for (int i = 0; i < n; i++) {
      int s = in + i * 48;
      long userdata = m.readLong(s);
      int tag = m.read(s + 8);
      boolean fire;
      int errno = 0;
      long nbytes = 0;
      if (tag == 0) {
        fire = readyFds == 0;
      } else {
        fire = true;
        Descriptor d = fds.get(m.readInt(s + 16));
        if (d == null) {
          errno = WasiErrno.BADF.code();
        } else if (tag == 1 && d.channel != null) {
          try {
            nbytes = Math.max(0, d.channel.size() - d.offset);
          } catch (IOException e) {
            errno = WasiErrno.IO.code();
          }
        }
      }
      if (!fire) {
        continue;
      }
      int e = out + events * 32;
      m.writeLong(e, userdata);
      m.writeShort(e + 8, (short) errno);
      m.writeByte(e + 10, (byte) tag);
      for (int k = 11; k < 16; k++) {
        m.writeByte(e + k, (byte) 0);
      }
      m.writeLong(e + 16, nbytes);
      m.writeLong(e + 24, 0);
      events++;
    }
    m.writeI32((int) a[3], events);
    return 0;
  }
}
