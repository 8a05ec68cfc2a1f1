package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The harness starts a three-node cluster (nodes 2 and 3 seeded with node 1), mixing engines and,
 * when Java 25 is installed, JVMs; each node serves its API. Cluster membership and migration are
 * checked by the migration tests. A node killed with SIGKILL comes back on its data directory with
 * the same name and ports.
 */
class ClusterStartTest {
  @RegisterExtension static final NodeHarness nodes = new NodeHarness();

  @Test
  @Timeout(150)
  void threeNodesStartAsOneClusterAndEachAnswersHealth() {
    JavaRuntime java17 = JavaRuntime.current();
    JavaRuntime third = JavaRuntime.jdk25().orElse(java17);
    List<DaemonProcess> cluster =
        nodes.startCluster(
            3, List.of("interpreter", "compiled", "interpreter"), List.of(java17, java17, third));

    assertEquals(3, cluster.size());
    for (DaemonProcess n : cluster) {
      JsonNode health = n.api().health();
      assertEquals(n.name(), health.path("node").asText(), n + ": " + health);
      assertEquals("up", health.path("status").asText(), n + ": " + health);
    }
    String seed = "127.0.0.1:" + cluster.get(0).spec().clusterPort();
    assertEquals(List.of(), cluster.get(0).spec().seeds());
    assertEquals(List.of(seed), cluster.get(1).spec().seeds());
    assertEquals(List.of(seed), cluster.get(2).spec().seeds());

    // A node that crashes (SIGKILL) starts again on its data directory and rejoins.
    DaemonProcess n3 = cluster.get(2);
    assertEquals(137, n3.kill(), "exit code of a SIGKILLed node");
    n3.start();
    assertEquals("up", n3.api().health().path("status").asText());
  }
}
