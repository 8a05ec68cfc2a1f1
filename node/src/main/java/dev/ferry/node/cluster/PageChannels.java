package dev.ferry.node.cluster;

import dev.ferry.node.paging.PagingFiles;
import dev.ferry.transport.proto.Empty;
import dev.ferry.transport.proto.NodeInfoMsg;
import dev.ferry.transport.proto.NodeReply;
import dev.ferry.transport.proto.NodeRequest;
import dev.ferry.transport.proto.PageReply;
import dev.ferry.transport.proto.PageRequest;
import dev.ferry.transport.proto.TransferChunk;
import dev.ferry.transport.proto.TransferEndpoint;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The other nodes' page channels, for this node's paging files: one TCP connection per node to its
 * migration receiver (the first frame, with the cluster secret, asks for a page channel), reused
 * for every request and reopened once if it broke. Requests on one channel are sent one at a time;
 * replicas on different nodes are written in parallel by the caller.
 */
final class PageChannels implements PagingFiles.Peers, AutoCloseable {
  private final ClusterRuntime rt;
  private final Duration timeout;
  private final Map<String, Channel> channels = new ConcurrentHashMap<>();
  private volatile boolean closed;

  PageChannels(ClusterRuntime rt, Duration timeout) {
    this.rt = rt;
    this.timeout = timeout;
  }

  @Override
  public List<String> candidates() {
    Map<String, ActorRef<NodeRequest>> agents = rt.agents();
    List<CompletableFuture<NodeReply>> asks = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (var e : agents.entrySet()) {
      if (e.getKey().equals(rt.nodeName) || !isUp(e.getKey())) {
        continue;
      }
      names.add(e.getKey());
      asks.add(
          NodeAgent.ask(
                  rt,
                  e.getValue(),
                  NodeRequest.newBuilder().setNodeInfo(Empty.getDefaultInstance()),
                  Duration.ofSeconds(2))
              .toCompletableFuture());
    }
    record Load(String name, double load, int processes) {}
    List<Load> loads = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      try {
        NodeInfoMsg n = asks.get(i).get(3, TimeUnit.SECONDS).getNodeInfo();
        loads.add(new Load(names.get(i), n.getLoad(), n.getRunning()));
      } catch (Exception e) {
        // no answer: not a candidate now
      }
    }
    loads.sort(
        Comparator.comparingInt(Load::processes)
            .thenComparingDouble(Load::load)
            .thenComparing(Load::name));
    List<String> out = new ArrayList<>();
    loads.forEach(l -> out.add(l.name()));
    return out;
  }

  @Override
  public boolean isUp(String node) {
    ActorRef<NodeRequest> agent = rt.agent(node).orElse(null);
    if (agent == null) {
      return false;
    }
    for (Member m : Cluster.get(rt.system).state().getUnreachable()) {
      if (agent.path().address().equals(m.address())) {
        return false;
      }
    }
    return true;
  }

  /**
   * Sends {@code request} and waits for its answer. A broken connection is reopened and the request
   * sent again (every page request is idempotent), within the transfer timeout. With {@code
   * patient}, for as long as {@code node} is a member: a node that is only unreachable for a moment
   * (a long GC pause on a loaded machine) is waited for, because giving up would cost a process a
   * page it needs; otherwise as long as it is reachable (a replica that cannot be written at once
   * is better reported lost and replaced).
   */
  @Override
  public PageReply call(String node, PageRequest request, boolean patient) throws IOException {
    if (closed) {
      throw new IOException("node stopping");
    }
    Channel c = channels.computeIfAbsent(node, Channel::new);
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (c) {
      IOException last = null;
      for (int attempt = 0; ; attempt++) {
        try {
          c.open(attempt > 0);
          Frames.write(c.out, request);
          c.out.flush();
          byte[] reply =
              c.in.next(
                  () -> {
                    if (closed || System.nanoTime() > deadline) {
                      throw new IOException("no answer from " + node + " within " + timeout);
                    }
                    if (patient ? rt.agent(node).isEmpty() : !isUp(node)) {
                      throw new IOException("node " + node + " is unreachable or has left");
                    }
                  });
          return PageReply.parseFrom(reply);
        } catch (IOException e) {
          c.close();
          last = e;
          boolean gone = patient ? rt.agent(node).isEmpty() : !isUp(node);
          if (closed || gone || System.nanoTime() > deadline) {
            throw last;
          }
          pause(Math.min(500, 20L << Math.min(attempt, 5)));
        }
      }
    }
  }

  private static void pause(long millis) throws IOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    }
  }

  /** One node's page channel. Used under its own lock. */
  private final class Channel {
    final String node;
    Socket socket;
    DataOutputStream out;
    Frames.Reader in;

    Channel(String node) {
      this.node = node;
    }

    void open(boolean freshEndpoint) throws IOException {
      if (socket != null) {
        return;
      }
      TransferEndpoint ep = endpoint(freshEndpoint);
      Socket s = new Socket();
      try {
        s.setTcpNoDelay(true);
        s.setSendBufferSize(1 << 20);
        s.connect(new InetSocketAddress(ep.getHost(), ep.getPort()), 10_000);
        s.setSoTimeout(100);
        DataOutputStream o =
            new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
        Frames.write(
            o,
            TransferChunk.newBuilder()
                .setSeq(0)
                .setPages(true)
                .setFromNode(rt.nodeName)
                .setSecret(ep.getSecret())
                .build());
        o.flush();
        socket = s;
        out = o;
        in = new Frames.Reader(new BufferedInputStream(s.getInputStream(), 1 << 16));
      } catch (IOException e) {
        s.close();
        throw e;
      }
    }

    void close() {
      if (socket != null) {
        try {
          socket.close();
        } catch (IOException ignored) {
          // closing anyway
        }
      }
      socket = null;
      out = null;
      in = null;
    }

    private TransferEndpoint endpoint(boolean fresh) throws IOException {
      TransferEndpoint ep = fresh ? null : rt.endpoints.get(node);
      if (ep != null) {
        return ep;
      }
      ActorRef<NodeRequest> agent =
          rt.agent(node).orElseThrow(() -> new IOException("no node " + node + " in the cluster"));
      try {
        NodeReply r =
            NodeAgent.ask(
                    rt,
                    agent,
                    NodeRequest.newBuilder().setTransferEndpoint(Empty.getDefaultInstance()),
                    timeout)
                .toCompletableFuture()
                .get(timeout.toMillis() + 1000, TimeUnit.MILLISECONDS);
        if (!r.hasEndpoint()) {
          throw new IOException("node " + node + " did not say where it receives");
        }
        rt.endpoints.put(node, r.getEndpoint());
        return r.getEndpoint();
      } catch (IOException e) {
        throw e;
      } catch (Exception e) {
        throw new IOException("node " + node + " did not answer: " + e, e);
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    for (Channel c : channels.values()) {
      synchronized (c) {
        c.close();
      }
    }
  }
}
