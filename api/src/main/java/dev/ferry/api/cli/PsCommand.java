package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.ProcessInfo;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code ferry ps}: every process the node knows, oldest first. */
@Command(
    name = "ps",
    mixinStandardHelpOptions = true,
    description = "List processes: ID STATE ENGINE NODE EXIT STARTED.")
final class PsCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Override
  protected int execute() throws CliException {
    JsonNode answer = client().list();
    if (json.json) {
      printJson(answer);
      return ExitCodes.OK;
    }
    List<List<String>> rows = new ArrayList<>();
    for (JsonNode p : answer.path("processes")) {
      ProcessInfo info = as(p, ProcessInfo.class);
      rows.add(
          List.of(
              info.id(),
              StatusCommand.lower(info.state()),
              StatusCommand.lower(info.engine()),
              info.node() == null ? "-" : info.node(),
              info.exitCode() == null ? "-" : info.exitCode().toString(),
              Formats.time(info.startedAt(), ZoneId.systemDefault())));
    }
    out().print(Formats.table(List.of("ID", "STATE", "ENGINE", "NODE", "EXIT", "STARTED"), rows));
    return ExitCodes.OK;
  }
}
