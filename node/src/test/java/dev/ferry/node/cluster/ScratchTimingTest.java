package dev.ferry.node.cluster;

import static dev.ferry.node.cluster.InJvmClusterMigrationTest.get;

import dev.ferry.node.TestNodes;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.RunRequest;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ScratchTimingTest extends InJvmClusterMigrationTest {
  @Test
  void timing() throws Exception {
    ClusterService n1 = nodes.get(0).service();
    String hash = get(n1.uploadModule(TestNodes.guest("clock"), false)).hash();
    ProcessInfo p =
        get(
            n1.run(
                new RunRequest(
                    hash,
                    dev.ferry.node.service.Engine.COMPILED,
                    List.of("100000000", "2000"),
                    Map.of(),
                    Map.of())));
    String[] route = {"n2", "n1"};
    for (int i = 0; i < 40; i++) {
      MigrationInfo m = get(n1.migrate(p.id(), route[i % 2], null));
      MigrationInfo done = awaitMigration(n1, m.id());
      System.out.printf(
          "T %s freeze=%d capture=%d transfer=%d restore=%d totalFreeze=%d total=%d bytes=%d%n",
          done.state(),
          done.freezeMicros(),
          done.captureMicros(),
          done.transferMicros(),
          done.restoreMicros(),
          done.totalFreezeMicros(),
          done.totalMicros(),
          done.bytesMoved());
    }
    get(n1.kill(p.id()));
  }
}
