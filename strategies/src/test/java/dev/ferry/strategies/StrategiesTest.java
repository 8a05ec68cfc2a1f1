package dev.ferry.strategies;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.ferry.config.FerrySettings;
import dev.ferry.config.InvalidSettingsException;
import java.util.List;
import org.junit.jupiter.api.Test;

class StrategiesTest {
  private static FerrySettings settings(String hocon) {
    return FerrySettings.load(ConfigFactory.parseString(hocon).withFallback(ConfigFactory.load()));
  }

  private static InvalidSettingsException rejects(String hocon) {
    return assertThrows(InvalidSettingsException.class, () -> Strategies.load(settings(hocon)));
  }

  @Test
  void offersDataSegmentWithItsDefaults() {
    Strategies s = Strategies.load(settings(""));
    assertTrue(s.get("data-segment").isPresent());
    DataSegmentSettings d = DataSegmentSettings.from(settings("").strategy("data-segment"));
    assertEquals("copy", d.files());
    assertEquals(1024 * 1024, d.chunkBytes());
    assertEquals(8, d.window());
  }

  @Test
  void rejectsAStrategyFerryDoesNotHave() {
    InvalidSettingsException e = rejects("ferry.strategies.teleport { speed = 11 }");
    assertTrue(e.getMessage().startsWith("ferry.strategies.teleport: "), e.getMessage());
  }

  @Test
  void rejectsBadDataSegmentSettingsNamingTheKey() {
    for (String[] c :
        List.of(
            new String[] {"files = nfs", "ferry.strategies.data-segment.files: "},
            new String[] {"files = shared", "ferry.strategies.data-segment.shared-dir: "},
            new String[] {"chunk-bytes = 8MiB", "ferry.strategies.data-segment.chunk-bytes: "},
            new String[] {"chunk-bytes = lots", "ferry.strategies.data-segment.chunk-bytes: "},
            new String[] {"window = 0", "ferry.strategies.data-segment.window: "},
            new String[] {
              "transfer-timeout = soon", "ferry.strategies.data-segment.transfer-timeout: "
            },
            new String[] {"chunk-byte = 1MiB", "ferry.strategies.data-segment.chunk-byte: "})) {
      InvalidSettingsException e = rejects("ferry.strategies.data-segment { " + c[0] + " }");
      assertTrue(e.getMessage().startsWith(c[1]), c[0] + " -> " + e.getMessage());
    }
  }

  @Test
  void aFractionIsRefusedNotTruncatedAndAQuotedWholeNumberAccepted() {
    InvalidSettingsException e = rejects("ferry.strategies.data-segment { window = 8.9 }");
    assertEquals(
        "ferry.strategies.data-segment.window: must be a whole number, got 8.9", e.getMessage());
    e = rejects("ferry.strategies.gfvm { replication-factor = 1.5 }");
    assertTrue(
        e.getMessage().startsWith("ferry.strategies.gfvm.replication-factor: "), e.getMessage());
    e = rejects("ferry.strategies.data-segment { window = 4294967304 }");
    assertTrue(e.getMessage().contains("got 4294967304"), e.getMessage()); // not wrapped to 8
    assertEquals(
        12,
        DataSegmentSettings.from(
                settings("ferry.strategies.data-segment { window = \"12\" }")
                    .strategy("data-segment"))
            .window());
  }

  @Test
  void choosesTheLeastLoadedCandidate() {
    MigrationStrategy s = Strategies.load(settings("")).get("data-segment").orElseThrow();
    assertEquals(
        "b",
        s.chooseDestination(
                List.of(
                    new MigrationStrategy.NodeCandidate("a", 0.9, 3),
                    new MigrationStrategy.NodeCandidate("b", 0.1, 7),
                    new MigrationStrategy.NodeCandidate("c", 0.5, 0)))
            .orElseThrow());
    assertTrue(s.chooseDestination(List.of()).isEmpty());
  }

  @Test
  void offersGfvmWithItsDefaults() {
    Strategies s = Strategies.load(settings(""));
    GfvmStrategy g = (GfvmStrategy) s.get("gfvm").orElseThrow();
    assertEquals(2, g.settings().replicationFactor());
    assertEquals(4096, g.settings().pageSize());
    assertEquals(false, g.settings().allowFullCopy());
  }

