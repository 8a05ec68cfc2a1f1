package dev.ferry.integration;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Loopback ports for node JVMs: never the same twice in one test JVM, free when handed out.
 *
 * <p>Taken from 20000-31999, below Linux's ephemeral range (32768+), so the port is not taken in
 * the meantime by some client socket's local end. Another program may still bind it between the
 * check and the node's start; that shows as a node that fails to start with "cannot serve the HTTP
 * API" or an Artery bind error in its log.
 */
public final class FreePorts {
  private static final int LOW = 20000;
  private static final int HIGH = 32000;
  private static final Set<Integer> handedOut = new HashSet<>();
  private static int next = LOW + ThreadLocalRandom.current().nextInt(HIGH - LOW);

  private FreePorts() {}

  public static synchronized int next() {
    for (int tries = 0; tries < HIGH - LOW; tries++) {
      int port = next;
      next = next + 1 >= HIGH ? LOW : next + 1;
      if (!handedOut.contains(port) && isFree(port)) {
        handedOut.add(port);
        return port;
      }
    }
    throw new IllegalStateException("no free loopback port in " + LOW + "-" + HIGH);
  }

  private static boolean isFree(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.setReuseAddress(false);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
