package dev.ferry.api.cli;

import picocli.CommandLine.Option;

/** {@code --json}: print the node's JSON answer instead of a human-readable summary. */
public final class JsonOption {
  @Option(names = "--json", description = "Print the result as JSON, as the API returns it.")
  boolean json;
}
