package dev.ferry.config;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Keeps docs/CONFIGURATION.md and reference.conf in step. */
class ConfigurationDocsTest {
  // Maven runs tests with the module directory as working directory.
  private static final Path DOCS = Path.of("..", "docs", "CONFIGURATION.md");
  private static final Path REFERENCE = Path.of("src", "main", "resources", "reference.conf");

  private static final Pattern TABLE_KEY =
      Pattern.compile("^\\|\\s*`(ferry\\.[^`]+)`", Pattern.MULTILINE);

  @Test
  void documentsEveryKeyOfReferenceConf() throws IOException {
    String docs = Files.readString(DOCS, StandardCharsets.UTF_8);
    List<String> missing = new ArrayList<>();
    for (String key : allPaths(reference())) {
      if (!docs.contains("`" + key + "`")) {
        missing.add(key);
      }
    }

    assertTrue(missing.isEmpty(), () -> DOCS + " does not mention " + missing);
  }

  @Test
  void documentsNoKeyThatReferenceConfLacks() throws IOException {
    String docs = Files.readString(DOCS, StandardCharsets.UTF_8);
    Config reference = reference();
    List<String> stale = new ArrayList<>();
    Matcher m = TABLE_KEY.matcher(docs);
    while (m.find()) {
      if (!reference.hasPathOrNull(m.group(1))) {
        stale.add(m.group(1));
      }
    }

    assertTrue(stale.isEmpty(), () -> DOCS + " documents keys reference.conf lacks: " + stale);
  }

  private static Config reference() {
    return ConfigFactory.parseFile(REFERENCE.toFile());
  }

  /** Every path in the file, sections included (an empty section has no leaf to find it by). */
  private static TreeSet<String> allPaths(Config config) {
    TreeSet<String> paths = new TreeSet<>();
    collect(config.root(), List.of(), paths);
    return paths;
  }

  private static void collect(ConfigObject object, List<String> prefix, TreeSet<String> out) {
    for (Map.Entry<String, ConfigValue> entry : object.entrySet()) {
      List<String> path = new ArrayList<>(prefix);
      path.add(entry.getKey());
      String joined = ConfigUtil.joinPath(path);
      if (entry.getValue() instanceof ConfigObject child) {
        if (path.size() > 2) {
          out.add(joined); // ferry.strategies.<name>; "ferry" and "ferry.node" are headings
        }
        collect(child, path, out);
      } else {
        out.add(joined);
      }
    }
  }
}
