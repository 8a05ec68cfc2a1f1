package dev.ferry.api.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.FakeClusterService;
import dev.ferry.api.TestServer;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessState;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The routes against the fake service, over real HTTP on a loopback port. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FerryRoutesTest {
  private static final byte[] WASM = {0, 'a', 's', 'm', 1, 0, 0, 0};

  private static TestServer server;
  private static FakeClusterService service;

  @BeforeAll
  static void start() throws Exception {
    server = new TestServer();
    service = server.service;
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  static JsonNode json(String body) throws Exception {
    return ApiJson.mapper().readTree(body);
  }

  static JsonNode json(byte[] body) throws Exception {
    return ApiJson.mapper().readTree(body);
  }

  /** Asserts an error response: status, JSON content type, kind, and a message containing text. */
  static void assertError(HttpResponse<?> r, int status, String kind, String messagePart)
      throws Exception {
    assertEquals(status, r.statusCode(), () -> "body: " + r.body());
    assertEquals("application/json", r.headers().firstValue("Content-Type").orElse(""));
    String body =
        r.body() instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : (String) r.body();
    JsonNode error = json(body).path("error");
    assertEquals(kind, error.path("kind").asText(), body);
    assertTrue(
        error.path("message").asText().contains(messagePart),
        () -> "message '" + error.path("message").asText() + "' lacks '" + messagePart + "'");
  }

  private String uploadModule() throws Exception {
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules")
                .POST(HttpRequest.BodyPublishers.ofByteArray(WASM))
                .build());
    assertEquals(201, r.statusCode());
    return json(r.body()).path("hash").asText();
  }

  // ---------------------------------------------------------------- happy paths

  @Test
  void healthNamesTheNode() throws Exception {
    HttpResponse<String> r = server.get("/v1/health");
    assertEquals(200, r.statusCode());
    assertEquals("fake-node", json(r.body()).path("node").asText());
    assertEquals("up", json(r.body()).path("status").asText());
  }

  @Test
  void uploadsAModuleAndAnswersItsHash() throws Exception {
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules?preemptible=true")
                .POST(HttpRequest.BodyPublishers.ofByteArray(WASM))
                .build());
    assertEquals(201, r.statusCode());
    JsonNode m = json(r.body());
    assertEquals(64, m.path("hash").asText().length());
    assertEquals(8, m.path("sizeBytes").asLong());
    assertTrue(m.path("preemptible").asBoolean());
  }

  @Test
  void runsAProcessWithArgsEnvAndFiles() throws Exception {
    String hash = uploadModule();
    String body =
        "{\"module\": \""
            + hash
            + "\", \"engine\": \"compiled\", \"args\": [\"-v\", \"x y\"],"
            + " \"env\": {\"B\": \"2\", \"A\": \"1=one\"},"
            + " \"files\": {\"/in.txt\": \""
            + Base64.getEncoder().encodeToString(new byte[] {0, 1, 2, (byte) 255})
            + "\"}}";
    HttpResponse<String> r = server.post("/v1/processes", body);
    assertEquals(201, r.statusCode(), r.body());
    JsonNode p = json(r.body());
    assertEquals("running", p.path("state").asText());
    assertEquals("compiled", p.path("engine").asText());
    assertEquals(hash, p.path("moduleHash").asText());
    assertEquals(List.of("-v", "x y"), service.lastRun.args());
    assertEquals(List.of("B", "A"), List.copyOf(service.lastRun.env().keySet()));
    assertEquals("1=one", service.lastRun.env().get("A"));
    assertArrayEquals(new byte[] {0, 1, 2, (byte) 255}, service.lastRun.files().get("/in.txt"));
    assertEquals(Engine.COMPILED, service.lastRun.engine());
  }

  @Test
  void runWithOnlyAModuleUsesTheNodeDefaults() throws Exception {
    String hash = uploadModule();
    HttpResponse<String> r = server.post("/v1/processes", "{\"module\": \"" + hash + "\"}");
    assertEquals(201, r.statusCode(), r.body());
    assertEquals(null, service.lastRun.engine());
    assertEquals(List.of(), service.lastRun.args());
  }

  @Test
  void listsProcesses() throws Exception {
    String pid = service.start();
    HttpResponse<String> r = server.get("/v1/processes");
    assertEquals(200, r.statusCode());
    boolean found = false;
    for (JsonNode p : json(r.body()).path("processes")) {
      found |= p.path("id").asText().equals(pid);
    }
    assertTrue(found, r.body());
  }

  @Test
  void statusIsCamelCaseWithLowerCaseEnumsAndIsoInstants() throws Exception {
    String pid = service.start("a");
    service.append(pid, "hello");
    HttpResponse<String> r = server.get("/v1/processes/" + pid);
    assertEquals(200, r.statusCode());
    JsonNode p = json(r.body());
    assertEquals(pid, p.path("id").asText());
    assertEquals("running", p.path("state").asText());
    assertEquals("interpreter", p.path("engine").asText());
    assertEquals("2025-01-02T03:04:05.123Z", p.path("startedAt").asText());
    assertEquals(5, p.path("stdoutBytes").asLong());
    assertFalse(p.has("exitCode"), "null fields are omitted: " + r.body());
    assertFalse(p.has("endedAt"));
  }

  @Test
  void readsLogBytesExactlyWithOffsetHeaders() throws Exception {
    String pid = service.start();
    byte[] all = new byte[256];
    for (int i = 0; i < 256; i++) {
      all[i] = (byte) i;
    }
    service.append(pid, LogStream.STDOUT, all);
    HttpResponse<byte[]> r =
        server.send(server.request("/v1/processes/" + pid + "/logs").GET().build());
    assertEquals(200, r.statusCode());
    assertEquals("application/octet-stream", r.headers().firstValue("Content-Type").orElse(""));
    assertArrayEquals(all, r.body());
    assertEquals("256", r.headers().firstValue("X-Ferry-Next-Offset").orElse(""));
    assertEquals("false", r.headers().firstValue("X-Ferry-Complete").orElse(""));

    r =
        server.send(
            server.request("/v1/processes/" + pid + "/logs?offset=250&max=4").GET().build());
    assertArrayEquals(new byte[] {(byte) 250, (byte) 251, (byte) 252, (byte) 253}, r.body());
    assertEquals("254", r.headers().firstValue("X-Ferry-Next-Offset").orElse(""));

    service.exit(pid, 0);
    r = server.send(server.request("/v1/processes/" + pid + "/logs?offset=256").GET().build());
    assertEquals(0, r.body().length);
    assertEquals("true", r.headers().firstValue("X-Ferry-Complete").orElse(""));
  }

  @Test
  void readsStderrSeparately() throws Exception {
    String pid = service.start();
    service.append(pid, LogStream.STDERR, "oops\n".getBytes(StandardCharsets.UTF_8));
    service.append(pid, "fine\n");
    HttpResponse<String> r = server.get("/v1/processes/" + pid + "/logs?stream=stderr");
    assertEquals("oops\n", r.body());
  }

  @Test
  void followStreamsEveryByteInOrderAndEndsWhenTheProcessEnds() throws Exception {
    String pid = service.start();
    byte[] expected = new byte[300_000];
    new Random(42).nextBytes(expected);
    service.append(pid, LogStream.STDOUT, java.util.Arrays.copyOf(expected, 1000));
    Thread writer =
        new Thread(
            () -> {
              try {
                int at = 1000;
                while (at < expected.length) {
                  int n = Math.min(7919, expected.length - at);
                  service.append(
                      pid, LogStream.STDOUT, java.util.Arrays.copyOfRange(expected, at, at + n));
                  at += n;
                  Thread.sleep(3);
                }
                Thread.sleep(1500); // a quiet spell longer than one follow poll
                service.exit(pid, 0);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    writer.start();
    HttpResponse<InputStream> r =
        server.client.send(
            server.request("/v1/processes/" + pid + "/logs?follow=true&max=5000").GET().build(),
            HttpResponse.BodyHandlers.ofInputStream());
    assertEquals(200, r.statusCode());
    byte[] got;
    try (InputStream in = r.body()) {
      got = in.readAllBytes(); // returns only when the server ends the response
    }
    writer.join();
    assertEquals(expected.length, got.length);
    assertArrayEquals(expected, got);
  }

  @Test
  void followFromAnOffsetOfAnEndedProcessSendsTheRestAndEnds() throws Exception {
    String pid = service.start();
    service.append(pid, "0123456789");
    service.exit(pid, 0);
    HttpResponse<String> r = server.get("/v1/processes/" + pid + "/logs?follow=true&offset=4");
    assertEquals("456789", r.body());
  }

  @Test
  void waitAnswers200OnceTheProcessEnds() throws Exception {
    String pid = service.start();
    new Thread(
            () -> {
              try {
                Thread.sleep(300);
              } catch (InterruptedException e) {
                return;
              }
              service.exit(pid, 3);
            })
        .start();
    HttpResponse<String> r = server.get("/v1/processes/" + pid + "/wait?timeout=20s");
    assertEquals(200, r.statusCode());
    assertEquals("exited", json(r.body()).path("state").asText());
    assertEquals(3, json(r.body()).path("exitCode").asInt());
  }

  @Test
  void waitAnswers202WithTheCurrentStatusWhenTheTimeoutPasses() throws Exception {
    String pid = service.start();
    long t0 = System.nanoTime();
    HttpResponse<String> r = server.get("/v1/processes/" + pid + "/wait?timeout=300ms");
    assertTrue(System.nanoTime() - t0 >= Duration.ofMillis(290).toNanos());
    assertEquals(202, r.statusCode());
    assertEquals("running", json(r.body()).path("state").asText());
  }

  @Test
  void waitOnAnEndedProcessAnswersAtOnce() throws Exception {
    String pid = service.start();
    service.exit(pid, 0);
    HttpResponse<String> r = server.get("/v1/processes/" + pid + "/wait?timeout=0");
    assertEquals(200, r.statusCode());
  }

  @Test
  void killsAProcess() throws Exception {
    String pid = service.start();
    HttpResponse<String> r = server.post("/v1/processes/" + pid + "/kill", null);
    assertEquals(200, r.statusCode());
    assertEquals("killed", json(r.body()).path("state").asText());
    assertEquals(ProcessState.KILLED, service.state(pid));
  }

  @Test
  void readsAFileOfTheSandbox() throws Exception {
    String pid = service.start();
    byte[] content = {10, 0, (byte) 200, 13};
    service.putFile(pid, "/out dir/out.bin", content);
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/processes/" + pid + "/files?path=/out%20dir/out.bin")
                .GET()
                .build());
    assertEquals(200, r.statusCode());
    assertArrayEquals(content, r.body());
  }

  @Test
  void checkpointsAndRestoresOnAnotherEngine() throws Exception {
    String pid = service.start();
    HttpResponse<String> r = server.post("/v1/processes/" + pid + "/checkpoint", null);
    assertEquals(200, r.statusCode(), r.body());
    JsonNode c = json(r.body());
    assertEquals(pid, c.path("pid").asText());
    assertEquals(1234, c.path("freezeMicros").asLong());
    assertFalse(c.path("leftRunning").asBoolean());
    assertEquals(ProcessState.CHECKPOINTED, service.state(pid));

    r = server.post("/v1/processes/" + pid + "/restore", "{\"engine\": \"compiled\"}");
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("running", json(r.body()).path("state").asText());
    assertEquals("compiled", json(r.body()).path("engine").asText());
  }

  @Test
  void checkpointCanLeaveTheProcessRunningAndRestoreNeedsNoBody() throws Exception {
    String pid = service.start();
    HttpResponse<String> r =
        server.post("/v1/processes/" + pid + "/checkpoint?leaveRunning=true", null);
    assertTrue(json(r.body()).path("leftRunning").asBoolean());
    assertEquals(ProcessState.RUNNING, service.state(pid));
    server.post("/v1/processes/" + pid + "/checkpoint", null);
    r = server.post("/v1/processes/" + pid + "/restore", null);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("interpreter", json(r.body()).path("engine").asText());
  }

  // ---------------------------------------------------------------- errors

  @Test
  void unknownProcessIs404Json() throws Exception {
    assertError(server.get("/v1/processes/p-999"), 404, "NOT_FOUND", "no process 'p-999'");
    assertError(server.get("/v1/processes/p-999/logs"), 404, "NOT_FOUND", "p-999");
    assertError(server.get("/v1/processes/p-999/logs?follow=true"), 404, "NOT_FOUND", "p-999");
    assertError(server.get("/v1/processes/p-999/wait?timeout=1s"), 404, "NOT_FOUND", "p-999");
    assertError(server.post("/v1/processes/p-999/kill", null), 404, "NOT_FOUND", "p-999");
  }

  @Test
  void wrongStateIs409Json() throws Exception {
    String pid = service.start();
    assertError(
        server.post("/v1/processes/" + pid + "/restore", null),
        409,
        "CONFLICT",
        "not checkpointed");
    server.post("/v1/processes/" + pid + "/kill", null);
    assertError(
        server.post("/v1/processes/" + pid + "/kill", null), 409, "CONFLICT", "already ended");
  }

  @Test
  void missingFileIs404AndMissingPathIs400() throws Exception {
    String pid = service.start();
    assertError(
        server.get("/v1/processes/" + pid + "/files?path=/nope"), 404, "NOT_FOUND", "/nope");
    assertError(
        server.get("/v1/processes/" + pid + "/files"), 400, "BAD_REQUEST", "'path' is required");
    assertError(
        server.get("/v1/processes/" + pid + "/files?path=rel"), 400, "BAD_REQUEST", "absolute");
  }

  @Test
  void malformedRunBodiesAre400NamingTheField() throws Exception {
    String hash = uploadModule();
    String m = "\"module\": \"" + hash + "\"";
    assertError(
        server.post("/v1/processes", "{" + m + ", \"arg\": []}"),
        400,
        "BAD_REQUEST",
        "unknown field 'arg'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"args\": \"-v\"}"),
        400,
        "BAD_REQUEST",
        "'args'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"args\": [1]}"),
        400,
        "BAD_REQUEST",
        "'args[0]'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"env\": {\"A\": 1}}"),
        400,
        "BAD_REQUEST",
        "'env.A'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"engine\": \"jit\"}"),
        400,
        "BAD_REQUEST",
        "unknown engine 'jit'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"engine\": 3}"), 400, "BAD_REQUEST", "'engine'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"files\": {\"/a\": \"%%%\"}}"),
        400,
        "BAD_REQUEST",
        "'files./a'");
    assertError(
        server.post("/v1/processes", "{" + m + ", \"files\": {\"a\": \"\"}}"),
        400,
        "BAD_REQUEST",
        "not absolute");
    assertError(
        server.post("/v1/processes", "{\"args\": []}"), 400, "BAD_REQUEST", "'module' is required");
    assertError(server.post("/v1/processes", "{" + m + ","), 400, "BAD_REQUEST", "not valid JSON");
    assertError(server.post("/v1/processes", "[1]"), 400, "BAD_REQUEST", "JSON object");
    assertError(server.post("/v1/processes", ""), 400, "BAD_REQUEST", "empty");
    assertError(
        server.post("/v1/processes", "{" + m + ", " + m + "}"), 400, "BAD_REQUEST", "module");
    assertError(
        server.post("/v1/processes/p-1/restore", "{\"engin\": \"x\"}"),
        400,
        "BAD_REQUEST",
        "'engin'");
  }

  @Test
  void runOfAnUnknownModuleIs404() throws Exception {
    assertError(
        server.post("/v1/processes", "{\"module\": \"" + "f".repeat(64) + "\"}"),
        404,
        "NOT_FOUND",
        "no module");
  }

  @Test
  void badQueryParametersAre400NamingTheParameter() throws Exception {
    String pid = service.start();
    assertError(
        server.get("/v1/processes/" + pid + "/logs?offset=abc"), 400, "BAD_REQUEST", "'offset'");
    assertError(
        server.get("/v1/processes/" + pid + "/logs?offset=-1"), 400, "BAD_REQUEST", "'offset'");
    assertError(
        server.get("/v1/processes/" + pid + "/logs?stream=stdin"),
        400,
        "BAD_REQUEST",
        "stdout or stderr");
    assertError(
        server.get("/v1/processes/" + pid + "/logs?follow=yes"), 400, "BAD_REQUEST", "'follow'");
    assertError(server.get("/v1/processes/" + pid + "/logs?max=0"), 400, "BAD_REQUEST", "'max'");
    assertError(
        server.get("/v1/processes/" + pid + "/wait?timeout=soon"), 400, "BAD_REQUEST", "'timeout'");
    assertError(
        server.get("/v1/processes/" + pid + "/wait?timeout=2h"), 400, "BAD_REQUEST", "'timeout'");
    assertError(
        server.post("/v1/processes/" + pid + "/checkpoint?leaveRunning=maybe", null),
        400,
        "BAD_REQUEST",
        "'leaveRunning'");
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules?preemptible=1")
                .POST(HttpRequest.BodyPublishers.ofByteArray(WASM))
                .build());
    assertError(r, 400, "BAD_REQUEST", "'preemptible'");
  }

  @Test
  void aModuleThatIsNotWasmIs400() throws Exception {
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules")
                .POST(HttpRequest.BodyPublishers.ofString("hello world"))
                .build());
    assertError(r, 400, "BAD_REQUEST", "not a WebAssembly module");
  }

  @Test
  void unknownRouteIs404Json() throws Exception {
    assertError(server.get("/v1/nothing"), 404, "NOT_FOUND", "no route for GET /v1/nothing");
    assertError(server.get("/"), 404, "NOT_FOUND", "no route");
    assertError(server.get("/v1/processes/p-1/logs/extra"), 404, "NOT_FOUND", "no route");
  }

  @Test
  void unknownQueryParametersAre400AndChangeNothing() throws Exception {
    String pid = service.start();
    // A misspelt leaveRunning must not silently mean "stop the process".
    assertError(
        server.post("/v1/processes/" + pid + "/checkpoint?leave-running=true", null),
        400,
        "BAD_REQUEST",
        "unknown query parameter 'leave-running' for POST /v1/processes/{pid}/checkpoint;"
            + " it takes leaveRunning");
    assertEquals(ProcessState.RUNNING, service.state(pid));
    assertError(
        server.post("/v1/processes/" + pid + "/kill?force=true", null),
        400,
        "BAD_REQUEST",
        "it takes none");
    assertEquals(ProcessState.RUNNING, service.state(pid));
    String before = service.lastMigrationOf(pid);
    assertError(
        server.post("/v1/processes/" + pid + "/migrations?wiat=true", "{\"to\":\"n2\"}"),
        400,
        "BAD_REQUEST",
        "it takes wait, timeout");
    assertEquals(before, service.lastMigrationOf(pid), "no migration was started");
    assertError(
        server.get("/v1/processes/" + pid + "/logs?offset=0&folow=true"),
        400,
        "BAD_REQUEST",
        "'folow'");
    assertError(server.get("/v1/processes?state=running"), 400, "BAD_REQUEST", "'state'");
    // Known ones still work, alone or together; a wrong method is still a 405 first.
    assertEquals(200, server.get("/v1/processes/" + pid + "/logs?offset=0&max=10").statusCode());
    assertError(
        server.get("/v1/processes/" + pid + "/kill?force=true"),
        405,
        "METHOD_NOT_ALLOWED",
        "allowed: POST");
  }

  @Test
  void wrongMethodIs405JsonWithAllow() throws Exception {
    HttpResponse<String> r =
        server.client.send(
            server.request("/v1/health").DELETE().build(), HttpResponse.BodyHandlers.ofString());
    assertError(r, 405, "METHOD_NOT_ALLOWED", "allowed: GET");
    assertEquals("GET", r.headers().firstValue("Allow").orElse(""));
    r =
        server.client.send(
            server.request("/v1/processes").PUT(HttpRequest.BodyPublishers.noBody()).build(),
            HttpResponse.BodyHandlers.ofString());
    assertError(r, 405, "METHOD_NOT_ALLOWED", "GET");
    assertTrue(r.body().contains("POST"), r.body());
    assertError(server.get("/v1/processes/p-1/kill"), 405, "METHOD_NOT_ALLOWED", "allowed: POST");
  }

  @Test
  void aBodyOverTheLimitIs413NamingTheSetting() throws Exception {
    byte[] big = new byte[(int) TestServer.MAX_UPLOAD + 1];
    big[1] = 'a';
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules")
                .POST(HttpRequest.BodyPublishers.ofByteArray(big))
                .build());
    assertError(r, 413, "PAYLOAD_TOO_LARGE", "ferry.http.max-upload-bytes");
    assertError(r, 413, "PAYLOAD_TOO_LARGE", "65536 bytes");
  }

  @Test
  void aChunkedBodyOverTheLimitIs413Too() throws Exception {
    byte[] big = new byte[(int) TestServer.MAX_UPLOAD * 2];
    // A publisher of unknown length, so the client sends chunked encoding with no Content-Length.
    HttpRequest.BodyPublisher chunked =
        HttpRequest.BodyPublishers.fromPublisher(HttpRequest.BodyPublishers.ofByteArray(big));
    HttpResponse<byte[]> r = server.send(server.request("/v1/modules").POST(chunked).build());
    assertError(r, 413, "PAYLOAD_TOO_LARGE", "ferry.http.max-upload-bytes");
  }

  @Test
  void aLargeUploadIsRefusedWith413WhileItIsStillBeingSent() throws Exception {
    // The node answers as soon as it sees Content-Length; the client still gets the 413.
    byte[] huge = new byte[32 * 1024 * 1024];
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules")
                .POST(HttpRequest.BodyPublishers.ofByteArray(huge))
                .build());
    assertError(r, 413, "PAYLOAD_TOO_LARGE", "max-upload-bytes");
  }

  @Test
  void aClientThatWaitsFor100ContinueGets413WithoutSendingTheBody() throws Exception {
    String response =
        rawExchange(
            "POST /v1/modules HTTP/1.1\r\nHost: x\r\nContent-Type: application/wasm\r\n"
                + "Content-Length: 33554432\r\nExpect: 100-continue\r\n\r\n");
    assertTrue(response.startsWith("HTTP/1.1 413"), response);
    assertTrue(response.contains("max-upload-bytes"), response);
  }

  @Test
  void anUnexpectedFailureIs500Json() throws Exception {
    service.listFailure = new IllegalStateException("boom");
    try {
      assertError(server.get("/v1/processes"), 500, "INTERNAL", "boom");
    } finally {
      service.listFailure = null;
    }
  }

  @Test
  void aMalformedHttpRequestIsAnsweredInJson() throws Exception {
    String response =
        rawExchange("GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
    assertTrue(response.startsWith("HTTP/1.1 400"), response);
    assertTrue(response.contains("application/json"), response);
    assertTrue(response.contains("\"kind\":\"BAD_REQUEST\""), response);
  }

  /**
   * Sends {@code request} as it is on a new connection and reads the answer until the end of its
   * JSON error body.
   */
  private String rawExchange(String request) throws Exception {
    URIish u = new URIish(server.url());
    try (Socket s = new Socket("127.0.0.1", u.port)) {
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(request.getBytes(StandardCharsets.US_ASCII));
      out.flush();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      InputStream in = s.getInputStream();
      byte[] buf = new byte[4096];
      int n;
      while ((n = in.read(buf)) >= 0) {
        got.write(buf, 0, n);
        if (got.toString(StandardCharsets.US_ASCII).contains("}}")) {
          break;
        }
      }
      return got.toString(StandardCharsets.US_ASCII);
    }
  }

  /** Just the port of a URL, without dragging in a URI library for tests. */
  private record URIish(int port) {
    URIish(String url) {
      this(Integer.parseInt(url.substring(url.lastIndexOf(':') + 1)));
    }
  }

  // ---------------------------------------------------------------- request timeout and auth

  @Test
  void waitingRoutesOutliveTheServerRequestTimeout() throws Exception {
    try (TestServer strict = new TestServer("", Duration.ofMillis(500))) {
      String pid = strict.service.start();
      HttpResponse<String> r = strict.get("/v1/processes/" + pid + "/wait?timeout=1500ms");
      assertEquals(202, r.statusCode(), r.body());

      new Thread(
              () -> {
                try {
                  Thread.sleep(1200);
                  strict.service.append(pid, "late\n");
                  strict.service.exit(pid, 0);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              })
          .start();
      r = strict.get("/v1/processes/" + pid + "/logs?follow=true");
      assertEquals(200, r.statusCode());
      assertEquals("late\n", r.body());
    }
  }

  @Test
  void tokenIsRequiredOnEveryRouteWhenSet() throws Exception {
    try (TestServer secured = new TestServer("s3cret", Duration.ofSeconds(30))) {
      HttpRequest noToken = HttpRequest.newBuilder(secured.uri("/v1/health")).GET().build();
      HttpResponse<String> r = secured.client.send(noToken, HttpResponse.BodyHandlers.ofString());
      assertError(r, 401, "UNAUTHORIZED", "Authorization");
      assertEquals("Bearer realm=\"ferry\"", r.headers().firstValue("WWW-Authenticate").orElse(""));

      HttpRequest wrong =
          HttpRequest.newBuilder(secured.uri("/v1/processes"))
              .header("Authorization", "Bearer s3cre")
              .GET()
              .build();
      assertError(
          secured.client.send(wrong, HttpResponse.BodyHandlers.ofString()),
          401,
          "UNAUTHORIZED",
          "wrong");

      HttpRequest basic =
          HttpRequest.newBuilder(secured.uri("/v1/processes"))
              .header("Authorization", "Basic s3cret")
              .GET()
              .build();
      assertError(
          secured.client.send(basic, HttpResponse.BodyHandlers.ofString()),
          401,
          "UNAUTHORIZED",
          "");

      HttpRequest unknownRoute = HttpRequest.newBuilder(secured.uri("/v1/nope")).GET().build();
      assertError(
          secured.client.send(unknownRoute, HttpResponse.BodyHandlers.ofString()),
          401,
          "UNAUTHORIZED",
          "");

      assertEquals(200, secured.get("/v1/health").statusCode());
      HttpRequest lower =
          HttpRequest.newBuilder(secured.uri("/v1/health"))
              .header("Authorization", "bearer s3cret")
              .GET()
              .build();
      assertEquals(
          200, secured.client.send(lower, HttpResponse.BodyHandlers.ofString()).statusCode());
    }
  }

  @Test
  void endpointsAreListedOnce() {
    List<Endpoint> endpoints = server.routes.endpoints();
    assertEquals(18, endpoints.size());
    assertEquals(endpoints.size(), new java.util.HashSet<>(endpoints).size());
  }
}
