package dev.ferry.node.wasi;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A process's private directory on its node, seen by the guest as "/". Maps guest paths to host
 * paths and refuses any path that would leave the sandbox ("..", absolute host paths, symbolic
 * links pointing outside).
 */
public final class Sandbox {
  private final Path root;
  private final Path realRoot;

  public Sandbox(Path root) throws IOException {
    Files.createDirectories(root);
    this.root = root.toAbsolutePath().normalize();
    this.realRoot = this.root.toRealPath();
  }

  public Path root() {
    return root;
  }

  /**
   * Joins a guest path to the guest directory it is relative to and normalizes it: the result is
   * absolute, has no "." or ".." and no trailing slash (except "/").
   *
   * @throws WasiException NOTCAPABLE if the path climbs above "/"
   */
  public static String resolveGuest(String baseDir, String path) {
    if (path.indexOf('\0') >= 0) {
      throw new WasiException(WasiErrno.INVAL);
    }
    String joined = path.startsWith("/") ? path : baseDir + "/" + path;
    Deque<String> parts = new ArrayDeque<>();
    for (String p : joined.split("/")) {
      if (p.isEmpty() || p.equals(".")) {
        continue;
      }
      if (p.equals("..")) {
        if (parts.isEmpty()) {
          throw new WasiException(WasiErrno.NOTCAPABLE);
        }
        parts.removeLast();
      } else {
        parts.addLast(p);
      }
    }
    return "/" + String.join("/", parts);
  }

  /**
   * The host path for a normalized guest path. If the host path (or, when it does not exist yet,
   * its parent) resolves through a symbolic link to a place outside the sandbox, fails with
   * NOTCAPABLE.
   */
  public Path hostPath(String guestPath) {
    Path p = guestPath.equals("/") ? root : root.resolve(guestPath.substring(1));
    try {
      Path probe = p;
      while (probe != null && !Files.exists(probe, LinkOption.NOFOLLOW_LINKS)) {
        probe = probe.getParent();
      }
      if (probe != null && !probe.toRealPath().startsWith(realRoot)) {
        throw new WasiException(WasiErrno.NOTCAPABLE);
      }
    } catch (IOException e) {
      throw new WasiException(WasiErrno.IO);
    }
    return p;
  }
}
