package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.http.ApiJson;
import java.io.IOException;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeParseException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code ferry events}: follows the cluster's event stream ({@code GET /v1/events}) and prints one
 * line per event, as it comes, until interrupted (or until {@code --count} events).
 */
@Command(
    name = "events",
    mixinStandardHelpOptions = true,
    description = {
      "Follow the cluster's events (nodes, processes, migrations), one line each, until",
      "interrupted: TIME NODE KIND SUMMARY. With --json, each event's JSON on one line."
    })
final class EventsCommand extends ApiCommand {
  @Option(
      names = "--count",
      paramLabel = "N",
      description = "Stop after N events (default: follow until interrupted).")
  Integer count;

  @Mixin JsonOption json;

  @Override
  protected int execute() throws CliException {
    if (count != null && count < 1) {
      throw new CliException(ExitCodes.USAGE, "--count must be at least 1, got " + count);
    }
    ZoneId zone = ZoneId.systemDefault();
    int[] seen = {0};
    client()
        .events(
            (type, data) -> {
              out().println(json.json ? data : describe(type, data, zone));
              out().flush();
              seen[0]++;
              // Stop when done, or when the reader went away (`ferry events | head -3`).
              return (count == null || seen[0] < count) && !out().checkError();
            });
    return ExitCodes.OK;
  }

  /** One event as {@code <time> <node> <kind> <summary>}. */
  static String describe(String type, String data, ZoneId zone) {
    JsonNode e;
    try {
      e = ApiJson.mapper().readTree(data);
    } catch (IOException ex) {
      return "- - " + type + " " + data;
    }
    return Formats.timeMillis(instant(e.path("at").asText()), zone)
        + " "
        + e.path("node").asText("-")
        + " "
        + type
        + " "
        + summary(type, e);
  }

  private static String summary(String type, JsonNode e) {
    switch (type) {
      case "process" -> {
        JsonNode p = e.path("process");
        StringBuilder b =
            new StringBuilder(p.path("pid").asText()).append(' ').append(p.path("what").asText());
        if (p.has("exitCode")) {
          b.append(" (exit code ").append(p.path("exitCode").asInt()).append(')');
        }
        if (p.has("engine")) {
          b.append(" on ").append(p.path("engine").asText());
        }
        if (p.has("error")) {
          b.append(": ").append(p.path("error").asText());
        }
        return b.toString();
      }
      case "node" -> {
        JsonNode n = e.path("member");
        return n.path("name").asText()
            + " "
            + n.path("status").asText()
            + (n.has("address") ? " (" + n.path("address").asText() + ")" : "");
      }
      case "migration" -> {
        JsonNode m = e.path("migration");
        StringBuilder b =
            new StringBuilder()
                .append(m.path("id").asText())
                .append(' ')
                .append(m.path("pid").asText())
                .append(' ')
                .append(m.path("fromNode").asText())
                .append(" -> ")
                .append(m.path("toNode").asText())
                .append(' ')
                .append(m.path("state").asText());
        if (m.path("state").asText().equals("committed")) {
          b.append(" (downtime ")
              .append(Formats.millis(m.path("totalFreezeMicros").asLong()))
              .append(", total ")
              .append(Formats.millis(m.path("totalMicros").asLong()))
              .append(", ")
              .append(Formats.bytes(m.path("bytesMoved").asLong()))
              .append(')');
        }
        if (m.has("error")) {
          b.append(": ").append(m.path("error").asText());
        }
        return b.toString();
      }
      default -> {
        return e.toString();
      }
    }
  }

  private static Instant instant(String text) {
    try {
      return Instant.parse(text);
    } catch (DateTimeParseException e) {
      return null;
    }
  }
}
