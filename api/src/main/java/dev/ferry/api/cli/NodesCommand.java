package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.NodeInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code ferry nodes}: the members of the cluster, as the node asked sees them. */
@Command(
    name = "nodes",
    mixinStandardHelpOptions = true,
    description = "List the cluster's nodes: NAME STATUS ENGINE JDK LOAD PROCS ADDRESS.")
final class NodesCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Override
  protected int execute() throws CliException {
    JsonNode answer = client().nodes();
    if (json.json) {
      printJson(answer);
      return ExitCodes.OK;
    }
    List<List<String>> rows = new ArrayList<>();
    for (JsonNode n : answer.path("nodes")) {
      NodeInfo info = as(n, NodeInfo.class);
      rows.add(
          List.of(
              info.name(),
              info.status(),
              Formats.orDash(info.engine()),
              Formats.orDash(info.jdk()),
              info.load() < 0 ? "-" : String.format(Locale.ROOT, "%.2f", info.load()),
              info.engine() == null ? "-" : Integer.toString(info.processes()),
              Formats.orDash(info.address())));
    }
    out()
        .print(
            Formats.table(
                List.of("NAME", "STATUS", "ENGINE", "JDK", "LOAD", "PROCS", "ADDRESS"), rows));
    return ExitCodes.OK;
  }
}
