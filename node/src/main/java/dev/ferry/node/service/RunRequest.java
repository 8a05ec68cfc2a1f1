package dev.ferry.node.service;

import java.util.List;
import java.util.Map;

/**
 * A request to start a process.
 *
 * @param moduleHash a hash returned by {@link ProcessService#uploadModule}
 * @param engine null for the node's default
 * @param args argv[1..]; argv[0] is the module name Ferry gives ("main.wasm")
 * @param env environment variables, in order
 * @param files files to place in the sandbox before start: guest path ("/in.txt") to content
 * @param paged run on paged memory with a replicated paging file (what gfvm migrates)
 */
public record RunRequest(
    String moduleHash,
    Engine engine,
    List<String> args,
    Map<String, String> env,
    Map<String, byte[]> files,
    boolean paged) {
  public RunRequest(
      String moduleHash,
      Engine engine,
      List<String> args,
      Map<String, String> env,
      Map<String, byte[]> files) {
    this(moduleHash, engine, args, env, files, false);
  }
}
