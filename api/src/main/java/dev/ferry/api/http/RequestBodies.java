package dev.ferry.api.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.RunRequest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the JSON request bodies of the API, field by field, so that every mistake is a bad-request
 * {@link FerryException} whose message names the field ({@code "field 'args[1]' must be a
 * string"}). Unknown fields are refused rather than ignored: a typo such as {@code "arg"} must not
 * silently run a program without its arguments.
 */
public final class RequestBodies {
  /** The fields of {@code POST /v1/processes}, in documentation order. */
  public static final List<String> RUN_FIELDS =
      List.of("module", "engine", "args", "env", "files", "paged");

  /** The fields of {@code POST /v1/processes/{pid}/restore}. */
  public static final List<String> RESTORE_FIELDS = List.of("engine");

  /** The fields of {@code POST /v1/processes/{pid}/migrations}. */
  public static final List<String> MIGRATION_FIELDS = List.of("to", "strategy", "wait");

  private RequestBodies() {}

  /**
   * Parses {@code {"module", "engine", "args", "env", "files", "paged"}} into a {@link RunRequest}.
   */
  public static RunRequest runRequest(byte[] body) {
    JsonNode root = parseObject(body, false);
    checkFields(root, RUN_FIELDS);
    JsonNode module = root.get("module");
    if (module == null || module.isNull()) {
      throw FerryException.badRequest(
          "field 'module' is required (the hash returned by POST /v1/modules)");
    }
    if (!module.isTextual() || module.asText().isBlank()) {
      throw FerryException.badRequest("field 'module' must be a non-empty string (a module hash)");
    }
    JsonNode paged = root.get("paged");
    if (paged != null && !paged.isNull() && !paged.isBoolean()) {
      throw FerryException.badRequest("field 'paged' must be true or false");
    }
    return new RunRequest(
        module.asText(),
        engine(root.get("engine")),
        args(root.get("args")),
        env(root.get("env")),
        files(root.get("files")),
        paged != null && paged.asBoolean(false));
  }

  /**
   * Parses the optional body of a restore, {@code {"engine": "compiled"}}; an empty body or a
   * missing / null engine means the node's default and returns null.
   */
  public static Engine restoreEngine(byte[] body) {
    JsonNode root = parseObject(body, true);
    if (root == null) {
      return null;
    }
    checkFields(root, RESTORE_FIELDS);
    return engine(root.get("engine"));
  }

  /**
   * Parses the optional body of a migration, {@code {"to": "n2", "strategy": "data-segment",
   * "wait": false}}; every field is optional, and an empty body is {@link
   * MigrationRequest#DEFAULTS}.
   */
  public static MigrationRequest migrationRequest(byte[] body) {
    JsonNode root = parseObject(body, true);
    if (root == null) {
      return MigrationRequest.DEFAULTS;
    }
    checkFields(root, MIGRATION_FIELDS);
    JsonNode wait = root.get("wait");
    if (wait != null && !wait.isNull() && !wait.isBoolean()) {
      throw FerryException.badRequest("field 'wait' must be true or false");
    }
    return new MigrationRequest(
        optionalName(root, "to", "a node name (see GET /v1/nodes)"),
        optionalName(root, "strategy", "a strategy name such as \"data-segment\""),
        wait != null && wait.asBoolean(false));
  }

  /** A string field that may be absent or null (then null), but not empty or of another type. */
  private static String optionalName(JsonNode root, String field, String what) {
    JsonNode node = root.get(field);
    if (node == null || node.isNull()) {
      return null;
    }
    if (!node.isTextual() || node.asText().isBlank()) {
      throw FerryException.badRequest("field '" + field + "' must be " + what);
    }
    return node.asText();
  }

  private static JsonNode parseObject(byte[] body, boolean emptyAllowed) {
    if (isBlank(body)) {
      if (emptyAllowed) {
        return null;
      }
      throw FerryException.badRequest("request body is empty: expected a JSON object");
    }
    JsonNode root;
    try {
      root = ApiJson.mapper().readTree(body);
    } catch (JsonProcessingException e) {
      String where =
          e.getLocation() == null
              ? ""
              : " at line "
                  + e.getLocation().getLineNr()
                  + ", column "
                  + e.getLocation().getColumnNr();
      throw FerryException.badRequest(
          "request body is not valid JSON" + where + ": " + e.getOriginalMessage());
    } catch (IOException e) {
      throw FerryException.badRequest("request body could not be read: " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw FerryException.badRequest("request body must be a JSON object");
    }
    return root;
  }

  private static boolean isBlank(byte[] body) {
    for (byte b : body) {
      if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
        return false;
      }
    }
    return true;
  }

  private static void checkFields(JsonNode root, List<String> known) {
    Set<String> allowed = Set.copyOf(known);
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!allowed.contains(name)) {
        throw FerryException.badRequest(
            "unknown field '" + name + "' (expected " + String.join(", ", known) + ")");
      }
    }
  }

  private static Engine engine(JsonNode node) {
    if (node == null || node.isNull()) {
      return null;
    }
    if (!node.isTextual()) {
      throw FerryException.badRequest(
          "field 'engine' must be a string: \"interpreter\" or \"compiled\"");
    }
    try {
      return Engine.parse(node.asText());
    } catch (FerryException e) {
      throw FerryException.badRequest("field 'engine': " + e.getMessage());
    }
  }

  private static List<String> args(JsonNode node) {
    if (node == null || node.isNull()) {
      return List.of();
    }
    if (!node.isArray()) {
      throw FerryException.badRequest("field 'args' must be an array of strings");
    }
    List<String> args = new ArrayList<>(node.size());
    for (int i = 0; i < node.size(); i++) {
      JsonNode arg = node.get(i);
      if (!arg.isTextual()) {
        throw FerryException.badRequest("field 'args[" + i + "]' must be a string");
      }
      args.add(arg.asText());
    }
    return Collections.unmodifiableList(args);
  }

  private static Map<String, String> env(JsonNode node) {
    if (node == null || node.isNull()) {
      return Map.of();
    }
    if (!node.isObject()) {
      throw FerryException.badRequest(
          "field 'env' must be an object of strings: {\"NAME\": \"value\"}");
    }
    Map<String, String> env = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String name = e.getKey();
      if (name.isEmpty() || name.indexOf('=') >= 0 || name.indexOf('\0') >= 0) {
        throw FerryException.badRequest(
            "field 'env' has an invalid variable name '" + name + "' (empty, or contains '=')");
      }
      if (!e.getValue().isTextual()) {
        throw FerryException.badRequest("field 'env." + name + "' must be a string");
      }
      env.put(name, e.getValue().asText());
    }
    return Collections.unmodifiableMap(env);
  }

  private static Map<String, byte[]> files(JsonNode node) {
    if (node == null || node.isNull()) {
      return Map.of();
    }
    if (!node.isObject()) {
      throw FerryException.badRequest(
          "field 'files' must be an object of base64 strings: {\"/guest/path\": \"<base64>\"}");
    }
    Map<String, byte[]> files = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String path = e.getKey();
      if (!path.startsWith("/") || path.length() < 2) {
        throw FerryException.badRequest(
            "field 'files' has a guest path '"
                + path
                + "' that is not absolute (e.g. \"/in.txt\")");
      }
      if (!e.getValue().isTextual()) {
        throw FerryException.badRequest("field 'files." + path + "' must be a base64 string");
      }
      try {
        files.put(path, Base64.getDecoder().decode(e.getValue().asText()));
      } catch (IllegalArgumentException bad) {
        throw FerryException.badRequest(
            "field 'files." + path + "' is not valid base64: " + bad.getMessage());
      }
    }
    return Collections.unmodifiableMap(files);
  }
}
