package dev.ferry.api.http;

import static dev.ferry.api.http.FerryRoutesTest.assertError;
import static dev.ferry.api.http.FerryRoutesTest.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.FakeClusterService;
import dev.ferry.api.TestServer;
import dev.ferry.node.service.ProcessState;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.ProcessEvent;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The cluster routes (nodes, migrations, events) against the fake service, over real HTTP. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ClusterRoutesTest {
  /** Short, so that a client that went away is noticed quickly (at the next heartbeat). */
  private static final Duration HEARTBEAT = Duration.ofMillis(200);

  private static TestServer server;
  private static FakeClusterService service;

  @BeforeAll
  static void start() throws Exception {
    server = new TestServer("", FerryHttpServer.REQUEST_TIMEOUT, HEARTBEAT);
    service = server.service;
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  @AfterEach
  void manualMigrationsAndNoStreamLeftOpen() throws Exception {
    service.autoAdvance = false;
    service.abortReason = null;
    service.recordsLag = false;
    // Every stream a test opened has ended by now: its subscription must be closed.
    assertTrue(
        service.awaitNoSubscribers(Duration.ofSeconds(10)),
        "an event stream's subscription was left open");
  }

  private static HttpResponse<String> delete(String path) throws Exception {
    return server.client.send(
        server.request(path).DELETE().build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String startMigration(String pid) throws Exception {
    HttpResponse<String> r =
        server.post("/v1/processes/" + pid + "/migrations", "{\"to\": \"n2\"}");
    assertEquals(202, r.statusCode(), r.body());
    return json(r.body()).path("id").asText();
  }

  // ---------------------------------------------------------------- nodes

  @Test
  void nodesListsEveryMemberWithMinusOneForAnUnknownLoad() throws Exception {
    String pid = service.start();
    HttpResponse<String> r = server.get("/v1/nodes");
    assertEquals(200, r.statusCode(), r.body());
    JsonNode nodes = json(r.body()).path("nodes");
    assertEquals(3, nodes.size(), r.body());
    JsonNode self = nodes.get(0);
    assertEquals("fake-node", self.path("name").asText());
    assertEquals("up", self.path("status").asText());
    assertEquals("interpreter", self.path("engine").asText());
    assertEquals(0.25, self.path("load").asDouble());
    assertTrue(self.path("processes").asInt() >= 1, r.body());
    assertEquals("http://127.0.0.1:7400", self.path("httpUrl").asText());
    JsonNode lost = nodes.get(2);
    assertEquals("unreachable", lost.path("status").asText());
    assertEquals(-1, lost.path("load").asDouble());
    assertFalse(lost.has("engine"), "an unknown engine is left out: " + lost);
    assertFalse(lost.has("jdk"), lost.toString());
    assertEquals(ProcessState.RUNNING, service.state(pid));
  }

  // ---------------------------------------------------------------- migrate

  @Test
  void migrateAnswers202WithTheRecordAndWhereToFollowIt() throws Exception {
    String pid = service.start();
    HttpResponse<String> r =
        server.post(
            "/v1/processes/" + pid + "/migrations",
            "{\"to\": \"n2\", \"strategy\": \"gfvm\", \"wait\": false}");
    assertEquals(202, r.statusCode(), r.body());
    JsonNode m = json(r.body());
    String id = m.path("id").asText();
    assertTrue(id.startsWith("m-"), r.body());
    assertEquals("/v1/migrations/" + id, r.headers().firstValue("Location").orElse(""));
    assertEquals(pid, m.path("pid").asText());
    assertEquals("fake-node", m.path("fromNode").asText());
    assertEquals("n2", m.path("toNode").asText());
    assertEquals("gfvm", m.path("strategy").asText());
    assertEquals("pending", m.path("state").asText());
    assertTrue(m.path("requestedAt").asText().endsWith("Z"), r.body());
    assertTrue(m.path("freezeMicros").isIntegralNumber(), r.body());
    assertFalse(m.has("finishedAt"), r.body());
  }

  @Test
  void migrateWithoutABodyLetsTheStrategyChooseTheNode() throws Exception {
    String pid = service.start();
    HttpResponse<String> r = server.post("/v1/processes/" + pid + "/migrations", null);
    assertEquals(202, r.statusCode(), r.body());
    assertEquals("n2", json(r.body()).path("toNode").asText());
    assertEquals("data-segment", json(r.body()).path("strategy").asText());
  }

  @Test
  void migrateWithWaitAnswers200OnceCommitted() throws Exception {
    service.autoAdvance = true;
    String pid = service.start();
    HttpResponse<String> r =
        server.post("/v1/processes/" + pid + "/migrations", "{\"to\": \"n2\", \"wait\": true}");
    assertEquals(200, r.statusCode(), r.body());
    JsonNode m = json(r.body());
    assertEquals("committed", m.path("state").asText());
    assertEquals(13047, m.path("totalFreezeMicros").asLong());
    assertEquals(15000, m.path("totalMicros").asLong(), "the complete record, not the first");
    assertEquals(1572864, m.path("bytesMoved").asLong());
    assertEquals("interpreter", m.path("fromEngine").asText());
    assertEquals("compiled", m.path("toEngine").asText());
    assertTrue(m.has("finishedAt"), r.body());
    assertEquals("n2", service.node(pid));
    assertEquals(ProcessState.RUNNING, service.state(pid));
  }

  @Test
  void migrateWithTheWaitParameterAnswersTheAbortedRecord() throws Exception {
    service.autoAdvance = true;
    service.abortReason = "n2 did not acknowledge the image";
    String pid = service.start();
    HttpResponse<String> r = server.post("/v1/processes/" + pid + "/migrations?wait=true", null);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("aborted", json(r.body()).path("state").asText());
    assertEquals("n2 did not acknowledge the image", json(r.body()).path("error").asText());
    assertEquals("fake-node", service.node(pid));
    assertEquals(ProcessState.RUNNING, service.state(pid));
  }

  @Test
  void aWaitingMigrationIsAnsweredByTheEventThatReportsItsEnd() throws Exception {
    service.autoAdvance = true;
    service.recordsLag = true; // asking for the record never shows the end
    String pid = service.start();
    HttpResponse<String> r =
        server.post(
            "/v1/processes/" + pid + "/migrations?timeout=20s", "{\"to\": \"n2\", \"wait\": true}");
    assertEquals(200, r.statusCode(), r.body());
    JsonNode m = json(r.body());
    assertEquals("committed", m.path("state").asText());
    assertEquals(15000, m.path("totalMicros").asLong(), "the complete record, not the first");
    assertTrue(m.has("finishedAt"), r.body());
    assertEquals("n2", service.node(pid));
  }

  @Test
  void requestsWaitingForDifferentMigrationsShareOneSubscriptionAndEachGetsItsOwnEnd()
      throws Exception {
    service.recordsLag = true; // only the events can answer them
    String[] pids = {service.start(), service.start()};
    List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
    for (String pid : pids) {
      answers.add(
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return server.post(
                      "/v1/processes/" + pid + "/migrations?timeout=20s",
                      "{\"to\": \"n2\", \"wait\": true}");
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              }));
    }
    String[] ids = new String[2];
    for (int i = 0; i < 2; i++) {
      while ((ids[i] = service.lastMigrationOf(pids[i])) == null) {
        Thread.sleep(5);
      }
    }
    assertEquals(1, service.subscriberCount(), "one subscription for both waiting requests");
    for (int step = 0; step < 4; step++) {
      service.advance(ids[1]); // the second one ends first
    }
    HttpResponse<String> second = answers.get(1).get(20, TimeUnit.SECONDS);
    assertEquals(200, second.statusCode(), second.body());
    assertEquals(ids[1], json(second.body()).path("id").asText());
    assertFalse(answers.get(0).isDone(), "the first is still migrating");
    for (int step = 0; step < 4; step++) {
      service.advance(ids[0]);
    }
    HttpResponse<String> first = answers.get(0).get(20, TimeUnit.SECONDS);
    assertEquals(200, first.statusCode(), first.body());
    assertEquals(ids[0], json(first.body()).path("id").asText());
    assertEquals("committed", json(first.body()).path("state").asText());
  }

  @Test
  void migrateWithWaitAnswers202WithTheCurrentRecordWhenTheTimeoutPasses() throws Exception {
    String pid = service.start();
    long t0 = System.nanoTime();
    HttpResponse<String> r =
        server.post("/v1/processes/" + pid + "/migrations?wait=true&timeout=300ms", "{}");
    assertTrue(System.nanoTime() - t0 >= Duration.ofMillis(290).toNanos());
    assertEquals(202, r.statusCode(), r.body());
    assertEquals("pending", json(r.body()).path("state").asText());
  }

  @Test
  void aWaitingMigrationAnswersWhenItEndsNotBefore() throws Exception {
    String pid = service.start();
    Thread mover =
        new Thread(
            () -> {
              try {
                String id;
                while ((id = service.lastMigrationOf(pid)) == null) {
                  Thread.sleep(5);
                }
                for (int i = 0; i < 4; i++) {
                  Thread.sleep(50);
                  service.advance(id);
                }
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    mover.start();
    long t0 = System.nanoTime();
    HttpResponse<String> r =
        server.post("/v1/processes/" + pid + "/migrations", "{\"wait\": true}");
    mover.join();
    assertTrue(System.nanoTime() - t0 >= Duration.ofMillis(190).toNanos());
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("committed", json(r.body()).path("state").asText());
  }

  @Test
  void migrateFailuresMapToTheirStatuses() throws Exception {
    String pid = service.start();
    assertError(
        server.post("/v1/processes/p-999/migrations", null), 404, "NOT_FOUND", "no process");
    assertError(
        server.post("/v1/processes/" + pid + "/migrations", "{\"to\": \"n9\"}"),
        404,
        "NOT_FOUND",
        "no node 'n9'");
    assertError(
        server.post("/v1/processes/" + pid + "/migrations", "{\"to\": \"fake-node\"}"),
        409,
        "CONFLICT",
        "already on fake-node");
    assertError(
        server.post("/v1/processes/" + pid + "/migrations", "{\"strategy\": \"teleport\"}"),
        400,
        "BAD_REQUEST",
        "unknown strategy 'teleport'");
    startMigration(pid);
    assertError(
        server.post("/v1/processes/" + pid + "/migrations", "{\"to\": \"n2\"}"),
        409,
        "CONFLICT",
        "already migrating");
    String ended = service.start();
    service.exit(ended, 0);
    assertError(
        server.post("/v1/processes/" + ended + "/migrations", null),
        409,
        "CONFLICT",
        "not running");
  }

  @Test
  void malformedMigrationRequestsAre400NamingTheField() throws Exception {
    String pid = service.start();
    String path = "/v1/processes/" + pid + "/migrations";
    assertError(
        server.post(path, "{\"node\": \"n2\"}"), 400, "BAD_REQUEST", "unknown field 'node'");
    assertError(server.post(path, "{\"to\": 2}"), 400, "BAD_REQUEST", "field 'to'");
    assertError(server.post(path, "{\"to\": \"\"}"), 400, "BAD_REQUEST", "field 'to'");
    assertError(server.post(path, "{\"strategy\": []}"), 400, "BAD_REQUEST", "field 'strategy'");
    assertError(server.post(path, "{\"wait\": \"yes\"}"), 400, "BAD_REQUEST", "field 'wait'");
    assertError(server.post(path, "[]"), 400, "BAD_REQUEST", "JSON object");
    assertError(server.post(path + "?wait=yes", null), 400, "BAD_REQUEST", "'wait'");
    assertError(server.post(path + "?timeout=soon", null), 400, "BAD_REQUEST", "'timeout'");
    assertEquals(ProcessState.RUNNING, service.state(pid), "nothing was started");
    assertEquals(null, service.lastMigrationOf(pid));
  }

  // ---------------------------------------------------------------- migrations

  @Test
  void listsMigrationsNewestFirstAndShowsOne() throws Exception {
    String first = startMigration(service.start());
    String second = startMigration(service.start());
    HttpResponse<String> r = server.get("/v1/migrations");
    assertEquals(200, r.statusCode(), r.body());
    List<String> ids = new ArrayList<>();
    for (JsonNode m : json(r.body()).path("migrations")) {
      ids.add(m.path("id").asText());
    }
    assertTrue(ids.indexOf(second) < ids.indexOf(first), ids.toString());
    assertTrue(ids.indexOf(second) >= 0, ids.toString());

    r = server.get("/v1/migrations/" + first);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals(first, json(r.body()).path("id").asText());
    assertError(server.get("/v1/migrations/m-404"), 404, "NOT_FOUND", "no migration 'm-404'");
  }

  @Test
  void cancelsAMigrationOnceAndThenAnswers409() throws Exception {
    String pid = service.start();
    String id = startMigration(pid);
    service.advance(id); // freezing: the process stands still
    assertEquals(ProcessState.MIGRATING, service.state(pid));
    HttpResponse<String> r = delete("/v1/migrations/" + id);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("cancelled", json(r.body()).path("state").asText());
    assertTrue(json(r.body()).has("finishedAt"), r.body());
    assertEquals(ProcessState.RUNNING, service.state(pid));
    assertEquals("fake-node", service.node(pid));

    assertError(delete("/v1/migrations/" + id), 409, "CONFLICT", "already ended (cancelled)");
    assertError(delete("/v1/migrations/m-404"), 404, "NOT_FOUND", "m-404");
  }

  @Test
  void aMigrationInDoubtIsListedAsSuchAndCommittedByHandOnce() throws Exception {
    String pid = service.start();
    String id = startMigration(pid);
    service.advance(id);
    assertError(
        server.post("/v1/migrations/" + id + "/commit", null),
        409,
        "CONFLICT",
        "is freezing, not in doubt");
    service.holdInDoubt(id);
    HttpResponse<String> r = server.get("/v1/migrations/" + id);
    assertEquals("in_doubt", json(r.body()).path("state").asText(), r.body());
    assertError(delete("/v1/migrations/" + id), 409, "CONFLICT", "is in doubt");

    r = server.post("/v1/migrations/" + id + "/commit", null);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("committed", json(r.body()).path("state").asText(), r.body());
    assertTrue(
        json(r.body()).path("error").asText().contains("committed by an operator"), r.body());
    assertEquals("n2", service.node(pid));
    assertError(
        server.post("/v1/migrations/" + id + "/commit", null),
        409,
        "CONFLICT",
        "is committed, not in doubt");
    assertError(server.post("/v1/migrations/m-404/commit", null), 404, "NOT_FOUND", "m-404");
  }

  @Test
  void aCancellationThatComesAfterThePointOfNoReturnIs409OnceItCommits() throws Exception {
    String pid = service.start();
    String id = startMigration(pid);
    for (int i = 0; i < 3; i++) {
      service.advance(id); // restoring: the destination is resuming it
    }
    Thread committer =
        new Thread(
            () -> {
              try {
                Thread.sleep(200);
                service.advance(id);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    committer.start();
    HttpResponse<String> r = delete("/v1/migrations/" + id);
    committer.join();
    assertError(
        r, 409, "CONFLICT", "committed before it could be cancelled; " + pid + " runs on n2");
    assertEquals("n2", service.node(pid));
  }

  @Test
  void migrationPathsAnswer405ForOtherMethods() throws Exception {
    HttpResponse<String> r =
        server.client.send(
            server.request("/v1/migrations/m-1").PUT(HttpRequest.BodyPublishers.noBody()).build(),
            HttpResponse.BodyHandlers.ofString());
    assertError(r, 405, "METHOD_NOT_ALLOWED", "GET");
    assertTrue(r.body().contains("DELETE"), r.body());
    assertError(server.post("/v1/migrations", "{}"), 405, "METHOD_NOT_ALLOWED", "allowed: GET");
    assertError(server.post("/v1/events", null), 405, "METHOD_NOT_ALLOWED", "allowed: GET");
    assertError(
        server.get("/v1/processes/p-1/migrations"), 405, "METHOD_NOT_ALLOWED", "allowed: POST");
  }

  // ---------------------------------------------------------------- events

  /** An open event stream, read line by line. */
  private static final class EventStream implements AutoCloseable {
    final HttpResponse<InputStream> response;
    final BufferedReader reader;

    EventStream(TestServer on) throws Exception {
      response =
          on.client.send(
              on.request("/v1/events").GET().build(), HttpResponse.BodyHandlers.ofInputStream());
      reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
      // The opening comment comes once the node has subscribed: nothing after it can be missed.
      assertEquals(": subscribed", reader.readLine());
      assertEquals("", reader.readLine());
    }

    /** The next event, [type, data], skipping heartbeats. */
    String[] next() throws IOException {
      String type = null;
      String data = null;
      while (true) {
        String line = reader.readLine();
        if (line == null) {
          throw new IOException("the stream ended");
        }
        if (line.isEmpty()) {
          if (data != null) {
            return new String[] {type, data};
          }
        } else if (line.startsWith("event: ")) {
          type = line.substring("event: ".length());
        } else if (line.startsWith("data: ")) {
          data = line.substring("data: ".length());
        } else {
          assertTrue(line.startsWith(":"), "not a field or comment: " + line);
        }
      }
    }

    @Override
    public void close() throws IOException {
      response.body().close();
    }
  }

  @Test
  void eventsStreamEveryKindInOrder() throws Exception {
    try (EventStream events = new EventStream(server)) {
      assertEquals(200, events.response.statusCode());
      assertEquals(
          "text/event-stream", events.response.headers().firstValue("Content-Type").orElse(""));
      assertEquals("no-cache", events.response.headers().firstValue("Cache-Control").orElse(""));

      service.emit(FakeClusterService.nodeEvent(1_735_787_045_000_001L, "n2", "up"));
      service.emit(FakeClusterService.processEvent(1_735_787_045_000_002L, "p-7", "exited", 3));
      String pid = service.start();
      String id = startMigration(pid);
      for (int i = 0; i < 4; i++) {
        service.advance(id);
      }

      String[] e = events.next();
      assertEquals("node", e[0]);
      JsonNode node = json(e[1]);
      assertEquals("2025-01-02T03:04:05.000001Z", node.path("at").asText());
      assertEquals(1_735_787_045_000_001L, node.path("atMicros").asLong());
      assertEquals("fake-node", node.path("node").asText());
      assertEquals("node", node.path("kind").asText());
      assertEquals("n2", node.path("member").path("name").asText());
      assertEquals("up", node.path("member").path("status").asText());

      e = events.next();
      assertEquals("process", e[0]);
      JsonNode process = json(e[1]).path("process");
      assertEquals("p-7", process.path("pid").asText());
      assertEquals("exited", process.path("what").asText());
      assertEquals(3, process.path("exitCode").asInt());

      // Committing is published twice: the state, then the complete record.
      List<String> states = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        e = events.next();
        assertEquals("migration", e[0]);
        JsonNode m = json(e[1]).path("migration");
        assertEquals(id, m.path("id").asText());
        states.add(m.path("state").asText());
        if (i == 5) {
          assertEquals(15000, m.path("totalMicros").asLong(), e[1]);
          assertTrue(m.path("finishedAt").asText().endsWith("Z"), e[1]);
        }
      }
      assertEquals(
          List.of("pending", "freezing", "transferring", "restoring", "committed", "committed"),
          states);
    }
  }

  @Test
  void everySubscriberGetsEveryEventAndUnknownKindsAreSkipped() throws Exception {
    try (EventStream a = new EventStream(server);
        EventStream b = new EventStream(server)) {
      service.emit(FerryEvent.newBuilder().setAtMicros(1).setNode("n9").build());
      service.emit(FakeClusterService.processEvent(2, "p-1", "started", 0));
      for (EventStream s : List.of(a, b)) {
        String[] e = s.next();
        assertEquals("process", e[0]);
        assertEquals("started", json(e[1]).path("process").path("what").asText());
        assertFalse(json(e[1]).path("process").has("exitCode"), e[1]);
      }
    }
  }

  @Test
  void aQuietStreamCarriesHeartbeatComments() throws Exception {
    try (EventStream events = new EventStream(server)) {
      long t0 = System.nanoTime();
      assertEquals(":", events.reader.readLine());
      assertEquals("", events.reader.readLine());
      assertTrue(System.nanoTime() - t0 >= HEARTBEAT.toNanos() / 2);
    }
  }

  @Test
  void theNodeUnsubscribesWhenTheClientGoesAway() throws Exception {
    int closedBefore = service.closedSubscriptions();
    EventStream events = new EventStream(server);
    assertEquals(1, service.subscriberCount());
    events.close();
    assertTrue(
        service.awaitClosedSubscriptions(closedBefore + 1, Duration.ofSeconds(10)),
        "the subscription was not closed");
    assertEquals(0, service.subscriberCount());
  }

  @Test
  void aClientThatFallsTooFarBehindIsCutOffAndUnsubscribed() throws Exception {
    int closedBefore = service.closedSubscriptions();
    int port = Integer.parseInt(server.url().substring(server.url().lastIndexOf(':') + 1));
    try (Socket s = new Socket("127.0.0.1", port)) {
      s.setReceiveBufferSize(4096);
      OutputStream out = s.getOutputStream();
      out.write("GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      out.flush();
      assertTrue(service.awaitSubscribers(1, Duration.ofSeconds(10)));
      // Never read: socket buffers fill, then the node's buffer of EVENT_BUFFER events.
      FerryEvent big =
          FerryEvent.newBuilder()
              .setNode("fake-node")
              .setProcessEvent(
                  ProcessEvent.newBuilder()
                      .setPid("p-1")
                      .setWhat("failed")
                      .setError("x".repeat(1000)))
              .build();
      for (int i = 0; i < 200_000 && service.closedSubscriptions() == closedBefore; i++) {
        service.emit(big);
      }
      assertTrue(
          service.awaitClosedSubscriptions(closedBefore + 1, Duration.ofSeconds(10)),
          "the subscription of a stuck client was not closed");
      assertEquals(0, service.subscriberCount());
    }
  }

  @Test
  void theEventStreamOutlivesTheServerRequestTimeout() throws Exception {
    try (TestServer strict = new TestServer("", Duration.ofMillis(300), HEARTBEAT);
        EventStream events = new EventStream(strict)) {
      Thread.sleep(1000);
      strict.service.emit(FakeClusterService.processEvent(5, "p-1", "killed", 0));
      assertEquals("killed", json(events.next()[1]).path("process").path("what").asText());
    }
  }
}
