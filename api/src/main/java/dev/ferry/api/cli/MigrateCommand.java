package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.http.MigrationStates;
import dev.ferry.node.service.MigrationInfo;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry migrate PID}: moves a running process to another node. Prints the migration id alone
 * on a line ({@code m=$(ferry migrate p-1)}); with {@code --wait}, waits for the end, prints what
 * each phase cost, and exits 0 if the migration committed, 1 if it was aborted or cancelled.
 */
@Command(
    name = "migrate",
    mixinStandardHelpOptions = true,
    description = {
      "Move a running process to another node, live; print the migration id.",
      "With --wait, wait for it to end and print its phase times (exit 1 unless committed)."
    })
final class MigrateCommand extends ApiCommand {
  /** How long one waiting request may wait; then the command asks for the record again. */
  static final Duration WAIT = Duration.ofSeconds(30);

  /** How often the record is asked for once a waiting request has run out. */
  static final Duration POLL = Duration.ofMillis(100);

  @Option(
      names = "--to",
      paramLabel = "NODE",
      description = "The destination node (see ferry nodes); default: the strategy chooses.")
  String to;

  @Option(
      names = "--strategy",
      paramLabel = "S",
      description = "The migration strategy (default: data-segment).")
  String strategy;

  @Option(
      names = "--wait",
      description = "Wait until it has committed, aborted or been cancelled; print its costs.")
  boolean await;

  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    ApiClient api = client();
    Map<String, Object> body = new LinkedHashMap<>();
    if (to != null) {
      body.put("to", to);
    }
    if (strategy != null) {
      body.put("strategy", strategy);
    }
    body.put("wait", await);
    ApiClient.MigrationStart started = api.migrate(pid, body, WAIT);
    JsonNode answer = started.migration();
    if (!await) {
      if (json.json) {
        printJson(answer);
      } else {
        out().println(answer.path("id").asText());
      }
      return ExitCodes.OK;
    }
    MigrationInfo m = as(answer, MigrationInfo.class);
    while (!MigrationStates.isEnded(m)) {
      sleep(POLL);
      answer = api.migration(m.id());
      m = as(answer, MigrationInfo.class);
    }
    if (json.json) {
      printJson(answer);
    } else {
      out().print(describe(m));
    }
    if (m.state().equals("committed")) {
      return ExitCodes.OK;
    }
    err()
        .println(
            "ferry: migration "
                + m.id()
                + " "
                + m.state()
                + ": "
                + (m.error() == null ? "(no reason given)" : m.error())
                + "; "
                + m.pid()
                + " runs on at "
                + m.fromNode());
    return ExitCodes.ERROR;
  }

  /** The summary printed by {@code --wait}: the outcome, then what each phase cost. */
  static String describe(MigrationInfo m) {
    return String.format(
        Locale.ROOT,
        "%s %s: %s %s -> %s (%s)%n"
            + "  freeze     %s%n"
            + "  capture    %s%n"
            + "  transfer   %s%n"
            + "  restore    %s%n"
            + "  downtime   %s%n"
            + "  total      %s%n"
            + "  moved      %s (image %s)%n",
        m.id(),
        m.state(),
        m.pid(),
        m.fromNode(),
        m.toNode(),
        m.strategy(),
        Formats.millis(m.freezeMicros()),
        Formats.millis(m.captureMicros()),
        Formats.millis(m.transferMicros()),
        Formats.millis(m.restoreMicros()),
        Formats.millis(m.totalFreezeMicros()),
        Formats.millis(m.totalMicros()),
        Formats.bytes(m.bytesMoved()),
        Formats.bytes(m.imageBytes()));
  }

  static void sleep(Duration d) throws CliException {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CliException(ExitCodes.ERROR, "interrupted", e);
    }
  }
}
