package dev.ferry.api.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.http.ApiJson;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The CLI's client of a node's HTTP API. Each method is one request; a failure is a {@link
 * CliException} whose exit code follows the HTTP status (see {@link ExitCodes}) and whose message
 * is the node's own error message, or says that the node cannot be reached.
 *
 * <p>Thread-safe: {@link HttpClient} is, and this class holds nothing else mutable. It does not
 * retry: a request that fails is reported, never repeated (a repeated run would start twice).
 */
public final class ApiClient {
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

  private final URI base;
  private final String token;
  private final HttpClient http;

  /**
   * @param baseUrl the node's API, e.g. {@code http://127.0.0.1:7400}
   * @param token bearer token, or null / empty for none
   * @throws CliException (usage) if the URL is not an http(s) URL with a host
   */
  public ApiClient(String baseUrl, String token) throws CliException {
    this.base = parseBase(baseUrl);
    this.token = token == null || token.isEmpty() ? null : token;
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(CONNECT_TIMEOUT)
            .followRedirects(HttpClient.Redirect.NEVER)
            .build();
  }

  static URI parseBase(String url) throws CliException {
    String trimmed = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    try {
      URI uri = new URI(trimmed);
      String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
      if ((scheme.equals("http") || scheme.equals("https")) && uri.getHost() != null) {
        return uri;
      }
    } catch (URISyntaxException e) {
      // reported below
    }
    throw new CliException(
        ExitCodes.USAGE, "invalid API URL '" + url + "' (expected e.g. http://127.0.0.1:7400)");
  }

  /** The node's base URL. */
  public URI base() {
    return base;
  }

  // ---------------------------------------------------------------- operations

  public JsonNode health() throws CliException {
    return json(send(get("/v1/health")));
  }

  /**
   * Uploads module bytes. (Not with {@code Expect: 100-continue}: Java 17's HttpClient hangs when
   * the answer to it is a final status such as 413; the node answers 413 early instead.)
   */
  public JsonNode uploadModule(byte[] wasm, boolean preemptible) throws CliException {
    HttpRequest req =
        request("/v1/modules?preemptible=" + preemptible)
            .header("Content-Type", "application/wasm")
            .POST(HttpRequest.BodyPublishers.ofByteArray(wasm))
            .build();
    return json(send(req));
  }

  public JsonNode run(Map<String, Object> body) throws CliException {
    return json(send(postJson("/v1/processes", body)));
  }

  public JsonNode list() throws CliException {
    return json(send(get("/v1/processes")));
  }

  public JsonNode status(String pid) throws CliException {
    return json(send(get(processPath(pid))));
  }

  /** One read of a log, from {@code offset}, at most {@code max} bytes, without waiting. */
  public LogRead readLog(String pid, LogStream stream, long offset, int max) throws CliException {
    HttpResponse<byte[]> r =
        send(
            get(
                processPath(pid)
                    + "/logs?stream="
                    + stream.name().toLowerCase(Locale.ROOT)
                    + "&offset="
                    + offset
                    + "&max="
                    + max));
    long next =
        r.headers()
            .firstValue("X-Ferry-Next-Offset")
            .map(Long::parseLong)
            .orElse(offset + r.body().length);
    boolean complete =
        r.headers().firstValue("X-Ferry-Complete").map(Boolean::parseBoolean).orElse(false);
    return new LogRead(r.body(), next, complete);
  }

  /** What one log read returned. */
  public record LogRead(byte[] data, long nextOffset, boolean complete) {}

  /**
   * Streams a log from {@code offset} into {@code out} until the process can write no more,
   * flushing as bytes arrive.
   */
  public void followLog(String pid, LogStream stream, long offset, OutputStream out)
      throws CliException {
    HttpRequest req =
        get(
            processPath(pid)
                + "/logs?follow=true&stream="
                + stream.name().toLowerCase(Locale.ROOT)
                + "&offset="
                + offset);
    HttpResponse<InputStream> r = sendStreaming(req);
    try (InputStream in = r.body()) {
      byte[] buf = new byte[64 * 1024];
      int n;
      while ((n = in.read(buf)) >= 0) {
        out.write(buf, 0, n);
        out.flush();
        if (out instanceof PrintStream ps && ps.checkError()) {
          return; // the reader went away (`ferry logs -f p-1 | head`): stop following
        }
      }
    } catch (IOException e) {
      throw new CliException(
          ExitCodes.ERROR, "the log stream from " + base + " broke off: " + e.getMessage(), e);
    }
  }

