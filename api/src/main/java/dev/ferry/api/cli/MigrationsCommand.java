package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.MigrationInfo;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code ferry migrations [ID]}: the cluster's migrations, newest first, or one in full. */
@Command(
    name = "migrations",
    mixinStandardHelpOptions = true,
    description = {
      "List migrations, newest first: ID PID FROM TO STATE FREEZE(ms) TOTAL(ms) BYTES.",
      "With an ID, show that migration in full."
    })
final class MigrationsCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "ID",
      description = "A migration id (from ferry migrate): show only it, in full.")
  String id;

  @Override
  protected int execute() throws CliException {
    ApiClient api = client();
    if (id != null) {
      JsonNode answer = api.migration(id);
      if (json.json) {
        printJson(answer);
      } else {
        out().print(describe(as(answer, MigrationInfo.class), ZoneId.systemDefault()));
      }
      return ExitCodes.OK;
    }
    JsonNode answer = api.migrations();
    if (json.json) {
      printJson(answer);
      return ExitCodes.OK;
    }
    List<List<String>> rows = new ArrayList<>();
    for (JsonNode n : answer.path("migrations")) {
      MigrationInfo m = as(n, MigrationInfo.class);
      rows.add(
          List.of(
              m.id(),
              m.pid(),
              m.fromNode(),
              m.toNode(),
              m.state(),
              Formats.millisNumber(m.totalFreezeMicros()),
              Formats.millisNumber(m.totalMicros()),
              Long.toString(m.bytesMoved())));
    }
    out()
        .print(
            Formats.table(
                List.of("ID", "PID", "FROM", "TO", "STATE", "FREEZE(ms)", "TOTAL(ms)", "BYTES"),
                rows));
    return ExitCodes.OK;
  }

  /** The readable block of {@code ferry migrations ID}. */
  static String describe(MigrationInfo m, ZoneId zone) {
    StringBuilder b = new StringBuilder();
    line(b, "ID", m.id());
    line(b, "Process", m.pid());
    line(b, "From", m.fromNode() + engine(m.fromEngine()));
    line(b, "To", m.toNode() + engine(m.toEngine()));
    line(b, "Strategy", m.strategy());
    line(b, "State", m.state());
    line(b, "Requested", Formats.timeMillis(m.requestedAt(), zone));
    line(b, "Finished", Formats.timeMillis(m.finishedAt(), zone));
    line(b, "Freeze", Formats.millis(m.freezeMicros()));
    line(b, "Capture", Formats.millis(m.captureMicros()));
    line(b, "Transfer", Formats.millis(m.transferMicros()));
    line(b, "Restore", Formats.millis(m.restoreMicros()));
    line(b, "Downtime", Formats.millis(m.totalFreezeMicros()));
    line(b, "Total", Formats.millis(m.totalMicros()));
    line(b, "Moved", Formats.bytes(m.bytesMoved()));
    line(b, "Image", Formats.bytes(m.imageBytes()));
    if (m.error() != null) {
      line(b, "Error", m.error());
    }
    return b.toString();
  }

  private static String engine(String engine) {
    return engine == null ? "" : " (" + engine + ")";
  }

  private static void line(StringBuilder b, String key, String value) {
    b.append(String.format(Locale.ROOT, "%-10s %s%n", key + ":", value));
  }
}
