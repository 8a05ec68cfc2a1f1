package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.Engine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry run}: uploads a module, starts it, prints the new pid alone on a line (so {@code
 * pid=$(ferry run prog.wasm)} works). Every local input (module, {@code --file}s, {@code --env}) is
 * checked before anything is sent.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = {
      "Upload MODULE.wasm and start it as a new process; print its pid.",
      "Arguments for the program go after '--': ferry run prog.wasm -- -v input.txt"
    })
final class RunCommand extends ApiCommand {
  @Option(
      names = "--engine",
      paramLabel = "ENGINE",
      converter = EngineConverter.class,
      completionCandidates = EngineConverter.Candidates.class,
      description = "interpreter or compiled (default: the node's ferry.node.engine).")
  Engine engine;

  @Option(
      names = "--env",
      paramLabel = "NAME=VALUE",
      description = "An environment variable for the program; repeatable, kept in order.")
  List<String> env = new ArrayList<>();

  @Option(
      names = "--file",
      paramLabel = "HOST:GUEST",
      description = {
        "Copy the local file HOST into the process's sandbox at the absolute guest path GUEST",
        "before it starts (split at the last ':'); repeatable."
      })
  List<String> files = new ArrayList<>();

  @Option(
      names = "--preemptible",
      description = "Add migration points at loop heads, so CPU-bound loops can be checkpointed.")
  boolean preemptible;

  @Option(
      names = "--paged",
      description = {
        "Run on paged memory with a paging file replicated on other nodes",
        "(ferry.strategies.gfvm): what --strategy gfvm migrates."
      })
  boolean paged;

  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "MODULE.wasm", description = "The WebAssembly module.")
  Path module;

  @Parameters(
      index = "1..*",
      paramLabel = "ARGS",
      description = "Arguments passed to the program (argv[1..]).")
  List<String> args = new ArrayList<>();

  @Override
  protected int execute() throws CliException {
    Map<String, String> environment = parseEnv(env);
    Map<String, String> sandboxFiles = readFiles(files);
    byte[] wasm = readLocal(module, "module");
    ApiClient api = client();

    JsonNode uploaded = api.uploadModule(wasm, preemptible);
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("module", uploaded.path("hash").asText());
    if (engine != null) {
      body.put("engine", engine.wireName());
    }
    body.put("args", args);
    body.put("env", environment);
    body.put("files", sandboxFiles);
    if (paged) {
      body.put("paged", true);
    }
    JsonNode process = api.run(body);
    if (json.json) {
      printJson(process);
    } else {
      out().println(process.path("id").asText());
    }
    return ExitCodes.OK;
  }

  static Map<String, String> parseEnv(List<String> pairs) throws CliException {
    Map<String, String> env = new LinkedHashMap<>();
    for (String pair : pairs) {
      int eq = pair.indexOf('=');
      if (eq <= 0) {
        throw new CliException(ExitCodes.USAGE, "--env expects NAME=VALUE, got '" + pair + "'");
      }
      env.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    return env;
  }

  /** Reads every HOST:GUEST into guest path → base64, failing before anything is sent. */
  static Map<String, String> readFiles(List<String> specs) throws CliException {
    Map<String, String> files = new LinkedHashMap<>();
    for (String spec : specs) {
      int colon = spec.lastIndexOf(':');
      if (colon <= 0 || colon == spec.length() - 1) {
        throw new CliException(
            ExitCodes.USAGE,
            "--file expects HOST:GUEST (e.g. data.txt:/in.txt), got '" + spec + "'");
      }
      String host = spec.substring(0, colon);
      String guest = spec.substring(colon + 1);
      if (!guest.startsWith("/")) {
        throw new CliException(
            ExitCodes.USAGE,
            "--file "
                + spec
                + ": the guest path '"
                + guest
                + "' must be absolute (e.g. /"
                + guest
                + ")");
      }
      files.put(guest, Base64.getEncoder().encodeToString(readLocal(Path.of(host), "file")));
    }
    return files;
  }

  static byte[] readLocal(Path path, String what) throws CliException {
    try {
      return Files.readAllBytes(path);
    } catch (NoSuchFileException e) {
      throw new CliException(
          ExitCodes.ERROR, "cannot read " + what + " '" + path + "': no such file");
    } catch (IOException e) {
      throw new CliException(
          ExitCodes.ERROR, "cannot read " + what + " '" + path + "': " + e.getMessage(), e);
    }
  }
}
