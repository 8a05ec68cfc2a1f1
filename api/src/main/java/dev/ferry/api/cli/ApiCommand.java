package dev.ferry.api.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.http.ApiJson;
import java.io.PrintStream;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

/**
 * A command that talks to a node over HTTP. Subclasses implement {@link #execute()}; a {@link
 * CliException} it throws is printed as {@code ferry: <message>} on stderr and becomes the exit
 * code.
 */
abstract class ApiCommand implements Callable<Integer> {
  @ParentCommand FerryCli cli;

  @Mixin ApiOptions apiOptions;

  /** Runs the command; returns its exit code. */
  protected abstract int execute() throws CliException;

  @Override
  public final Integer call() {
    try {
      return execute();
    } catch (CliException e) {
      out().flush();
      err().println("ferry: " + e.getMessage());
      return e.exitCode();
    } finally {
      out().flush();
      err().flush();
    }
  }

  ApiClient client() throws CliException {
    return apiOptions.client(cli.env());
  }

  PrintStream out() {
    return cli.out();
  }

  PrintStream err() {
    return cli.err();
  }

  /** Prints a JSON answer, pretty, with a final newline. */
  void printJson(JsonNode node) {
    try {
      out().println(ApiJson.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(node));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a parsed JSON tree always serializes", e);
    }
  }

  /** Converts a JSON answer to an API type. */
  static <T> T as(JsonNode node, Class<T> type) throws CliException {
    try {
      return ApiJson.mapper().treeToValue(node, type);
    } catch (JsonProcessingException | IllegalArgumentException e) {
      throw new CliException(
          ExitCodes.ERROR,
          "the node's answer is not a " + type.getSimpleName() + ": " + e.getMessage(),
          e);
    }
  }
}
