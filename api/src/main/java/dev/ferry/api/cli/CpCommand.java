package dev.ferry.api.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code ferry cp PID:GUESTPATH LOCALPATH}: copies a file out of a process's sandbox. LOCALPATH may
 * be a directory (the file keeps its name) or {@code -} for stdout.
 */
@Command(
    name = "cp",
    mixinStandardHelpOptions = true,
    description =
        "Copy a file out of a process's sandbox: ferry cp p-3:/out.txt ./out.txt ('-' is stdout).")
final class CpCommand extends ApiCommand {
  @Parameters(
      index = "0",
      paramLabel = "PID:GUESTPATH",
      description = "The process and the absolute guest path.")
  String source;

  @Parameters(
      index = "1",
      paramLabel = "LOCALPATH",
      description = "Where to write it: a file, a directory, or '-'.")
  String target;

  @Override
  protected int execute() throws CliException {
    int colon = source.indexOf(':');
    if (colon <= 0 || colon == source.length() - 1 || source.charAt(colon + 1) != '/') {
      throw new CliException(
          ExitCodes.USAGE,
          "expected PID:GUESTPATH with an absolute guest path (e.g. p-3:/out.txt), got '"
              + source
              + "'");
    }
    String pid = source.substring(0, colon);
    String guest = source.substring(colon + 1);
    byte[] bytes = client().readFile(pid, guest);
    if (target.equals("-")) {
      out().write(bytes, 0, bytes.length);
      out().flush();
      return ExitCodes.OK;
    }
    Path dest = Path.of(target);
    if (Files.isDirectory(dest)) {
      String name = guest.substring(guest.lastIndexOf('/') + 1);
      dest = dest.resolve(name.isEmpty() ? "file" : name);
    }
    try {
      Files.write(dest, bytes);
    } catch (IOException e) {
      throw new CliException(ExitCodes.ERROR, "cannot write '" + dest + "': " + e.getMessage(), e);
    }
    return ExitCodes.OK;
  }
}
