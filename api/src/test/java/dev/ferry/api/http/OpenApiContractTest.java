package dev.ferry.api.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.ferry.api.FakeClusterService;
import dev.ferry.api.RepoFiles;
import dev.ferry.api.TestServer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * docs/openapi.yaml and the route tree must agree: the same (method, path) set, every documented
 * operation answers (no "no route" 404, no 405) with a documented status, and JSON answers match
 * the documented schemas (fields, required fields, types, enum values).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OpenApiContractTest {
  private static final List<String> METHODS =
      List.of("get", "put", "post", "delete", "patch", "head", "options");
  private static final byte[] WASM = {0, 'a', 's', 'm', 1, 0, 0, 0};

  private static JsonNode spec;
  private static TestServer server;
  private static FakeClusterService service;

  @BeforeAll
  static void start() throws Exception {
    spec = new ObjectMapper(new YAMLFactory()).readTree(RepoFiles.docs("openapi.yaml").toFile());
    server = new TestServer();
    service = server.service;
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  private static Set<Endpoint> documented() {
    Set<Endpoint> set = new LinkedHashSet<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = spec.path("paths").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> path = it.next();
      for (String m : METHODS) {
        if (path.getValue().has(m)) {
          set.add(new Endpoint(m.toUpperCase(Locale.ROOT), path.getKey()));
        }
      }
    }
    return set;
  }

  @Test
  void documentsExactlyTheRoutesServed() {
    Set<String> docs = new TreeSet<>();
    documented().forEach(e -> docs.add(e.toString()));
    Set<String> served = new TreeSet<>();
    server.routes.endpoints().forEach(e -> served.add(e.toString()));
    Set<String> undocumented = new TreeSet<>(served);
    undocumented.removeAll(docs);
    Set<String> notServed = new TreeSet<>(docs);
    notServed.removeAll(served);
    assertTrue(undocumented.isEmpty(), "served but not in docs/openapi.yaml: " + undocumented);
    assertTrue(notServed.isEmpty(), "in docs/openapi.yaml but not served: " + notServed);
  }

  @Test
  void documentsExactlyTheQueryParametersEachRouteTakes() {
    Map<Endpoint, List<String>> served = server.routes.queryParameters();
    for (Endpoint e : documented()) {
      Set<String> docs = new TreeSet<>();
      for (JsonNode p : operation(e).path("parameters")) {
        JsonNode param = resolve(p);
        if (param.path("in").asText().equals("query")) {
          docs.add(param.path("name").asText());
        }
      }
      assertEquals(
          docs,
          new TreeSet<>(served.getOrDefault(e, List.of())),
          e + ": query parameters documented against those the route takes");
    }
  }

  @Test
  void everyOperationDocumentsUnauthorizedAndOnlyJsonErrors() {
    for (Endpoint e : documented()) {
      JsonNode responses = operation(e).path("responses");
      assertTrue(responses.has("401"), e + " must document 401 (the token applies to every route)");
      for (Iterator<String> it = responses.fieldNames(); it.hasNext(); ) {
        String status = it.next();
        if (Integer.parseInt(status) >= 400) {
          JsonNode r = resolve(responses.get(status));
          assertEquals(
              "#/components/schemas/Error",
              r.path("content").path("application/json").path("schema").path("$ref").asText(),
              e + " " + status + " must be a JSON Error");
        }
      }
    }
  }

  @TestFactory
  List<DynamicTest> everyDocumentedOperationAnswersAsDocumented() {
    List<DynamicTest> tests = new ArrayList<>();
    for (Endpoint e : documented()) {
      tests.add(DynamicTest.dynamicTest(e.toString(), () -> callAsDocumented(e)));
    }
    return tests;
  }

  /**
   * Every documented query parameter is really read: an invalid value for it is a 400 whose message
   * names it (a route that ignored the parameter would answer 2xx).
   */
  @TestFactory
  List<DynamicTest> everyDocumentedQueryParameterIsReadByTheRoute() {
    List<DynamicTest> tests = new ArrayList<>();
    for (Endpoint e : documented()) {
      for (JsonNode p : operation(e).path("parameters")) {
        JsonNode param = resolve(p);
        if (!param.path("in").asText().equals("query")) {
          continue;
        }
        String name = param.path("name").asText();
        tests.add(
            DynamicTest.dynamicTest(
                e + " ?" + name,
                () -> {
                  String pid = service.start();
                  String path = e.path().replace("{pid}", pid) + "?" + name + "=not-valid";
                  HttpRequest.BodyPublisher body =
                      e.path().equals("/v1/modules")
                          ? HttpRequest.BodyPublishers.ofByteArray(WASM)
                          : HttpRequest.BodyPublishers.noBody();
                  HttpResponse<String> r =
                      server.client.send(
                          server.request(path).method(e.method(), body).build(),
                          HttpResponse.BodyHandlers.ofString());
                  assertEquals(
                      400, r.statusCode(), e + " ignored ?" + name + "=not-valid: " + r.body());
                  assertTrue(r.body().contains("'" + name + "'"), r.body());
                }));
      }
    }
    return tests;
  }

  private static JsonNode operation(Endpoint e) {
    return spec.path("paths").path(e.path()).path(e.method().toLowerCase(Locale.ROOT));
  }

  /** Builds a request from the operation's parameters and examples, sends it, checks the answer. */
  private void callAsDocumented(Endpoint e) throws Exception {
    JsonNode op = operation(e);
    String pid = service.start("arg");
    service.append(pid, "hello\n");
    service.putFile(pid, "/out.txt", "result\n".getBytes(StandardCharsets.UTF_8));
    if (e.path().endsWith("/restore")) {
      service.checkpoint(pid, false); // only a checkpointed process can be restored
    }
    // A migration that has not ended, so that it can be shown and cancelled.
    String migrationId = startMigration();
    if (e.path().endsWith("/commit")) {
      service.holdInDoubt(migrationId); // only a migration in doubt can be committed by hand
    }

    String path = e.path();
    StringBuilder query = new StringBuilder();
    for (JsonNode p : op.path("parameters")) {
      JsonNode param = resolve(p);
      String name = param.path("name").asText();
      String in = param.path("in").asText();
      if (in.equals("path")) {
        assertTrue(
            path.contains("{" + name + "}"), e + ": path parameter " + name + " not in the path");
        String value =
            switch (name) {
              case "pid" -> pid;
              case "id" -> migrationId;
              default -> param.path("example").asText();
            };
        path = path.replace("{" + name + "}", value);
      } else if (in.equals("query")) {
        assertTrue(param.has("example"), e + ": query parameter " + name + " needs an example");
        query
            .append(query.length() == 0 ? '?' : '&')
            .append(name)
            .append('=')
            .append(URLEncoder.encode(param.path("example").asText(), StandardCharsets.UTF_8));
      }
    }
    assertFalse(path.contains("{"), e + ": undocumented path parameter in " + path);

    HttpRequest.BodyPublisher body = HttpRequest.BodyPublishers.noBody();
    String contentType = null;
    JsonNode content = op.path("requestBody").path("content");
    if (content.has("application/json") && content.path("application/json").has("example")) {
      JsonNode example = content.path("application/json").path("example").deepCopy();
      if (example.has("module")) {
        ((ObjectNode) example).put("module", uploadModule());
      }
      body = HttpRequest.BodyPublishers.ofByteArray(ApiJson.write(example));
      contentType = "application/json";
    } else if (content.has("application/octet-stream")) {
      body = HttpRequest.BodyPublishers.ofByteArray(WASM);
      contentType = "application/octet-stream";
    }
    HttpRequest.Builder req = server.request(path + query).method(e.method(), body);
    if (contentType != null) {
      req.header("Content-Type", contentType);
    }
    HttpResponse<InputStream> r =
        server.client.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
    String actualType = r.headers().firstValue("Content-Type").orElse("");
    byte[] bytes;
    try (InputStream in = r.body()) {
      // An event stream never ends by itself: its first line is enough.
      bytes =
          actualType.equals("text/event-stream")
              ? new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))
                  .readLine()
                  .getBytes(StandardCharsets.UTF_8)
              : in.readAllBytes();
    }
    String text = new String(bytes, StandardCharsets.UTF_8);
    int status = r.statusCode();

    assertFalse(status == 404 && text.contains("no route for"), e + " is not routed: " + text);
    assertFalse(status == 405, e + " answered 405: " + text);
    JsonNode documentedResponse = op.path("responses").path(Integer.toString(status));
    assertFalse(
        documentedResponse.isMissingNode(),
        e + " answered undocumented status " + status + ": " + text);
    assertTrue(
        status < 300,
        e + " should succeed with its documented examples, got " + status + ": " + text);

    JsonNode media = resolve(documentedResponse).path("content");
    assertTrue(media.has(actualType), e + " answered " + actualType + ", documented: " + media);
    if (actualType.equals("application/json")) {
      validate(
          ApiJson.mapper().readTree(bytes),
          media.path(actualType).path("schema"),
          e + " " + status);
    }
  }

  /** Starts moving a new process to the other node; the migration stays pending. */
  private static String startMigration() {
    return service
        .migrate(service.start(), FakeClusterService.OTHER, null)
        .toCompletableFuture()
        .join()
        .id();
  }

  private String uploadModule() throws Exception {
    HttpResponse<byte[]> r =
        server.send(
            server
                .request("/v1/modules")
                .POST(HttpRequest.BodyPublishers.ofByteArray(WASM))
                .build());
    return ApiJson.mapper().readTree(r.body()).path("hash").asText();
  }

  @Test
  void errorAnswersMatchTheErrorSchema() throws Exception {
    HttpResponse<byte[]> r = server.send(server.request("/v1/processes/p-404").GET().build());
    assertEquals(404, r.statusCode());
    validate(ApiJson.mapper().readTree(r.body()), spec.at("/components/schemas/Error"), "404");
    r = server.send(server.request("/v1/health").DELETE().build());
    validate(ApiJson.mapper().readTree(r.body()), spec.at("/components/schemas/Error"), "405");
  }

  @Test
  void finishedProcessesMatchTheSchemaToo() throws Exception {
    String pid = service.start();
    server.post("/v1/processes/" + pid + "/checkpoint?leaveRunning=true", null);
    service.exit(pid, 7);
    HttpResponse<byte[]> r = server.send(server.request("/v1/processes/" + pid).GET().build());
    JsonNode p = ApiJson.mapper().readTree(r.body());
    assertTrue(p.has("endedAt") && p.has("exitCode") && p.has("lastCheckpoint"), p.toString());
    validate(p, spec.at("/components/schemas/ProcessInfo"), "finished process");
  }

  @Test
  void migrationsInEveryEndStateMatchTheSchema() throws Exception {
    String committed = startMigration();
    for (int i = 0; i < 4; i++) {
      service.advance(committed);
    }
    service.abort(startMigration(), "the destination went away");
    startMigration();
    service.holdInDoubt(startMigration());
    HttpResponse<byte[]> r = server.send(server.request("/v1/migrations").GET().build());
    JsonNode all = ApiJson.mapper().readTree(r.body());
    validate(all, spec.at("/components/schemas/MigrationList"), "migrations");
    List<String> states = new ArrayList<>();
    for (JsonNode m : all.path("migrations")) {
      states.add(m.path("state").asText());
    }
    assertTrue(
        states.containsAll(List.of("committed", "aborted", "pending", "in_doubt")),
        states.toString());
  }

  /** Every kind of event the stream sends matches the documented Event schema. */
  @Test
  void eventsMatchTheEventSchema() throws Exception {
    HttpResponse<InputStream> r =
        server.client.send(
            server.request("/v1/events").GET().build(), HttpResponse.BodyHandlers.ofInputStream());
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
      assertEquals(": subscribed", in.readLine());
      service.emit(FakeClusterService.nodeEvent(1, "n2", "unreachable"));
      service.emit(FakeClusterService.processEvent(2, "p-1", "exited", 0));
      service.abort(startMigration(), "the destination went away");
      List<String> kinds = new ArrayList<>();
      while (kinds.size() < 4) {
        String line = in.readLine();
        if (line.startsWith("data: ")) {
          JsonNode event = ApiJson.mapper().readTree(line.substring("data: ".length()));
          validate(event, spec.at("/components/schemas/Event"), "event " + kinds.size());
          kinds.add(event.path("kind").asText());
        }
      }
      assertEquals(List.of("node", "process", "migration", "migration"), kinds);
    }
  }

  // ---------------------------------------------------------------- a small schema checker

  private static JsonNode resolve(JsonNode node) {
    while (node.has("$ref")) {
      String ref = node.path("$ref").asText();
      assertTrue(ref.startsWith("#/"), "only local $refs: " + ref);
      node = spec.at(ref.substring(1));
      assertFalse(node.isMissingNode(), "dangling $ref " + ref);
    }
    return node;
  }

  /** Checks the parts of JSON Schema this API uses: type, properties, required, enum, items. */
  private static void validate(JsonNode value, JsonNode schemaRef, String where) {
    JsonNode schema = resolve(schemaRef);
    if (schema.has("enum")) {
      boolean found = false;
      for (JsonNode allowed : schema.path("enum")) {
        found |= allowed.asText().equals(value.asText());
      }
      assertTrue(found, where + ": '" + value.asText() + "' is not one of " + schema.path("enum"));
    }
    switch (schema.path("type").asText()) {
      case "object" -> {
        assertTrue(value.isObject(), where + ": expected an object, got " + value);
        JsonNode props = schema.path("properties");
        for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> f = it.next();
          if (props.has(f.getKey())) {
            validate(f.getValue(), props.get(f.getKey()), where + "." + f.getKey());
          } else if (schema.path("additionalProperties").isObject()) {
            validate(f.getValue(), schema.path("additionalProperties"), where + "." + f.getKey());
          } else if (schema.path("additionalProperties").isBoolean()
              && !schema.path("additionalProperties").asBoolean()) {
            fail(where + ": field '" + f.getKey() + "' is not documented");
          }
        }
        for (JsonNode required : schema.path("required")) {
          assertTrue(
              value.has(required.asText()),
              where + ": required field '" + required.asText() + "' missing");
        }
      }
      case "array" -> {
        assertTrue(value.isArray(), where + ": expected an array, got " + value);
        int i = 0;
        for (JsonNode item : value) {
          validate(item, schema.path("items"), where + "[" + i++ + "]");
        }
      }
      case "string" -> {
        assertTrue(value.isTextual(), where + ": expected a string, got " + value);
        if (schema.path("format").asText().equals("date-time")) {
          Instant.parse(value.asText());
        }
      }
      case "integer" ->
          assertTrue(value.isIntegralNumber(), where + ": expected an integer, got " + value);
      case "number" -> assertTrue(value.isNumber(), where + ": expected a number, got " + value);
      case "boolean" -> assertTrue(value.isBoolean(), where + ": expected a boolean, got " + value);
      default -> fail(where + ": schema without a type the checker knows: " + schema);
    }
  }
}
