package dev.ferry.node;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.config.FerrySettings;
import dev.ferry.config.InvalidSettingsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node with a bad strategy setting is refused before it creates anything or joins a cluster: not
 * after joining (which can wait up to a minute for the seeds), only to leave the cluster again.
 */
class NodeSettingsCheckTest {
  @TempDir Path dir;

  @Test
  @Timeout(20)
  void aBadStrategySettingIsRefusedBeforeTheNodeJoinsOrCreatesItsData() {
    Path data = dir.resolve("data");
    // The seed does not exist: a node that tried to join would wait for it.
    FerrySettings s =
        TestNodes.settings(
            data,
            Map.of(
                "ferry.strategies.gfvm.replication-factor",
                0,
                "ferry.node.seeds",
                List.of("127.0.0.1:" + TestNodes.freePort())));
    InvalidSettingsException e =
        assertThrows(InvalidSettingsException.class, () -> FerryNode.start(s));
    assertTrue(
        e.getMessage().startsWith("ferry.strategies.gfvm.replication-factor: "), e.getMessage());
    assertFalse(Files.exists(data), "the data directory was created");
  }
}
