package dev.ferry.api.cli;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code ferry}: run WebAssembly programs on a Ferry cluster, watch them, checkpoint and restore
 * them ({@code run, ps, status, logs, wait, kill, cp, checkpoint, restore}), move them between
 * nodes and watch the cluster ({@code nodes, migrate, migrations, cancel, events}), run a node
 * ({@code daemon}), or see it all at work on a local three-node cluster ({@code demo}).
 *
 * <p>The streams and the environment are injected so tests run commands in-process: {@code new
 * CommandLine(new FerryCli(out, err, env)).execute(args)} returns the exit code; only {@link #main}
 * exits the JVM.
 */
@Command(
    name = "ferry",
    mixinStandardHelpOptions = true,
    versionProvider = FerryCli.Version.class,
    description =
        "Run WebAssembly/WASI programs on a Ferry cluster; checkpoint, restore and migrate them.",
    synopsisSubcommandLabel = "COMMAND",
    subcommands = {
      RunCommand.class,
      PsCommand.class,
      StatusCommand.class,
      LogsCommand.class,
      WaitCommand.class,
      KillCommand.class,
      CpCommand.class,
      CheckpointCommand.class,
      RestoreCommand.class,
      NodesCommand.class,
      MigrateCommand.class,
      MigrationsCommand.class,
      CancelCommand.class,
      CommitCommand.class,
      EventsCommand.class,
      DaemonCommand.class,
      DemoCommand.class,
    },
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:done",
      "1:the node failed the request (5xx), or another error",
      "2:usage error, or invalid configuration",
      "3:not found (404)",
      "4:conflict: the process or migration is not in a state that allows it (409)",
      "5:cannot reach the node",
      "6:unauthorized: missing or wrong token (401)",
      "7:bad request or body too large (400, 413)",
    },
    footer = {
      "",
      "ferry wait exits with the program's own exit code; ferry migrate --wait with 1 when the",
      "migration did not commit.",
      "See docs/CLI.md."
    })
public final class FerryCli implements Callable<Integer> {
  @Spec CommandSpec spec;

  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  /** Uses the process's stdout, stderr and environment. */
  public FerryCli() {
    this(System.out, System.err, System.getenv());
  }

  /**
   * @param out where results go; binary output ({@code logs}, {@code cp PID:F -}) is written byte
   *     for byte
   * @param err where messages go
   * @param env the environment ({@code FERRY_API}, {@code FERRY_TOKEN})
   */
  public FerryCli(PrintStream out, PrintStream err, Map<String, String> env) {
    this.out = out;
    this.err = err;
    this.env = Map.copyOf(env);
  }

  /** A command line over {@code cli}, with picocli's own help and usage output on its streams. */
  public static CommandLine commandLine(FerryCli cli) {
    CommandLine cmd = new CommandLine(cli);
    // -V/--version on every subcommand (they have it through the standard help options) prints
    // the same version as on ferry itself, not nothing.
    for (CommandLine sub : cmd.getSubcommands().values()) {
      sub.getCommandSpec().versionProvider(new Version());
    }
    cmd.setOut(new PrintWriter(cli.out, true, StandardCharsets.UTF_8));
    cmd.setErr(new PrintWriter(cli.err, true, StandardCharsets.UTF_8));
    return cmd;
  }

  public static void main(String[] args) {
    System.exit(commandLine(new FerryCli()).execute(args));
  }

  /** {@code ferry} alone: the usage, and a usage error. */
  @Override
  public Integer call() {
    spec.commandLine().usage(err);
    return ExitCodes.USAGE;
  }

  PrintStream out() {
    return out;
  }

  PrintStream err() {
    return err;
  }

  Map<String, String> env() {
    return env;
  }

  /** The version from the jar's manifest; "dev" when run from classes. */
  static final class Version implements IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = FerryCli.class.getPackage().getImplementationVersion();
      return new String[] {"ferry " + (v == null ? "dev" : v)};
    }
  }
}