  /** The outcome of one {@code /wait}: whether the process is final, and its status. */
  public record WaitResult(boolean done, JsonNode process) {}

  public WaitResult await(String pid, Duration timeout) throws CliException {
    HttpResponse<byte[]> r =
        send(get(processPath(pid) + "/wait?timeout=" + timeout.toMillis() + "ms"));
    return new WaitResult(r.statusCode() == 200, json(r));
  }

  public JsonNode kill(String pid) throws CliException {
    return json(send(post(processPath(pid) + "/kill")));
  }

  public byte[] readFile(String pid, String guestPath) throws CliException {
    return send(get(processPath(pid) + "/files?path=" + encodeQuery(guestPath))).body();
  }

  public JsonNode checkpoint(String pid, boolean leaveRunning) throws CliException {
    return json(send(post(processPath(pid) + "/checkpoint?leaveRunning=" + leaveRunning)));
  }

  public JsonNode restore(String pid, Engine engine) throws CliException {
    if (engine == null) {
      return json(send(post(processPath(pid) + "/restore")));
    }
    return json(send(postJson(processPath(pid) + "/restore", Map.of("engine", engine.wireName()))));
  }

  // ---------------------------------------------------------------- cluster

  public JsonNode nodes() throws CliException {
    return json(send(get("/v1/nodes")));
  }

  /** What a migration request answered: its record, and whether that record is final. */
  public record MigrationStart(boolean ended, JsonNode migration) {}

  /**
   * Starts a migration ({@code body}: {@code to}, {@code strategy}, {@code wait}); when waiting,
   * the node answers once the migration has ended or {@code timeout} has passed.
   */
  public MigrationStart migrate(String pid, Map<String, Object> body, Duration timeout)
      throws CliException {
    HttpResponse<byte[]> r =
        send(postJson(processPath(pid) + "/migrations?timeout=" + timeout.toMillis() + "ms", body));
    return new MigrationStart(r.statusCode() == 200, json(r));
  }

  public JsonNode migrations() throws CliException {
    return json(send(get("/v1/migrations")));
  }

  public JsonNode migration(String id) throws CliException {
    return json(send(get(migrationPath(id))));
  }

  public JsonNode cancelMigration(String id) throws CliException {
    return json(send(request(migrationPath(id)).DELETE().build()));
  }

  public JsonNode commitInDoubt(String id) throws CliException {
    return json(send(post(migrationPath(id) + "/commit")));
  }

  /** Receives the events of {@link #events}; returns false to stop listening. */
  @FunctionalInterface
  public interface EventListener {
    boolean onEvent(String type, String data) throws CliException;
  }

