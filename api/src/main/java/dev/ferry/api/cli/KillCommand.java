package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code ferry kill PID}: stops a process for good; its output and files stay readable. */
@Command(
    name = "kill",
    mixinStandardHelpOptions = true,
    description = "Stop a process for good (its logs and files stay readable).")
final class KillCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    JsonNode p = client().kill(pid);
    if (json.json) {
      printJson(p);
    } else {
      out().println(p.path("id").asText(pid) + " " + p.path("state").asText());
    }
    return ExitCodes.OK;
  }
}