  @Test
  void rejectsBadGfvmSettingsNamingTheKey() {
    for (String[] c :
        List.of(
            new String[] {"replication-factor = 0", "ferry.strategies.gfvm.replication-factor: "},
            new String[] {"page-size = 5000", "ferry.strategies.gfvm.page-size: "},
            new String[] {"page-size = 128KiB", "ferry.strategies.gfvm.page-size: "},
            new String[] {"flush-interval = 0s", "ferry.strategies.gfvm.flush-interval: "},
            new String[] {"quiet-time = -1s", "ferry.strategies.gfvm.quiet-time: "},
            new String[] {"allow-full-copy = maybe", "ferry.strategies.gfvm.allow-full-copy: "},
            new String[] {"replicas = 3", "ferry.strategies.gfvm.replicas: "})) {
      InvalidSettingsException e = rejects("ferry.strategies.gfvm { " + c[0] + " }");
      assertTrue(e.getMessage().startsWith(c[1]), c[0] + " -> " + e.getMessage());
    }
  }

  @Test
  void gfvmChoosesTheLeastLoadedReplicaHolderAndRefusesOthers() {
    GfvmStrategy g = (GfvmStrategy) Strategies.load(settings("")).get("gfvm").orElseThrow();
    List<MigrationStrategy.NodeCandidate> c =
        List.of(
            new MigrationStrategy.NodeCandidate("a", 0.1, 0, false),
            new MigrationStrategy.NodeCandidate("b", 0.9, 3, true),
            new MigrationStrategy.NodeCandidate("c", 0.5, 1, true));
    assertEquals("c", g.chooseDestination(c).orElseThrow());
    assertTrue(
        g.chooseDestination(List.of(new MigrationStrategy.NodeCandidate("a", 0, 0, false)))
            .isEmpty());
    PagingView paging = new PagingView(4096, List.of("b", "c"), 10, 1);
    assertTrue(g.refuse("p-1", "b", java.util.Optional.of(paging)).isEmpty());
    String no = g.refuse("p-1", "a", java.util.Optional.of(paging)).orElseThrow();
    assertTrue(no.contains("holds no replica") && no.contains("b, c"), no);
    String flat = g.refuse("p-1", "b", java.util.Optional.empty()).orElseThrow();
    assertTrue(flat.contains("--paged"), flat);

    GfvmStrategy full =
        (GfvmStrategy)
            Strategies.load(settings("ferry.strategies.gfvm.allow-full-copy = true"))
                .get("gfvm")
                .orElseThrow();
    assertTrue(full.refuse("p-1", "a", java.util.Optional.of(paging)).isEmpty());
    assertEquals(
        "a",
        full.chooseDestination(List.of(new MigrationStrategy.NodeCandidate("a", 0, 0, false)))
            .orElseThrow());
  }

  @Test
  void offersTheBaselinesWithTheirDefaultsAndRejectsBadSettingsNamingTheKey() {
    Strategies s = Strategies.load(settings(""));
    assertEquals(
        List.of("data-segment", "flushing", "gfvm", "post-copy", "pre-copy"),
        List.copyOf(s.names()));
    PreCopyStrategy pre = (PreCopyStrategy) s.get("pre-copy").orElseThrow();
    assertEquals(5, pre.maxRounds());
    assertEquals(256 * 1024, pre.stopBytes());
    assertEquals(0, pre.bandwidth());
    FlushingStrategy fl = (FlushingStrategy) s.get("flushing").orElseThrow();
    assertEquals("", fl.fileServer());
    String no =
        fl.refuse("p-1", "n2", java.util.Optional.of(new PagingView(4096, List.of(), 1, 0)))
            .orElseThrow();
    assertTrue(no.contains("ferry.strategies.flushing.file-server"), no);
    for (String[] c :
        List.of(
            new String[] {"pre-copy { max-rounds = 0 }", "ferry.strategies.pre-copy.max-rounds: "},
            new String[] {"pre-copy { bandwidth = fast }", "ferry.strategies.pre-copy.bandwidth: "},
            new String[] {"pre-copy { rounds = 3 }", "ferry.strategies.pre-copy.rounds: "},
            new String[] {"post-copy { window = 0 }", "ferry.strategies.post-copy.window: "},
            new String[] {"flushing { server = n3 }", "ferry.strategies.flushing.server: "})) {
      InvalidSettingsException e = rejects("ferry.strategies." + c[0]);
      assertTrue(e.getMessage().startsWith(c[1]), c[0] + " -> " + e.getMessage());
    }
    for (String name : List.of("pre-copy", "post-copy", "flushing")) {
      String flat =
          s.get(name).orElseThrow().refuse("p-1", "n2", java.util.Optional.empty()).orElse("");
      assertTrue(flat.contains("--paged") || name.equals("flushing"), name + ": " + flat);
    }
  }
}
