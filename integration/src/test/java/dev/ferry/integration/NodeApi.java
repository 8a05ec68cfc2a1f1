package dev.ferry.integration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * A small client of a node's HTTP API ({@code /v1}, see docs/HTTP-API.md) for tests: one method per
 * route, JSON answers parsed with Jackson. Any answer other than the expected status fails the test
 * with the method, path, status and body; {@link #send} gives the raw answer when the status is
 * what is being tested. It does not retry. The migration benchmark (package {@code bench}) uses it
 * too, hence the public members.
 */
public final class NodeApi {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);

  /** What a process wrote, each stream whole. */
  record Output(byte[] stdout, byte[] stderr) {
    String stdoutText() {
      return new String(stdout, StandardCharsets.UTF_8);
    }

    String stderrText() {
      return new String(stderr, StandardCharsets.UTF_8);
    }
  }

  /** A raw answer to {@code request} ("METHOD uri"). */
  public record Answer(String request, int status, byte[] body) {
    public JsonNode json() {
      return parse(body);
    }

    public String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    /** This answer, if its status is one of {@code statuses}; otherwise an AssertionError. */
    public Answer expect(int... statuses) {
      for (int s : statuses) {
        if (status == s) {
          return this;
        }
      }
      String wanted =
          statuses.length == 1
              ? String.valueOf(statuses[0])
              : "one of " + java.util.Arrays.toString(statuses);
      throw new AssertionError(
          request + ": expected HTTP " + wanted + " but got " + status + ": " + text());
    }
  }

  private final URI base;
  private final HttpClient http;

  public NodeApi(URI base) {
    this.base = base;
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
  }

  public URI base() {
    return base;
  }

  // ------------------------------------------------------------------ routes

  /** True if {@code GET /v1/health} answers 200 now; false if nothing answers. */
  boolean isHealthy() {
    try {
      HttpResponse<byte[]> r =
          http.send(
              HttpRequest.newBuilder(base.resolve("/v1/health"))
                  .timeout(Duration.ofSeconds(2))
                  .GET()
                  .build(),
              HttpResponse.BodyHandlers.ofByteArray());
      return r.statusCode() == 200;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  JsonNode health() {
    return expect(200, get("/v1/health")).json();
  }

  /** Uploads a module; returns its hash. */
  public String upload(Path wasm) {
    try {
      byte[] bytes = Files.readAllBytes(wasm);
      HttpRequest req =
          request("/v1/modules")
              .header("Content-Type", "application/wasm")
              .POST(HttpRequest.BodyPublishers.ofByteArray(bytes))
              .build();
      return expect(201, send(req)).json().path("hash").asText();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Starts a process of an uploaded module on the node's default engine; returns its pid. */
  public String run(String moduleHash, List<String> args) {
    return run(moduleHash, args, null);
  }

  /** Starts a process; {@code engine} null means the node's default. Returns its pid. */
  String run(String moduleHash, List<String> args, String engine) {
    return run(moduleHash, args, engine, Map.of());
  }

  /**
   * Starts a process with files put in its sandbox first ({@code files}: absolute guest path to
   * content); {@code engine} null means the node's default. Returns its pid.
   */
  String run(String moduleHash, List<String> args, String engine, Map<String, byte[]> files) {
    return run(moduleHash, args, engine, files, false);
  }

  /**
   * Starts a process; {@code engine} null means the node's default; {@code paged}: on paged memory
   * with a replicated paging file ({@code "paged": true}). Returns its pid.
   */
  public String run(
      String moduleHash,
      List<String> args,
      String engine,
      Map<String, byte[]> files,
      boolean paged) {
    ObjectNode body = JSON.createObjectNode();
    body.put("module", moduleHash);
    if (engine != null) {
      body.put("engine", engine);
    }
    args.forEach(body.putArray("args")::add);
    if (!files.isEmpty()) {
      ObjectNode f = body.putObject("files");
      files.forEach((path, bytes) -> f.put(path, Base64.getEncoder().encodeToString(bytes)));
    }
    if (paged) {
      body.put("paged", true);
    }
    return expect(201, postJson("/v1/processes", body)).json().path("id").asText();
  }

  public JsonNode status(String pid) {
    return expect(200, get(process(pid))).json();
  }

  String state(String pid) {
    return status(pid).path("state").asText();
  }

  List<JsonNode> list() {
    List<JsonNode> all = new ArrayList<>();
    expect(200, get("/v1/processes")).json().path("processes").forEach(all::add);
    return all;
  }

  /** Waits (asking {@code /wait} again every 10 s) until the process is final; returns it. */
  JsonNode awaitFinal(String pid, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Answer a = get(process(pid) + "/wait?timeout=10s");
      if (a.status() == 200) {
        return a.json();
      }
      expect(202, a);
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            "process " + pid + " at " + base + " did not end within " + timeout + ": " + a.text());
      }
    }
  }

  /** Polls the status (every 20 ms) until {@code condition} holds; returns that status. */
  JsonNode awaitStatus(String pid, Predicate<JsonNode> condition, String what, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      JsonNode s = status(pid);
      if (condition.test(s)) {
        return s;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            "process "
                + pid
                + " did not reach '"
                + what
                + "' within "
                + timeout
                + "; last status "
                + s);
      }
      DaemonProcess.sleep(20);
    }
  }

  /** The whole of one stream ({@code stdout} or {@code stderr}), read in chunks from offset 0. */
  public byte[] log(String pid, String stream) {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    long offset = 0;
    while (true) {
      HttpResponse<byte[]> r =
          exchange(
              request(process(pid) + "/logs?stream=" + stream + "&offset=" + offset).GET().build());
      expect(200, new Answer("GET " + r.uri(), r.statusCode(), r.body()));
      all.writeBytes(r.body());
      long next =
          r.headers()
              .firstValue("X-Ferry-Next-Offset")
              .map(Long::parseLong)
              .orElse(offset + r.body().length);
      if (r.body().length == 0 || next <= offset) {
        return all.toByteArray();
      }
      offset = next;
    }
  }

  Output output(String pid) {
    return new Output(log(pid, "stdout"), log(pid, "stderr"));
  }

  JsonNode checkpoint(String pid, boolean leaveRunning) {
    return expect(200, post(process(pid) + "/checkpoint?leaveRunning=" + leaveRunning)).json();
  }

  /** Restores a checkpointed process; {@code engine} null means the node's default. */
  JsonNode restore(String pid, String engine) {
    if (engine == null) {
      return expect(200, post(process(pid) + "/restore")).json();
    }
    ObjectNode body = JSON.createObjectNode().put("engine", engine);
    return expect(200, postJson(process(pid) + "/restore", body)).json();
  }

  public JsonNode kill(String pid) {
    return expect(200, post(process(pid) + "/kill")).json();
  }

  /** Kills the process unless it has ended already (as it may between a status and the kill). */
  void killIfRunning(String pid) {
    Answer a = post(process(pid) + "/kill");
    if (a.status() != 200 && !(a.status() == 409 && a.text().contains("has already ended"))) {
      expect(200, a);
    }
  }

  /** A file of the process's sandbox, by absolute guest path. */
  byte[] file(String pid, String guestPath) {
    return expect(
            200,
            get(
                process(pid)
                    + "/files?path="
                    + URLEncoder.encode(guestPath, StandardCharsets.UTF_8)))
        .body();
  }

  // ------------------------------------------------------------------ cluster

  /** {@code GET /v1/nodes}: the members, each as the node describes itself. */
  public List<JsonNode> nodes() {
    List<JsonNode> all = new ArrayList<>();
    expect(200, get("/v1/nodes")).json().path("nodes").forEach(all::add);
    return all;
  }

  /**
   * Polls {@code GET /v1/nodes} until it lists {@code count} members, all up and each described by
   * its own agent (its engine is known); returns them. Only then do this node's listings ask every
   * node: a node just (re)started may see the members before it has found their agents.
   */
  List<JsonNode> awaitNodesUp(int count, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      List<JsonNode> members = nodes();
      if (members.size() == count
          && members.stream()
              .allMatch(
                  m ->
                      m.path("status").asText().equals("up")
                          && !m.path("engine").asText().isEmpty())) {
        return members;
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            base + " does not list " + count + " members up within " + timeout + ": " + members);
      }
      DaemonProcess.sleep(200);
    }
  }

  /**
   * {@code POST /v1/processes/{pid}/migrations} with {@code {"to", "strategy", "wait"}} (a null
   * {@code to} or {@code strategy} is left out); the raw answer, for tests of refusals.
   */
  public Answer requestMigration(String pid, String to, String strategy, boolean await) {
    return postJson(process(pid) + "/migrations", migrationBody(to, strategy, await));
  }

  private static ObjectNode migrationBody(String to, String strategy, boolean await) {
    ObjectNode body = JSON.createObjectNode();
    if (to != null) {
      body.put("to", to);
    }
    if (strategy != null) {
      body.put("strategy", strategy);
    }
    return body.put("wait", await);
  }

  /**
   * {@code POST /v1/processes/{pid}/migrations?timeout=…} with {@code {"to": to, "wait": true}}:
   * the node waits up to {@code wait} for the migration to end; the raw answer (200 ended, 202
   * still running at the timeout, 409 refused...).
   */
  public Answer requestMigration(String pid, String to, Duration wait) {
    return requestMigration(pid, to, null, wait);
  }

  /**
   * As {@link #requestMigration(String, String, Duration)} with a {@code strategy} (null: the
   * node's default) and a {@code to} that may be null (the strategy chooses).
   */
  public Answer requestMigration(String pid, String to, String strategy, Duration wait) {
    return postJson(
        process(pid) + "/migrations?timeout=" + wait.toSeconds() + "s",
        migrationBody(to, strategy, true),
        wait.plusSeconds(30));
  }

  /** Starts moving a process to {@code to}; returns the migration's record as accepted (202). */
  JsonNode migrate(String pid, String to) {
    return expect(202, requestMigration(pid, to, null, false)).json();
  }

  /**
   * Moves a process to {@code to} and waits (the node's default wait, 2 min) for the migration to
   * end; returns its final record, whatever the end: committed, aborted or cancelled.
   */
  JsonNode migrateAndWait(String pid, String to) {
    return expect(200, requestMigration(pid, to, null, true)).json();
  }

  /** {@code GET /v1/migrations}: the cluster's migrations, newest first. */
  List<JsonNode> migrations() {
    List<JsonNode> all = new ArrayList<>();
    expect(200, get("/v1/migrations")).json().path("migrations").forEach(all::add);
    return all;
  }

  public JsonNode migration(String id) {
    return expect(200, get("/v1/migrations/" + encode(id))).json();
  }

  /** {@code DELETE /v1/migrations/{id}}, the raw answer. */
  Answer cancelMigration(String id) {
    return send(request("/v1/migrations/" + encode(id)).DELETE().build());
  }

  /**
   * Polls a migration's record (every 20 ms) until {@code condition} holds; returns that record. A
   * record not found yet (just accepted) is asked for again.
   */
  JsonNode awaitMigration(String id, Predicate<JsonNode> condition, String what, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Answer a = get("/v1/migrations/" + encode(id));
      if (a.status() != 404) {
        JsonNode m = expect(200, a).json();
        if (condition.test(m)) {
          return m;
        }
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError(
            "migration "
                + id
                + " did not reach '"
                + what
                + "' within "
                + timeout
                + ": "
                + a.text());
      }
      DaemonProcess.sleep(20);
    }
  }

  /** Waits until the migration has committed, aborted or been cancelled; returns its record. */
  JsonNode awaitMigrationEnd(String id, Duration timeout) {
    return awaitMigration(id, NodeApi::hasEnded, "ended", timeout);
  }

  /** True if a migration record is final: committed, aborted or cancelled. */
  static boolean hasEnded(JsonNode migration) {
    return List.of("committed", "aborted", "cancelled").contains(migration.path("state").asText());
  }

  /**
   * Subscribes to {@code GET /v1/events}; returns once the node has subscribed (its opening comment
   * came), so that no later event is missed. Close it to unsubscribe.
   */
  EventStream events() {
    return new EventStream(this);
  }

  /**
   * The cluster's events as one node serves them (Server-Sent Events), read on a thread of their
   * own: each {@code data:} line parsed as JSON and queued. It does not reconnect.
   */
  static final class EventStream implements AutoCloseable {
    private final BlockingQueue<JsonNode> events = new LinkedBlockingQueue<>();
    private final CountDownLatch subscribed = new CountDownLatch(1);
    private final String source;
    private final Thread reader;
    private volatile Stream<String> lines;
    private volatile Throwable failure;
    private volatile boolean closed;

    private EventStream(NodeApi api) {
      this.source = "GET " + api.base + "/v1/events";
      HttpRequest req = HttpRequest.newBuilder(api.base.resolve("/v1/events")).GET().build();
      this.reader =
          new Thread(
              () -> {
                try {
                  HttpResponse<Stream<String>> r =
                      api.http.send(req, HttpResponse.BodyHandlers.ofLines());
                  if (r.statusCode() != 200) {
                    throw new IOException("HTTP " + r.statusCode());
                  }
                  lines = r.body();
                  if (closed) {
                    lines.close();
                    return;
                  }
                  lines.forEach(
                      line -> {
                        if (line.startsWith(": subscribed")) {
                          subscribed.countDown();
                        } else if (line.startsWith("data:")) {
                          events.add(
                              parse(line.substring(5).strip().getBytes(StandardCharsets.UTF_8)));
                        }
                      });
                } catch (IOException | RuntimeException e) {
                  if (!closed) {
                    failure = e;
                  }
                } catch (InterruptedException e) {
                  // closed
                }
              },
              "ferry-it-events");
      reader.setDaemon(true);
      reader.start();
      try {
        if (!subscribed.await(30, TimeUnit.SECONDS)) {
          close();
          throw new AssertionError(source + ": no ': subscribed' within 30 s (" + failure + ")");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted", e);
      }
    }

    /**
     * Takes events until one satisfies {@code condition}; returns it. Fails after {@code timeout},
     * listing what came.
     */
    JsonNode await(Predicate<JsonNode> condition, String what, Duration timeout) {
      long deadline = System.nanoTime() + timeout.toNanos();
      List<JsonNode> seen = new ArrayList<>();
      try {
        while (true) {
          long left = deadline - System.nanoTime();
          JsonNode e = left > 0 ? events.poll(left, TimeUnit.NANOSECONDS) : null;
          if (e == null) {
            throw new AssertionError(
                source
                    + ": no event '"
                    + what
                    + "' within "
                    + timeout
                    + "; saw "
                    + seen
                    + (failure == null ? "" : "; the stream failed: " + failure));
          }
          if (condition.test(e)) {
            return e;
          }
          seen.add(e);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted", e);
      }
    }

    /** Waits for the event in which migration {@code id} reaches {@code state}; returns it. */
    JsonNode awaitMigration(String id, Predicate<JsonNode> state, String what, Duration timeout) {
      return await(
              e ->
                  e.path("kind").asText().equals("migration")
                      && e.path("migration").path("id").asText().equals(id)
                      && state.test(e.path("migration")),
              "migration " + id + " " + what,
              timeout)
          .path("migration");
    }

    @Override
    public void close() {
      closed = true;
      Stream<String> l = lines;
      if (l != null) {
        l.close();
      }
      reader.interrupt();
    }
  }

  // ------------------------------------------------------------------ plumbing

  Answer get(String pathAndQuery) {
    return send(request(pathAndQuery).GET().build());
  }

  Answer post(String pathAndQuery) {
    return send(request(pathAndQuery).POST(HttpRequest.BodyPublishers.noBody()).build());
  }

  Answer postJson(String path, JsonNode body) {
    return postJson(path, body, REQUEST_TIMEOUT);
  }

  private Answer postJson(String path, JsonNode body, Duration timeout) {
    try {
      return send(
          request(path, timeout)
              .header("Content-Type", "application/json")
              .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
              .build());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  Answer send(HttpRequest req) {
    HttpResponse<byte[]> r = exchange(req);
    return new Answer(req.method() + " " + req.uri(), r.statusCode(), r.body());
  }

  private HttpResponse<byte[]> exchange(HttpRequest req) {
    try {
      return http.send(req, HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new AssertionError(req.method() + " " + req.uri() + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted: " + req.method() + " " + req.uri(), e);
    }
  }

  private HttpRequest.Builder request(String pathAndQuery) {
    return request(pathAndQuery, REQUEST_TIMEOUT);
  }

  private HttpRequest.Builder request(String pathAndQuery, Duration timeout) {
    return HttpRequest.newBuilder(URI.create(base + pathAndQuery)).timeout(timeout);
  }

  private static Answer expect(int status, Answer a) {
    return a.expect(status);
  }

  private static String process(String pid) {
    return "/v1/processes/" + encode(pid);
  }

  private static String encode(String pathSegment) {
    return URLEncoder.encode(pathSegment, StandardCharsets.UTF_8);
  }

  static JsonNode parse(byte[] json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new AssertionError(
          "not JSON: " + new String(json, StandardCharsets.UTF_8) + " (" + e.getMessage() + ")", e);
    }
  }
}
