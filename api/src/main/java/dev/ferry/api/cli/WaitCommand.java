package dev.ferry.api.cli;

import dev.ferry.node.service.ProcessInfo;
import java.time.Duration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry wait PID}: blocks until the process is final and exits as it did: its exit code
 * (codes outside 0-255 become 1), 137 if it was killed, 1 if it failed.
 */
@Command(
    name = "wait",
    mixinStandardHelpOptions = true,
    description = {
      "Wait for a process to end; exit with its exit code.",
      "A killed process gives 137, a failed one 1 (with the error on stderr)."
    })
final class WaitCommand extends ApiCommand {
  /** How long one /wait request may wait; the command asks again until the process is final. */
  static final Duration POLL = Duration.ofSeconds(30);

  @Mixin JsonOption json;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    ApiClient api = client();
    ApiClient.WaitResult r;
    do {
      r = api.await(pid, POLL);
    } while (!r.done());
    if (json.json) {
      printJson(r.process());
    }
    ProcessInfo p = as(r.process(), ProcessInfo.class);
    switch (p.state()) {
      case EXITED:
        int code = p.exitCode() == null ? 0 : p.exitCode();
        return code >= 0 && code <= 255 ? code : ExitCodes.ERROR;
      case KILLED:
        err().println("ferry: process " + p.id() + " was killed");
        return ExitCodes.KILLED;
      default:
        err()
            .println(
                "ferry: process "
                    + p.id()
                    + " failed: "
                    + (p.error() == null ? "(no reason given)" : p.error()));
        return ExitCodes.ERROR;
    }
  }
}