  /**
   * Listens to the node's event stream ({@code GET /v1/events}, Server-Sent Events), handing each
   * event to {@code listener} in order, until the listener returns false (then the connection is
   * closed, and the node unsubscribes) or the node ends the stream (a {@link CliException}).
   * Comments (the heartbeat) and events without data are skipped.
   */
  public void events(EventListener listener) throws CliException {
    HttpResponse<Stream<String>> r =
        exchange(
            request("/v1/events").header("Accept", "text/event-stream").GET().build(),
            HttpResponse.BodyHandlers.ofLines());
    try (Stream<String> lines = r.body()) {
      if (r.statusCode() >= 400) {
        throw failure(
            r.statusCode(), String.join("\n", lines.toList()).getBytes(StandardCharsets.UTF_8));
      }
      String type = "message";
      StringBuilder data = new StringBuilder();
      for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
        String line = it.next();
        if (line.isEmpty()) {
          if (data.length() > 0 && !listener.onEvent(type, data.toString())) {
            return;
          }
          type = "message";
          data.setLength(0);
        } else if (line.startsWith(":")) {
          continue;
        } else {
          int colon = line.indexOf(':');
          String field = colon < 0 ? line : line.substring(0, colon);
          String value = colon < 0 ? "" : line.substring(colon + 1);
          value = value.startsWith(" ") ? value.substring(1) : value;
          if (field.equals("event")) {
            type = value;
          } else if (field.equals("data")) {
            data.append(data.length() > 0 ? "\n" : "").append(value);
          }
        }
      }
    } catch (java.io.UncheckedIOException e) {
      throw new CliException(
          ExitCodes.ERROR,
          "the event stream from " + base + " broke off: " + e.getCause().getMessage(),
          e);
    }
    throw new CliException(ExitCodes.ERROR, "the node at " + base + " ended the event stream");
  }

  // ---------------------------------------------------------------- plumbing

  private static String migrationPath(String id) {
    return "/v1/migrations/" + encodeSegment(id);
  }

  private static String processPath(String pid) {
    return "/v1/processes/" + encodeSegment(pid);
  }

  private HttpRequest.Builder request(String pathAndQuery) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + pathAndQuery));
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    return b;
  }

  private HttpRequest get(String pathAndQuery) {
    return request(pathAndQuery).GET().build();
  }

  private HttpRequest post(String pathAndQuery) {
    return request(pathAndQuery).POST(HttpRequest.BodyPublishers.noBody()).build();
  }

  private HttpRequest postJson(String path, Object body) {
    return request(path)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofByteArray(ApiJson.write(body)))
        .build();
  }

  private HttpResponse<byte[]> send(HttpRequest req) throws CliException {
    HttpResponse<byte[]> r = exchange(req, HttpResponse.BodyHandlers.ofByteArray());
    if (r.statusCode() >= 400) {
      throw failure(r.statusCode(), r.body());
    }
    return r;
  }

  private HttpResponse<InputStream> sendStreaming(HttpRequest req) throws CliException {
    HttpResponse<InputStream> r = exchange(req, HttpResponse.BodyHandlers.ofInputStream());
    if (r.statusCode() >= 400) {
      byte[] body;
      try (InputStream in = r.body()) {
        body = in.readAllBytes();
      } catch (IOException e) {
        body = new byte[0];
      }
      throw failure(r.statusCode(), body);
    }
    return r;
  }

  private <T> HttpResponse<T> exchange(HttpRequest req, HttpResponse.BodyHandler<T> handler)
      throws CliException {
    try {
      return http.send(req, handler);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CliException(ExitCodes.ERROR, "interrupted", e);
    } catch (IOException | RuntimeException e) {
      if (isUnreachable(e)) {
        throw new CliException(
            ExitCodes.UNREACHABLE,
            "cannot reach the Ferry node at "
                + base
                + " ("
                + (e instanceof HttpConnectTimeoutException
                    ? "connection timed out"
                    : "connection refused")
                + "): start one with 'ferry daemon', or point --api (or FERRY_API) at a running"
                + " node",
            e);
      }
      throw new CliException(ExitCodes.ERROR, "request to " + base + " failed: " + describe(e), e);
    }
  }

  private static boolean isUnreachable(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof ConnectException
          || c instanceof HttpConnectTimeoutException
          || c instanceof UnresolvedAddressException) {
        return true;
      }
    }
    return false;
  }

  private static String describe(Throwable e) {
    String m = e.getMessage();
    return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
  }

  /** The node's error message from the JSON body, or the body itself, or the bare status. */
  static CliException failure(int status, byte[] body) {
    String message = null;
    try {
      JsonNode root = ApiJson.mapper().readTree(body);
      JsonNode m = root == null ? null : root.path("error").path("message");
      if (m != null && m.isTextual()) {
        message = m.asText();
      }
    } catch (IOException | RuntimeException e) {
      // not JSON: use the text below
    }
    if (message == null) {
      String text = new String(body, StandardCharsets.UTF_8).strip();
      message = text.isEmpty() ? "the node answered HTTP " + status : text;
      if (message.length() > 500) {
        message = message.substring(0, 500) + "...";
      }
    }
    return new CliException(ExitCodes.forHttpStatus(status), message);
  }

  private static JsonNode json(HttpResponse<byte[]> r) throws CliException {
    try {
      return ApiJson.mapper().readTree(r.body());
    } catch (IOException e) {
      throw new CliException(
          ExitCodes.ERROR, "the node sent a response that is not JSON: " + e.getMessage(), e);
    }
  }

  /** Percent-encodes a path segment (everything but RFC 3986 unreserved characters). */
  static String encodeSegment(String s) {
    StringBuilder b = new StringBuilder();
    for (byte c : s.getBytes(StandardCharsets.UTF_8)) {
      if ((c >= 'a' && c <= 'z')
          || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9')
          || c == '-'
          || c == '.'
          || c == '_'
          || c == '~') {
        b.append((char) c);
      } else {
        b.append('%').append(String.format("%02X", c & 0xff));
      }
    }
    return b.toString();
  }

  /** Percent-encodes a query value, keeping '/' readable. */
  static String encodeQuery(String s) {
    return encodeSegment(s).replace("%2F", "/");
  }
}
