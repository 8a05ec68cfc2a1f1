package dev.ferry.api.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import dev.ferry.config.FerrySettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DaemonConfigTest {
  @TempDir Path tmp;

  @Test
  void flagsOverrideTheFileWhichOverridesTheDefaults() throws Exception {
    Path file = tmp.resolve("node.conf");
    Files.writeString(
        file,
        "ferry.node { port = 7500, name = from-file, engine = compiled }\n"
            + "ferry.http { port = 7600, token = secret }\n");
    Config config =
        new DaemonConfig()
            .flag("ferry.node.port", 7700)
            .flag("ferry.node.name", null)
            .flagList("ferry.node.seeds", List.of("10.0.0.1:7401", "10.0.0.2:7401"))
            .flag("ferry.node.data-dir", tmp.resolve("data"))
            .file(file)
            .build();
    FerrySettings s = FerrySettings.load(config);
    assertEquals(7700, s.node().port(), "flag wins");
    assertEquals("from-file", s.node().name(), "file value kept when no flag");
    assertEquals("compiled", s.node().engine());
    assertEquals(7600, s.http().port());
    assertEquals("secret", s.http().token());
    assertEquals("127.0.0.1", s.http().host(), "default from reference.conf");
    assertEquals(List.of("10.0.0.1:7401", "10.0.0.2:7401"), s.node().seeds());
    assertEquals(tmp.resolve("data"), s.node().dataDir());
  }

  @Test
  void withoutFlagsOrFileTheDefaultsApply() {
    FerrySettings s = FerrySettings.load(new DaemonConfig().build());
    assertEquals(7401, s.node().port());
    assertEquals(7400, s.http().port());
    assertEquals("", s.http().token());
  }

  @Test
  void aMissingFileIsAClearError() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new DaemonConfig().file(tmp.resolve("absent.conf")).build());
    assertTrue(e.getMessage().contains("absent.conf' does not exist"), e.getMessage());
  }
}
