package dev.ferry.integration.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
import java.util.List;

/**
 * The few routes of a node's HTTP API ({@code /v1}, docs/HTTP-API.md) the benchmark uses, with JSON
 * answers parsed by Jackson. An unexpected status is an {@link ApiError} carrying status and body.
 */
final class BenchClient {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** An answer with another status than the one expected. */
  static final class ApiError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final int status;
    final String body;

    ApiError(String request, int status, String body) {
      super(request + ": HTTP " + status + ": " + body);
      this.status = status;
      this.body = body;
    }
  }

  /** A raw answer. */
  record Answer(String request, int status, byte[] body) {
    JsonNode json() {
      try {
        return JSON.readTree(body);
      } catch (IOException e) {
        throw new IllegalStateException(request + ": not JSON: " + text(), e);
      }
    }

    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    Answer expect(int... statuses) {
      for (int s : statuses) {
        if (status == s) {
          return this;
        }
      }
      throw new ApiError(request, status, text());
    }
  }

  private final URI base;
  private final HttpClient http;

  BenchClient(URI base) {
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

  boolean isHealthy() {
    try {
      HttpResponse<Void> r =
          http.send(
              HttpRequest.newBuilder(base.resolve("/v1/health"))
                  .timeout(Duration.ofSeconds(2))
                  .GET()
                  .build(),
              HttpResponse.BodyHandlers.discarding());
      return r.statusCode() == 200;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /** {@code GET /v1/nodes}: the members as this node sees them. */
  JsonNode nodes() {
    return get("/v1/nodes").expect(200).json().path("nodes");
  }

  /** Uploads a module; returns its hash. */
  String upload(Path wasm) {
    try {
      HttpRequest req =
          request("/v1/modules", Duration.ofMinutes(2))
              .header("Content-Type", "application/wasm")
              .POST(HttpRequest.BodyPublishers.ofByteArray(Files.readAllBytes(wasm)))
              .build();
      return send(req).expect(201).json().path("hash").asText();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Starts a process on this node's default engine; returns its pid. */
  String run(String moduleHash, List<String> args) {
    ObjectNode body = JSON.createObjectNode();
    body.put("module", moduleHash);
    args.forEach(body.putArray("args")::add);
    return postJson("/v1/processes", body, Duration.ofMinutes(1))
        .expect(201)
        .json()
        .path("id")
        .asText();
  }

  JsonNode status(String pid) {
    return get(process(pid)).expect(200).json();
  }

  JsonNode kill(String pid) {
    return send(request(process(pid) + "/kill", Duration.ofMinutes(1))
            .POST(HttpRequest.BodyPublishers.noBody())
            .build())
        .expect(200)
        .json();
  }

  /**
   * {@code POST /v1/processes/{pid}/migrations} with {@code {"to": to, "wait": true}}; the raw
   * answer (200 ended, 202 still running at the timeout, 409 refused...).
   */
  Answer migrate(String pid, String to, Duration timeout) {
    ObjectNode body = JSON.createObjectNode().put("to", to).put("wait", true);
    return postJson(
        process(pid) + "/migrations?timeout=" + timeout.toSeconds() + "s",
        body,
        timeout.plusSeconds(30));
  }

  /** The same without waiting: 202 with the record as it starts. */
  Answer migrateNoWait(String pid, String to) {
    ObjectNode body = JSON.createObjectNode().put("to", to);
    return postJson(process(pid) + "/migrations", body, Duration.ofMinutes(1));
  }

  /** {@code GET /v1/migrations/{id}}. */
  JsonNode migration(String id) {
    return get("/v1/migrations/" + URLEncoder.encode(id, StandardCharsets.UTF_8))
        .expect(200)
        .json();
  }

  // ------------------------------------------------------------------ plumbing

  Answer get(String pathAndQuery) {
    return send(request(pathAndQuery, Duration.ofMinutes(1)).GET().build());
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

  private Answer send(HttpRequest req) {
    try {
      HttpResponse<byte[]> r = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
      return new Answer(req.method() + " " + req.uri(), r.statusCode(), r.body());
    } catch (IOException e) {
      throw new UncheckedIOException(req.method() + " " + req.uri() + " failed: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted: " + req.method() + " " + req.uri(), e);
    }
  }

  private HttpRequest.Builder request(String pathAndQuery, Duration timeout) {
    return HttpRequest.newBuilder(URI.create(base + pathAndQuery)).timeout(timeout);
  }

  private static String process(String pid) {
    return "/v1/processes/" + URLEncoder.encode(pid, StandardCharsets.UTF_8);
  }
}
