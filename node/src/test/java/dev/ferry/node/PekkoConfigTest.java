package dev.ferry.node;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.ferry.config.FerrySettings;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which Pekko settings a node runs with: the operator's, then Ferry's, then Pekko's defaults. */
class PekkoConfigTest {
  @TempDir Path dir;

  private FerrySettings settings(String operatorConfig) {
    Config operator =
        ConfigFactory.parseString(
            "ferry.node.data-dir = \"" + dir + "\"\nferry.node.port = 7455\n" + operatorConfig,
            com.typesafe.config.ConfigParseOptions.defaults().setOriginDescription("ferry.conf"));
    return FerrySettings.load(operator.withFallback(ConfigFactory.load()));
  }

  @Test
  void ferrysOwnPekkoDefaultsApplyWhenTheOperatorSetsNothing() {
    Config c = FerryNode.pekkoConfig(settings(""));

    assertEquals(Duration.ofMillis(50), c.getDuration("pekko.cluster.sharding.rebalance-interval"));
    assertEquals(
        Duration.ofMillis(50),
        c.getDuration("pekko.cluster.distributed-data.notify-subscribers-interval"));
    assertEquals("off", c.getString("pekko.jvm-shutdown-hooks"));
  }

  @Test
  void anOperatorsPekkoSettingWinsOverFerrysDefault() {
    Config c =
        FerryNode.pekkoConfig(
            settings(
                "pekko.cluster.sharding.rebalance-interval = 1s\n"
                    + "pekko.cluster.split-brain-resolver.stable-after = 20s"));

    assertEquals(Duration.ofSeconds(1), c.getDuration("pekko.cluster.sharding.rebalance-interval"));
    assertEquals(
        Duration.ofSeconds(20), c.getDuration("pekko.cluster.split-brain-resolver.stable-after"));
    assertEquals("off", c.getString("pekko.jvm-shutdown-hooks"), "the rest stays Ferry's");
  }

  @Test
  void addressAndPortAlwaysComeFromFerryNode() {
    Config c = FerryNode.pekkoConfig(settings("pekko.remote.artery.canonical.port = 9999"));

    assertEquals(7455, c.getInt("pekko.remote.artery.canonical.port"));
  }
}
