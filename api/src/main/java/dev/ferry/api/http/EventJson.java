package dev.ferry.api.http;

import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.transport.proto.FerryEvent;
import dev.ferry.transport.proto.NodeEvent;
import dev.ferry.transport.proto.ProcessEvent;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.apache.pekko.util.ByteString;

/**
 * How a cluster {@link FerryEvent} is written on {@code GET /v1/events}: one Server-Sent Event,
 * {@code "event: <kind>\ndata: <json>\n\n"}, whose type is the event's kind ({@code node}, {@code
 * process} or {@code migration}) and whose data is one line of JSON in the API's usual mapping
 * (camelCase, ISO-8601 instants, null fields left out; JSON escapes every line break inside a
 * string, so the data is always one line):
 *
 * <pre>
 * {"at": "...Z", "atMicros": 1735787045123456, "node": "n1", "kind": "process",
 *  "process": {"pid": "p-1", "what": "exited", "exitCode": 0, "engine": "compiled"}}
 * </pre>
 *
 * {@code node} is the node that published the event; the kind's own fields are under {@code member}
 * (a node event), {@code process} or {@code migration} (a {@link MigrationInfo}, the same object
 * {@code GET /v1/migrations/{id}} answers). An event of a kind this version does not know (from a
 * newer node) is not sent.
 */
public final class EventJson {
  /** The SSE event types, one per kind of cluster event. */
  public static final String NODE = "node";

  public static final String PROCESS = "process";
  public static final String MIGRATION = "migration";

  /** The comment that opens every stream, sent once the node has subscribed. */
  public static final ByteString OPENING = ByteString.fromString(": subscribed\n\n");

  /** The comment sent when the stream has been quiet for a while. */
  public static final ByteString HEARTBEAT = ByteString.fromString(":\n\n");

  private EventJson() {}

  /** The SSE bytes of {@code e}, or empty for an event of an unknown kind. */
  public static Optional<ByteString> toServerSentEvent(FerryEvent e) {
    return toMap(e)
        .map(
            body ->
                ByteString.fromString("event: " + body.get("kind") + "\ndata: ")
                    .concat(ByteString.fromArray(ApiJson.write(body)))
                    .concat(ByteString.fromString("\n\n")));
  }

  /** The JSON object of {@code e} as a map in field order, or empty for an unknown kind. */
  public static Optional<Map<String, Object>> toMap(FerryEvent e) {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("at", ProtoRecords.instant(e.getAtMicros()));
    body.put("atMicros", e.getAtMicros());
    body.put("node", e.getNode());
    switch (e.getKindCase()) {
      case NODE_EVENT -> {
        body.put("kind", NODE);
        body.put("member", member(e.getNodeEvent()));
      }
      case PROCESS_EVENT -> {
        body.put("kind", PROCESS);
        body.put("process", process(e.getProcessEvent()));
      }
      case MIGRATION -> {
        body.put("kind", MIGRATION);
        body.put("migration", ProtoRecords.migration(e.getMigration()));
      }
      default -> {
        return Optional.empty();
      }
    }
    return Optional.of(body);
  }

  private static Map<String, Object> member(NodeEvent n) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", n.getName());
    putIfSet(m, "address", n.getAddress());
    m.put("status", n.getStatus());
    return m;
  }

  private static Map<String, Object> process(ProcessEvent p) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("pid", p.getPid());
    m.put("what", p.getWhat());
    // proto3 cannot tell 0 from unset: an exit code means something only for "exited".
    if (p.getWhat().equals("exited")) {
      m.put("exitCode", p.getExitCode());
    }
    putIfSet(m, "engine", p.getEngine());
    putIfSet(m, "error", p.getError());
    return m;
  }

  private static void putIfSet(Map<String, Object> m, String key, String value) {
    if (!value.isEmpty()) {
      m.put(key, value);
    }
  }
}
