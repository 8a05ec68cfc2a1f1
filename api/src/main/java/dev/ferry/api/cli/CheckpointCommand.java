package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.CheckpointResult;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry checkpoint PID}: freezes, captures and durably writes a process's image. */
@Command(
    name = "checkpoint",
    mixinStandardHelpOptions = true,
    description = {
      "Freeze a process at its next migration point and write its image durably.",
      "It stops (state checkpointed) unless --leave-running; prints the time of each phase."
    })
final class CheckpointCommand extends ApiCommand {
  @Option(names = "--leave-running", description = "Let the process continue after the checkpoint.")
  boolean leaveRunning;

  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    JsonNode answer = client().checkpoint(pid, leaveRunning);
    if (json.json) {
      printJson(answer);
    } else {
      out().print(describe(as(answer, CheckpointResult.class)));
    }
    return ExitCodes.OK;
  }

  static String describe(CheckpointResult r) {
    return String.format(
        Locale.ROOT,
        "%s checkpointed (%s)%n  freeze   %s%n  capture  %s%n  write    %s%n  image    %s (%d"
            + " pages)%n",
        r.pid(),
        r.leftRunning() ? "left running" : "stopped",
        Formats.millis(r.freezeMicros()),
        Formats.millis(r.captureMicros()),
        Formats.millis(r.writeMicros()),
        Formats.bytes(r.imageBytes()),
        r.memoryPages());
  }
}
