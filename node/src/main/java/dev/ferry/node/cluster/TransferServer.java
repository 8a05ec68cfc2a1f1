package dev.ferry.node.cluster;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import dev.ferry.node.DaemonThreads;
import dev.ferry.node.process.ImageSpool;
import dev.ferry.node.process.NodeProcesses;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.transport.proto.Ack;
import dev.ferry.transport.proto.MigrationBundle;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.ProcessImage;
import dev.ferry.transport.proto.TransferChunk;
import dev.ferry.transport.proto.TransferEndpoint;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a node receives migrations: a TCP port on the node's cluster host (an ephemeral one, found
 * through the node agent, see {@code TransferEndpoint} in cluster.proto). One connection carries
 * one migration's bundle as bounded Protobuf chunks; each is acknowledged, so the source keeps at
 * most {@code window} chunks in flight. After the last chunk the bundle is checked (CRC32C) and
 * stored durably (one LMDB transaction and an fsync, on another thread) while this one rebuilds the
 * process from its image; when both are done the source gets its answer and then the process runs
 * here — without passing through actors: a migration's freeze costs one round trip between the
 * nodes, not several. The source opens the connection while the process freezes. A large image (the
 * bundle's first field) is copied into the store while it arrives ({@link ImageSpool}), so that
 * little is left to store after the last chunk.
 *
 * <p>A connection that breaks or stays silent for {@code transfer-timeout} leaves nothing behind: a
 * bundle is only stored once it is complete and verified (the pieces of an image spooled meanwhile
 * are invisible until then, and removed).
 */
final class TransferServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(TransferServer.class);

  private final ClusterRuntime rt;
  private final ServerSocket server;
  private final ByteString secret;
  private final Duration readTimeout;
  private final ExecutorService threads =
      Executors.newCachedThreadPool(DaemonThreads.named("ferry-transfer-in"));
  private volatile boolean closed;

  TransferServer(ClusterRuntime rt, Duration readTimeout) throws IOException {
    this.rt = rt;
    this.readTimeout = readTimeout;
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    this.secret = ByteString.copyFrom(key);
    this.server = new ServerSocket();
    server.setReuseAddress(true);
    server.bind(new InetSocketAddress(rt.settings.node().host(), 0), 64);
  }

  void start() {
    DaemonThreads.named("ferry-transfer-accept").newThread(this::acceptLoop).start();
  }

  TransferEndpoint endpoint() {
    return TransferEndpoint.newBuilder()
        .setHost(rt.settings.node().host())
        .setPort(server.getLocalPort())
        .setSecret(secret)
        .build();
  }

  @Override
  public void close() {
    closed = true;
    try {
      server.close();
    } catch (IOException ignored) {
      // closing anyway
    }
    threads.shutdownNow();
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket s = server.accept();
        threads.execute(() -> serve(s));
      } catch (IOException e) {
        if (!closed) {
          log.warn("migration receiver: accept failed: {}", e.toString());
        }
      }
    }
  }

  private void serve(Socket s) {
    try (s) {
      s.setTcpNoDelay(true);
      s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, readTimeout.toMillis()));
      Frames.Reader in = new Frames.Reader(new BufferedInputStream(s.getInputStream(), 1 << 16));
      DataOutputStream out =
          new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 12));
      receive(in, out);
    } catch (IOException e) {
      if (!closed) {
        log.info(
            "migration connection from {} ended: {}", s.getRemoteSocketAddress(), e.toString());
      }
    }
  }

  /**
   * The next chunk, parsed in place in the reader's shared buffer: its data is valid only until the
   * next read (each chunk is copied into the bundle before that).
   */
  private static TransferChunk next(Frames.Reader in, Frames.OnTimeout onTimeout)
      throws IOException {
    int length = in.nextShared(onTimeout);
    CodedInputStream c = CodedInputStream.newInstance(in.shared(), 0, length);
    c.enableAliasing(true); // the chunk's data stays in the frame: one copy less
    return TransferChunk.parseFrom(c);
  }

  private void receive(Frames.Reader in, DataOutputStream out) throws IOException {
    Frames.OnTimeout silent =
        () -> {
          throw new IOException("no data for " + readTimeout + " (transfer-timeout)");
        };
    TransferChunk c;
    try {
      c = next(in, silent);
    } catch (java.io.EOFException e) {
      return; // opened ahead of a migration that did not happen (it was refused or aborted)
    }
    if (c.getSeq() != 0 || !c.getSecret().equals(secret)) {
      throw new IOException("not a migration from a cluster member (no or wrong secret)");
    }
    if (c.getPages()) {
      servePages(in, out);
      return;
    }
    if (c.getModule()) {
      receiveModule(c, in, out, silent);
      return;
    }
    String migrationId = c.getMigrationId();
    ImageSpool spool = null;
    try {
      if (c.getTotalBytes() < 0 || c.getTotalBytes() > Integer.MAX_VALUE - 16) {
        throw FerryException.badRequest("bundle of " + c.getTotalBytes() + " bytes is too large");
      }
      if (rt.processes.has(c.getPid())) {
        throw FerryException.conflict(
            "process " + c.getPid() + " is already on node " + rt.nodeName);
      }
      refuseIfItCannotFit(c.getTotalBytes());
      Assembly bundle = new Assembly(migrationId, (int) c.getTotalBytes());
      spool = spool(c, bundle.data);
      long firstChunkAt = System.nanoTime();
      for (long seq = 0; ; seq++) {
        if (seq > 0) {
          c = next(in, silent);
        }
        bundle.take(c, seq);
        if (spool != null) {
          spool.arrived(bundle.filled);
        }
        if (!c.getLast()) {
          Frames.write(
              out,
              NodeReply.newBuilder().setAck(Ack.newBuilder().setSeq(seq).setPresent(true)).build());
          out.flush();
          continue;
        }
        bundle.verify(c, "bundle");
        long streamMicros = (System.nanoTime() - firstChunkAt) / 1000;
        long t0 = System.nanoTime();
        NodeProcesses.Arrival arrival = complete(migrationId, bundle.data, c.getEngine(), spool);
        try {
          // The answer first, then the process runs: the source commits without competing
          // with it for a CPU. Runs even if the answer cannot be sent (the source then asks
          // whether it runs here).
          Ack ack =
              Ack.newBuilder()
                  .setSeq(seq)
                  .setPresent(true)
                  .setStreamMicros(streamMicros)
                  .setStoreMicros((arrival.durableAt() - t0) / 1000)
                  .setInfo(Wire.info(arrival.info()))
                  .setRestoreMicros(Math.max(0, System.nanoTime() - arrival.durableAt()) / 1000)
                  .build();
          Frames.write(out, NodeReply.newBuilder().setAck(ack).build());
          out.flush();
        } finally {
          arrival.run().run();
          // This node now runs the process: it places the process's shard here too, so that
          // requests find it even if the source is lost before it has placed the shard itself.
          rt.place(arrival.info().id(), rt.selfAddress());
        }
        return;
      }
    } catch (RuntimeException e) {
      Frames.write(out, NodeReply.newBuilder().setError(Wire.error(e)).build());
      out.flush();
      drain(in, silent);
    } finally {
      if (spool != null) {
        spool.discard(); // (nothing, once it has been stored with the process)
      }
    }
  }

  /**
   * After a refusal: reads and drops what the source still sends, until it has read the refusal and
   * closes the connection (or the connection goes silent). Closing at once would reset a connection
   * the source is still writing chunks into, and it would see "broken pipe" instead of the reason.
   */
  private static void drain(Frames.Reader in, Frames.OnTimeout silent) {
    try {
      while (true) {
        in.nextShared(silent);
      }
    } catch (IOException end) {
      // the source closed it (or went silent): done
    }
  }

  /**
   * Refuses, at its first chunk, a large bundle this node's store certainly cannot hold ({@link
   * dev.ferry.statestore.FerryStore#roomAtMost}), rather than after receiving and storing as much
   * of it as fits while the process stands still at its source. (Small bundles are not measured:
   * the measuring reads every table's statistics, and a small one that does not fit is refused as
   * soon.)
   */
  private void refuseIfItCannotFit(long bundleBytes) {
    if (bundleBytes < NodeProcesses.SPOOL_MIN_BYTES) {
      return;
    }
    long room = rt.store.roomAtMost();
    if (bundleBytes > room) {
      throw new dev.ferry.statestore.StoreFullException(
          String.format(
              java.util.Locale.ROOT,
              "store full: node %s can take at most %.1f MiB more (ferry.store.map-size %.1f MiB,"
                  + " and the free space of its disk), and this process's bundle is %.1f MiB;"
                  + " increase ferry.store.map-size or free disk space on %s, or migrate the"
                  + " process to another node",
              rt.nodeName,
              room / 1048576.0,
              rt.store.mapSize() / 1048576.0,
              bundleBytes / 1048576.0,
              rt.nodeName),
          null);
    }
  }

  /**
   * A module sent ahead of a migration (first chunk {@code c}): each chunk acknowledged, the whole
   * checked (CRC32C), stored durably and made ready for the engine named in the last chunk before
   * the last acknowledgement. A refusal goes back to the source, whose migration then aborts while
   * the process still runs there.
   */
  private void receiveModule(
      TransferChunk c, Frames.Reader in, DataOutputStream out, Frames.OnTimeout silent)
      throws IOException {
    if (dev.ferry.node.Failpoint.at("halt-on-module")) {
      dev.ferry.node.Failpoint.halt("halt-on-module");
    }
    try {
      if (c.getTotalBytes() <= 0 || c.getTotalBytes() > Integer.MAX_VALUE - 16) {
        throw FerryException.badRequest("module of " + c.getTotalBytes() + " bytes");
      }
      Assembly module = new Assembly(c.getMigrationId(), (int) c.getTotalBytes());
      for (long seq = 0; ; seq++) {
        if (seq > 0) {
          c = next(in, silent);
        }
        module.take(c, seq);
        if (c.getLast()) {
          module.verify(c, "module");
          String engine = c.getEngine();
          rt.processes.receiveModule(module.data, engine.isEmpty() ? null : Engine.parse(engine));
        }
        Frames.write(
            out,
            NodeReply.newBuilder().setAck(Ack.newBuilder().setSeq(seq).setPresent(true)).build());
        out.flush();
        if (c.getLast()) {
          return;
        }
      }
    } catch (RuntimeException e) {
      Frames.write(out, NodeReply.newBuilder().setError(Wire.error(e)).build());
      out.flush();
    }
  }

  /**
   * The bytes of one transfer (a bundle, a module), assembled from its chunks: in order, within the
   * length the first chunk announced, checksummed as they arrive rather than all after the last.
   */
  private static final class Assembly {
    final byte[] data;
    int filled;
    private final String migrationId;
    private final java.util.zip.CRC32C crc = new java.util.zip.CRC32C();

    Assembly(String migrationId, int length) {
      this.migrationId = migrationId;
      this.data = new byte[length];
    }

    /** Copies in chunk {@code seq}, which {@code c} must be. */
    void take(TransferChunk c, long seq) {
      if (c.getSeq() != seq || !c.getMigrationId().equals(migrationId)) {
        throw FerryException.badRequest(
            "chunk " + c.getSeq() + " of " + c.getMigrationId() + " arrived, expected " + seq);
      }
      int n = c.getData().size();
      if (filled + n > data.length) {
        throw FerryException.badRequest("more bytes than announced");
      }
      c.getData().copyTo(data, filled);
      crc.update(data, filled, n);
      filled += n;
    }

    /** After the last chunk: every announced byte arrived, with the checksum it announces. */
    void verify(TransferChunk last, String what) {
      if (filled != data.length) {
        throw FerryException.badRequest(
            "transfer ended after " + filled + " of " + data.length + " bytes");
      }
      if ((int) crc.getValue() != last.getCrc32C()) {
        throw FerryException.badRequest(what + " checksum mismatch");
      }
    }
  }

  /**
   * An {@link ImageSpool} for a bundle whose first chunk {@code first} shows it starts with a large
   * image (as the source serializes it: NodeProcesses.serialize), or null.
   */
  private ImageSpool spool(TransferChunk first, byte[] data) {
    if (data.length < NodeProcesses.SPOOL_MIN_BYTES) {
      return null;
    }
    try {
      CodedInputStream in = CodedInputStream.newInstance(first.getData().asReadOnlyByteBuffer());
      int tag = in.readTag();
      if (com.google.protobuf.WireFormat.getTagFieldNumber(tag)
              != MigrationBundle.IMAGE_FIELD_NUMBER
          || com.google.protobuf.WireFormat.getTagWireType(tag)
              != com.google.protobuf.WireFormat.WIRETYPE_LENGTH_DELIMITED) {
        return null;
      }
      int length = in.readRawVarint32();
      int start = in.getTotalBytesRead();
      if (length < 0 || (long) start + length > data.length) {
        return null; // the parse after the last chunk will say what is wrong
      }
      return rt.processes.spoolIncomingImage(first.getPid(), data, start, length);
    } catch (IOException e) {
      return null;
    }
  }

  /**
   * A page channel: requests on another node's paging files (replica writes, reads, drops), each
   * answered in order. An idle channel stays open; the client closes it.
   */
  private void servePages(Frames.Reader in, DataOutputStream out) throws IOException {
    Frames.OnTimeout idle =
        () -> {
          if (closed) {
            throw new IOException("node stopping");
          }
        };
    while (!closed) {
      byte[] frame = in.next(idle);
      CodedInputStream ci = CodedInputStream.newInstance(frame);
      ci.enableAliasing(true);
      dev.ferry.transport.proto.PageRequest req =
          dev.ferry.transport.proto.PageRequest.parseFrom(ci);
      Frames.write(out, rt.processes.paging().serve(req));
      out.flush();
    }
  }

  /**
   * A whole, verified bundle has arrived: store it durably and rebuild the process here (the two
   * overlap), ready to run once the source has its answer. If it cannot be taken in, what arrived
   * is dropped and the error goes back to the source, which resumes the process.
   */
  private NodeProcesses.Arrival complete(
      String migrationId, byte[] data, String engine, ImageSpool spool) {
    MigrationBundle bundle;
    ProcessImage image;
    try {
      // Parsed in place: the image, its memory runs and the logs stay slices of what arrived,
      // copied once into the store and once into the process's memory.
      CodedInputStream in = CodedInputStream.newInstance(data);
      in.enableAliasing(true);
      bundle = MigrationBundle.parseFrom(in);
      CodedInputStream imageIn = bundle.getImage().newCodedInput();
      imageIn.enableAliasing(true);
      image = ProcessImage.parseFrom(imageIn);
    } catch (IOException ex) {
      throw FerryException.badRequest("corrupt bundle: " + ex.getMessage());
    }
    return rt.processes.receiveIncoming(
        migrationId, bundle, image, engine.isEmpty() ? null : Engine.parse(engine), spool);
  }
}
