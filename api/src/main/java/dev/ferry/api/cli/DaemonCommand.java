package dev.ferry.api.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import dev.ferry.api.daemon.DaemonConfig;
import dev.ferry.api.daemon.DaemonStartException;
import dev.ferry.api.daemon.FerryDaemon;
import dev.ferry.config.FerrySettings;
import dev.ferry.config.InvalidSettingsException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferry daemon}: runs a Ferry node in the foreground until SIGTERM or SIGINT, then unbinds
 * HTTP, closes the node (which checkpoints its processes durably) and exits 0.
 */
@Command(
    name = "daemon",
    mixinStandardHelpOptions = true,
    description = {
      "Run a Ferry node in the foreground: cluster member, process host and HTTP API.",
      "Flags override the --config file, which overrides application.conf and the defaults.",
      "SIGTERM or Ctrl-C checkpoints running processes, then exits 0."
    })
final class DaemonCommand implements Callable<Integer> {
  @ParentCommand FerryCli cli;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description = "Node name in the cluster (ferry.node.name; default host:port).")
  String name;

  @Option(
      names = "--host",
      paramLabel = "HOST",
      description = "Address of the cluster transport (ferry.node.host).")
  String host;

  @Option(
      names = "--port",
      paramLabel = "PORT",
      description = "Port of the cluster transport (ferry.node.port).")
  Integer port;

  @Option(
      names = "--http-port",
      paramLabel = "PORT",
      description = "Port of the HTTP API (ferry.http.port).")
  Integer httpPort;

  @Option(
      names = "--data-dir",
      paramLabel = "DIR",
      description = "Where the store, sandboxes and logs live (ferry.node.data-dir).")
  Path dataDir;

  @Option(
      names = "--seed",
      paramLabel = "HOST:PORT",
      description = "A node to join (ferry.node.seeds); repeatable. None: a one-node cluster.")
  List<String> seeds = new ArrayList<>();

  @Option(
      names = "--engine",
      paramLabel = "ENGINE",
      description = "Default engine: interpreter or compiled (ferry.node.engine).")
  String engine;

  @Option(
      names = "--config",
      paramLabel = "FILE",
      description = "A HOCON file of settings (see docs/CONFIGURATION.md).")
  Path configFile;

  /** The configuration these flags describe, before validation. */
  Config config() {
    return new DaemonConfig()
        .flag("ferry.node.name", name)
        .flag("ferry.node.host", host)
        .flag("ferry.node.port", port)
        .flag("ferry.http.port", httpPort)
        .flag("ferry.node.data-dir", dataDir)
        .flagList("ferry.node.seeds", seeds)
        .flag("ferry.node.engine", engine)
        .file(configFile)
        .build();
  }

  @Override
  public Integer call() {
    FerrySettings settings;
    try {
      settings = FerrySettings.load(config());
      dev.ferry.node.FerryNode.checkSettings(settings); // the strategy sections too
    } catch (InvalidSettingsException | ConfigException | IllegalArgumentException e) {
      cli.err().println("ferry: invalid configuration: " + e.getMessage());
      return ExitCodes.USAGE;
    }
    FerryDaemon daemon;
    try {
      daemon = FerryDaemon.start(settings);
    } catch (DaemonStartException e) {
      cli.err().println("ferry: " + e.getMessage());
      return ExitCodes.ERROR;
    }
    // SIGTERM / SIGINT start the JVM's shutdown: the hook stops the daemon, then halts with 0,
    // since a JVM ended by a signal would otherwise report 128 + signal.
    Thread hook =
        new Thread(
            () -> {
              int code = ExitCodes.OK;
              try {
                if (!daemon.stop()) {
                  return; // stopped by the main thread, which exits with its own code
                }
              } catch (RuntimeException | Error e) {
                cli.err().println("ferry: the node did not stop cleanly: " + e);
                code = ExitCodes.ERROR;
              }
              System.out.flush();
              System.err.flush();
              Runtime.getRuntime().halt(code);
            },
            "ferry-daemon-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      daemon.awaitStopped();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      daemon.stop();
    }
    String removed = daemon.removedReason();
    if (removed != null) {
      cli.err().println("ferry: " + removed);
      return ExitCodes.ERROR;
    }
    return ExitCodes.OK;
  }
}
