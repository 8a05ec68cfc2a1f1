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
import java.util.List;
import java.util.function.Predicate;

/**
 * A small client of a node's HTTP API ({@code /v1}, see docs/HTTP-API.md) for tests: one method per
 * route, JSON answers parsed with Jackson. Any answer other than the expected status fails the test
 * with the method, path, status and body; {@link #send} gives the raw answer when the status is
 * what is being tested. It does not retry.
 */
final class NodeApi {
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
  record Answer(String request, int status, byte[] body) {
    JsonNode json() {
      return parse(body);
    }

    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  private final URI base;
  private final HttpClient http;

  NodeApi(URI base) {
    this.base = base;
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
  }

  URI base() {
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
  String upload(Path wasm) {
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
  String run(String moduleHash, List<String> args) {
    return run(moduleHash, args, null);
  }

  /** Starts a process; {@code engine} null means the node's default. Returns its pid. */
  String run(String moduleHash, List<String> args, String engine) {
    ObjectNode body = JSON.createObjectNode();
    body.put("module", moduleHash);
    if (engine != null) {
      body.put("engine", engine);
    }
    args.forEach(body.putArray("args")::add);
    return expect(201, postJson("/v1/processes", body)).json().path("id").asText();
  }

  JsonNode status(String pid) {
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
  byte[] log(String pid, String stream) {
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

  JsonNode kill(String pid) {
    return expect(200, post(process(pid) + "/kill")).json();
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

  // ------------------------------------------------------------------ plumbing

  Answer get(String pathAndQuery) {
    return send(request(pathAndQuery).GET().build());
  }

  Answer post(String pathAndQuery) {
    return send(request(pathAndQuery).POST(HttpRequest.BodyPublishers.noBody()).build());
  }

  Answer postJson(String path, JsonNode body) {
    try {
      return send(
          request(path)
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
    return HttpRequest.newBuilder(URI.create(base + pathAndQuery)).timeout(REQUEST_TIMEOUT);
  }

  private static Answer expect(int status, Answer a) {
    if (a.status() != status) {
      throw new AssertionError(
          a.request() + ": expected HTTP " + status + " but got " + a.status() + ": " + a.text());
    }
    return a;
  }

  private static String process(String pid) {
    return "/v1/processes/" + URLEncoder.encode(pid, StandardCharsets.UTF_8);
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
