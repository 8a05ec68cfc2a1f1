package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry commit ID}: commits by hand a migration held in doubt, whose source is gone for
 * good: its destination runs the process it holds.
 */
@Command(
    name = "commit",
    mixinStandardHelpOptions = true,
    description = {
      "Commit by hand a migration in doubt (state in_doubt): its destination restarted holding the"
          + " process and its source, gone, cannot say whether it committed. The destination"
          + " then runs the process.",
      "Only when the source node is gone for good: while it can answer, its answer settles the"
          + " migration and this is a conflict (exit 4), as is any other state."
    })
final class CommitCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Parameters(
      index = "0",
      paramLabel = "ID",
      description = "The migration id (ferry migrations lists it as in_doubt).")
  String id;

  @Override
  protected int execute() throws CliException {
    JsonNode m = client().commitInDoubt(id);
    if (json.json) {
      printJson(m);
    } else {
      out().println(m.path("id").asText(id) + " " + m.path("state").asText());
      out().println(m.path("error").asText());
    }
    return ExitCodes.OK;
  }
}
