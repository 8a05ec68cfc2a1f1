package dev.ferry.api.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.api.RepoFiles;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** docs/CLI.md must name every command, every option and every exit code the CLI has. */
class CliDocsTest {
  private static String doc;
  private static CommandLine cli;

  @BeforeAll
  static void load() throws Exception {
    doc = Files.readString(RepoFiles.docs("CLI.md"));
    cli = new CommandLine(new FerryCli());
  }

  @Test
  void everyCommandHasASection() {
    List<String> missing = new ArrayList<>();
    for (String name : cli.getSubcommands().keySet()) {
      if (!doc.contains("### `ferry " + name)) {
        missing.add(name);
      }
    }
    assertTrue(
        missing.isEmpty(),
        "commands without a '### `ferry NAME' section in docs/CLI.md: " + missing);
  }

  @Test
  void everyOptionIsDocumented() {
    List<String> missing = new ArrayList<>();
    List<CommandLine> commands = new ArrayList<>();
    commands.add(cli);
    commands.addAll(cli.getSubcommands().values());
    for (CommandLine c : commands) {
      for (OptionSpec o : c.getCommandSpec().options()) {
        for (String name : o.names()) {
          if (!doc.contains("`" + name + "`")
              && !doc.contains("`" + name + " ")
              && !doc.contains(name + "]")) {
            missing.add(c.getCommandName() + " " + name);
          }
        }
      }
    }
    assertTrue(missing.isEmpty(), "options not in docs/CLI.md: " + missing);
  }

  @Test
  void everyExitCodeIsInTheTable() throws Exception {
    List<String> missing = new ArrayList<>();
    for (Field f : ExitCodes.class.getFields()) {
      if (Modifier.isStatic(f.getModifiers()) && f.getType() == int.class) {
        int code = f.getInt(null);
        if (!doc.contains("| " + code + " |")
            && !doc.contains(" " + code + " (")
            && !doc.contains("gives " + code)) {
          missing.add(f.getName() + "=" + code);
        }
      }
    }
    assertTrue(missing.isEmpty(), "exit codes not documented in docs/CLI.md: " + missing);
  }

  @Test
  void theEnvironmentVariablesAreDocumented() {
    for (String v : List.of(ApiOptions.API_ENV, ApiOptions.TOKEN_ENV, "FERRY_JAVA_OPTS")) {
      assertTrue(doc.contains("`" + v + "`"), v + " not in docs/CLI.md");
    }
  }
}
