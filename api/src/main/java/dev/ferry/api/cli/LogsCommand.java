package dev.ferry.api.cli;

import dev.ferry.node.service.LogStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry logs PID}: writes what the program wrote, byte for byte, with nothing added (no
 * newline), so it can be piped or compared with {@code cmp}.
 */
@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = "Write a process's stdout (or stderr) exactly as the program wrote it.")
final class LogsCommand extends ApiCommand {
  /** Bytes asked per request when not following. */
  static final int READ_SIZE = 1 << 20;

  @Option(names = "--stderr", description = "Show stderr instead of stdout.")
  boolean stderr;

  @Option(
      names = {"-f", "--follow"},
      description = "Keep writing new output as it comes, until the process ends.")
  boolean follow;

  @Parameters(index = "0", paramLabel = "PID", description = "The process id.")
  String pid;

  @Override
  protected int execute() throws CliException {
    LogStream stream = stderr ? LogStream.STDERR : LogStream.STDOUT;
    ApiClient api = client();
    if (follow) {
      api.followLog(pid, stream, 0, out());
      return ExitCodes.OK;
    }
    long offset = 0;
    while (true) {
      ApiClient.LogRead read = api.readLog(pid, stream, offset, READ_SIZE);
      out().write(read.data(), 0, read.data().length);
      if (read.data().length == 0 || read.nextOffset() <= offset || out().checkError()) {
        break;
      }
      offset = read.nextOffset();
    }
    out().flush();
    return ExitCodes.OK;
  }
}
