package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.Engine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry restore PID}: resumes a checkpointed process from its image. */
@Command(
    name = "restore",
    mixinStandardHelpOptions = true,
    description = "Resume a checkpointed process from its image, optionally on another engine.")
final class RestoreCommand extends ApiCommand {
  @Option(
      names = "--engine",
      paramLabel = "ENGINE",
      converter = EngineConverter.class,
      completionCandidates = EngineConverter.Candidates.class,
      description = "interpreter or compiled (default: the node's ferry.node.engine).")
  Engine engine;

  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    JsonNode p = client().restore(pid, engine);
    if (json.json) {
      printJson(p);
    } else {
      out()
          .println(
              p.path("id").asText(pid)
                  + " "
                  + p.path("state").asText()
                  + " on "
                  + p.path("engine").asText("?")
                  + " (node "
                  + p.path("node").asText("?")
                  + ")");
    }
    return ExitCodes.OK;
  }
}
