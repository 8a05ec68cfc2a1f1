package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.http.MigrationStates;
import dev.ferry.node.service.MigrationInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry cancel ID}: cancels a migration that has not committed, and prints how it ended once
 * it has (cancelled, or aborted: either way the process runs on at its source).
 */
@Command(
    name = "cancel",
    mixinStandardHelpOptions = true,
    description = {
      "Cancel a migration that has not committed yet; the process runs on at its source.",
      "A migration that has ended, or commits first, is a conflict (exit 4)."
    })
final class CancelCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Parameters(
      index = "0",
      paramLabel = "ID",
      description = "The migration id (from ferry migrate or ferry migrations).")
  String id;

  @Override
  protected int execute() throws CliException {
    ApiClient api = client();
    JsonNode m = api.cancelMigration(id);
    // 202: still ending when the node stopped waiting; ask until the record is final.
    MigrationInfo info = as(m, MigrationInfo.class);
    while (!MigrationStates.isEnded(info)) {
      MigrateCommand.sleep(MigrateCommand.POLL);
      m = api.migration(id);
      info = as(m, MigrationInfo.class);
    }
    if (info.state().equals("committed")) {
      // Past the point of no return before the cancel reached it: the same conflict the node
      // answers (409) when it sees the commit within its own wait.
      throw new CliException(
          ExitCodes.CONFLICT,
          "migration "
              + id
              + " committed before it could be cancelled; "
              + info.pid()
              + " runs on "
              + info.toNode());
    }
    if (json.json) {
      printJson(m);
    } else {
      out().println(m.path("id").asText(id) + " " + m.path("state").asText());
    }
    return ExitCodes.OK;
  }
}
