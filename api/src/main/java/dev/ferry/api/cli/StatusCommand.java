package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.ProcessInfo;
import java.time.ZoneId;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code ferry status PID}: one process, as a readable block. */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description =
        "Show one process: state, engine, node, exit code, output sizes; for a paged process, its"
            + " resident, dirty and replicated page counts and where the replicas are.")
final class StatusCommand extends ApiCommand {
  @Mixin JsonOption json;

  @Parameters(
      index = "0",
      paramLabel = "PID",
      description = "The process id (from ferry run or ferry ps).")
  String pid;

  @Override
  protected int execute() throws CliException {
    JsonNode answer = client().status(pid);
    if (json.json) {
      printJson(answer);
    } else {
      out().print(describe(as(answer, ProcessInfo.class), ZoneId.systemDefault()));
    }
    return ExitCodes.OK;
  }

  /** The human-readable block of {@code ferry status}. */
  static String describe(ProcessInfo p, ZoneId zone) {
    StringBuilder b = new StringBuilder();
    line(b, "ID", p.id());
    line(b, "State", lower(p.state()));
    line(b, "Engine", lower(p.engine()));
    line(b, "Node", p.node() == null ? "-" : p.node());
    line(b, "Module", p.moduleHash() == null ? "-" : p.moduleHash());
    line(b, "Args", p.args() == null || p.args().isEmpty() ? "-" : String.join(" ", p.args()));
    line(b, "Exit code", p.exitCode() == null ? "-" : p.exitCode().toString());
    line(b, "Stdout", Formats.bytes(p.stdoutBytes()));
    line(b, "Stderr", Formats.bytes(p.stderrBytes()));
    if (p.outputHeld() != null) {
      line(b, "Output held", p.outputHeld());
    }
    line(b, "Started", Formats.time(p.startedAt(), zone));
    line(b, "Ended", Formats.time(p.endedAt(), zone));
    CheckpointResult c = p.lastCheckpoint();
    line(
        b,
        "Checkpoint",
        c == null
            ? "-"
            : Formats.bytes(c.imageBytes())
                + " image, freeze "
                + Formats.millis(c.freezeMicros())
                + (c.leftRunning() ? " (left running)" : ""));
    if (p.paging() != null) {
      var g = p.paging();
      line(
          b,
          "Pages",
          String.format(
              Locale.ROOT,
              "%d of %s: %d resident, %d dirty, %d in the paging file",
              g.pages(),
              Formats.bytes(g.pageSize()),
              g.resident(),
              g.dirty(),
              g.stored()));
      StringBuilder r = new StringBuilder();
      for (var rep : g.replicas()) {
        if (r.length() > 0) {
          r.append(", ");
        }
        r.append(rep.node().isEmpty() ? "(none)" : rep.node())
            .append(" ")
            .append(rep.state())
            .append(rep.node().isEmpty() ? "" : " " + rep.pages() + " pages");
      }
      line(b, "Replicas", r.length() == 0 ? "none (replication-factor = 1)" : r.toString());
    }
    if (p.error() != null) {
      line(b, "Error", p.error());
    }
    return b.toString();
  }

  private static void line(StringBuilder b, String key, String value) {
    b.append(String.format(Locale.ROOT, "%-11s %s%n", key + ":", value));
  }

  static String lower(Enum<?> e) {
    return e == null ? "-" : e.name().toLowerCase(Locale.ROOT);
  }
}
