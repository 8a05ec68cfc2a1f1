package dev.ferry.api.http;

import dev.ferry.config.HttpSettings;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.ClusterService;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.NodeInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.transport.proto.FerryEvent;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpMethod;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Allow;
import org.apache.pekko.http.javadsl.model.headers.Location;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.MethodRejection;
import org.apache.pekko.http.javadsl.server.PathMatchers;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * The HTTP API of a node, {@code /v1/...}, over a {@link ClusterService}: the processes of the
 * whole cluster (any node answers for any process), its nodes, migrations between them and the
 * cluster-wide event stream ({@code GET /v1/events}, Server-Sent Events). The route tree is built
 * from one table of {@link Endpoint}s and their handlers, so the list {@link #endpoints()} returns
 * is by construction the set of routes served; {@code docs/openapi.yaml} documents the same set (a
 * test compares them).
 *
 * <p>Every failure is answered as JSON (see {@link ApiErrors}); when the settings carry a token,
 * every request, health included, needs {@code Authorization: Bearer <token>}. Routes that wait
 * ({@code /wait}, followed logs, migrations, events) are not cut by the server's request timeout;
 * they bound their own waiting (the event stream lasts until the client goes away). This class
 * holds no state of its own beyond its settings: it is safe to build once and serve from many
 * connections.
 */
public final class FerryRoutes extends AllDirectives {
  /** How long one read of a followed log waits for new bytes before asking again. */
  public static final Duration FOLLOW_POLL = Duration.ofSeconds(1);

  /** Default and largest {@code max} of a log read. */
  public static final int DEFAULT_LOG_READ = 1 << 20;

  public static final int MAX_LOG_READ = 16 << 20;

  /** Default and longest {@code timeout} of {@code /wait}. */
  public static final Duration DEFAULT_WAIT = Duration.ofSeconds(30);

  public static final Duration MAX_WAIT = Duration.ofMinutes(10);

  /** Headers of a (non-followed) log read. */
  public static final String NEXT_OFFSET_HEADER = "X-Ferry-Next-Offset";

  public static final String COMPLETE_HEADER = "X-Ferry-Complete";

  /** Default {@code timeout} of a migration request that waits for the end; at most MAX_WAIT. */
  public static final Duration DEFAULT_MIGRATION_WAIT = Duration.ofMinutes(2);

  /** How long a cancellation waits for the migration to end before answering 202. */
  public static final Duration CANCEL_WAIT = Duration.ofSeconds(30);

  /**
   * How often a waiting migration request asks for the migration's record. It is answered as soon
   * as the event stream reports the end; asking is for an event that does not come.
   */
  public static final Duration MIGRATION_POLL = Duration.ofMillis(25);

  /** How long the event stream may be quiet before a comment line is sent to keep it open. */
  public static final Duration EVENT_HEARTBEAT = Duration.ofSeconds(15);

  /**
   * Events held for one slow event-stream client; a client that falls further behind is cut off
   * (its stream ends) rather than silently missing events.
   */
  public static final int EVENT_BUFFER = 1024;

  private static final long BODY_READ_TIMEOUT_MILLIS = Duration.ofMinutes(5).toMillis();

  /** How far past the upload limit a refused body is still read, to answer it cleanly. */
  private static final long DRAIN_BEYOND_LIMIT = 64L << 20;

  private final ClusterService service;
  private final String nodeName;

  /** What requests waiting for a migration to end learn from the event stream. */
  private final MigrationEnds migrationEnds;

  private final HttpSettings http;
  private final byte[] tokenDigest;
  private final Duration eventHeartbeat;
  private final List<Handled> table;

  /**
   * A route of the table: what it answers, the query parameters it takes (any other is refused),
   * and the route that answers, given its path params.
   */
  private record Handled(
      Endpoint endpoint, List<String> query, Function<Map<String, String>, Route> handler) {
    Handled(Endpoint endpoint, Function<Map<String, String>, Route> handler) {
      this(endpoint, List.of(), handler);
    }
  }

  public FerryRoutes(ClusterService service, String nodeName, HttpSettings http) {
    this(service, nodeName, http, EVENT_HEARTBEAT);
  }

  /** As {@link #FerryRoutes(ClusterService, String, HttpSettings)}, with another heartbeat. */
  public FerryRoutes(
      ClusterService service, String nodeName, HttpSettings http, Duration eventHeartbeat) {
    this.service = service;
    this.nodeName = nodeName;
    this.http = http;
    this.eventHeartbeat = eventHeartbeat;
    String token = http.token() == null ? "" : http.token();
    this.tokenDigest = token.isEmpty() ? null : sha256(token);
    this.table = buildTable();
    this.migrationEnds = new MigrationEnds(service);
  }

  /** The query parameters each endpoint takes, in table order; any other is a bad request. */
  public Map<Endpoint, List<String>> queryParameters() {
    Map<Endpoint, List<String>> m = new LinkedHashMap<>();
    for (Handled h : table) {
      m.put(h.endpoint(), h.query());
    }
    return Collections.unmodifiableMap(m);
  }

  /** Every (method, path template) this route tree serves, in table order. */
  public List<Endpoint> endpoints() {
    List<Endpoint> list = new ArrayList<>(table.size());
    for (Handled h : table) {
      list.add(h.endpoint());
    }
    return Collections.unmodifiableList(list);
  }

  private List<Handled> buildTable() {
    List<Handled> t = new ArrayList<>();
    t.add(new Handled(new Endpoint("GET", "/v1/health"), p -> health()));
    t.add(
        new Handled(
            new Endpoint("POST", "/v1/modules"), List.of("preemptible"), p -> uploadModule()));
    t.add(new Handled(new Endpoint("POST", "/v1/processes"), p -> run()));
    t.add(new Handled(new Endpoint("GET", "/v1/processes"), p -> list()));
    t.add(new Handled(new Endpoint("GET", "/v1/processes/{pid}"), p -> status(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("GET", "/v1/processes/{pid}/logs"),
            List.of("stream", "offset", "follow", "max"),
            p -> logs(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("GET", "/v1/processes/{pid}/wait"),
            List.of("timeout"),
            p -> await(p.get("pid"))));
    t.add(new Handled(new Endpoint("POST", "/v1/processes/{pid}/kill"), p -> kill(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("GET", "/v1/processes/{pid}/files"),
            List.of("path"),
            p -> file(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("POST", "/v1/processes/{pid}/checkpoint"),
            List.of("leaveRunning"),
            p -> checkpoint(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("POST", "/v1/processes/{pid}/restore"), p -> restore(p.get("pid"))));
    t.add(
        new Handled(
            new Endpoint("POST", "/v1/processes/{pid}/migrations"),
            List.of("wait", "timeout"),
            p -> migrate(p.get("pid"))));
    t.add(new Handled(new Endpoint("GET", "/v1/nodes"), p -> nodes()));
    t.add(new Handled(new Endpoint("GET", "/v1/migrations"), p -> migrations()));
    t.add(new Handled(new Endpoint("GET", "/v1/migrations/{id}"), p -> migration(p.get("id"))));
    t.add(
        new Handled(
            new Endpoint("DELETE", "/v1/migrations/{id}"), p -> cancelMigration(p.get("id"))));
    t.add(
        new Handled(
            new Endpoint("POST", "/v1/migrations/{id}/commit"), p -> commitInDoubt(p.get("id"))));
    t.add(new Handled(new Endpoint("GET", "/v1/events"), p -> events()));
    return Collections.unmodifiableList(t);
  }

  /** The whole tree: error handling, then authentication, then the table. */
  public Route createRoute() {
    List<Route> routes = new ArrayList<>(table.size());
    for (Handled h : table) {
      routes.add(endpointRoute(h));
    }
    Route first = routes.get(0);
    Route[] rest = routes.subList(1, routes.size()).toArray(new Route[0]);
    return handleExceptions(
        exceptionHandler(),
        () ->
            handleRejections(
                rejectionHandler(),
                () ->
                    withRequestTimeoutResponse(
                        this::requestTimedOut, () -> authenticated(() -> concat(first, rest)))));
  }

  // ---------------------------------------------------------------- table to route tree

  private Route endpointRoute(Handled h) {
    List<String> segments = new ArrayList<>();
    for (String s : h.endpoint().path().split("/")) {
      if (!s.isEmpty()) {
        segments.add(s);
      }
    }
    HttpMethod method =
        HttpMethods.lookup(h.endpoint().method())
            .orElseThrow(() -> new IllegalStateException("bad method in " + h.endpoint()));
    return match(
        segments, 0, Map.of(), method, params -> knownQuery(h, () -> h.handler().apply(params)));
  }

  /**
   * Refuses a query parameter the route does not take: a misspelt one ({@code ?leave-running=true})
   * must not silently mean its default.
   */
  private Route knownQuery(Handled h, Supplier<Route> inner) {
    return parameterList(
        query -> {
          for (Map.Entry<String, String> q : query) {
            if (!h.query().contains(q.getKey())) {
              throw FerryException.badRequest(
                  "unknown query parameter '"
                      + q.getKey()
                      + "' for "
                      + h.endpoint().method()
                      + " "
                      + h.endpoint().path()
                      + "; it takes "
                      + (h.query().isEmpty() ? "none" : String.join(", ", h.query())));
            }
          }
          return inner.get();
        });
  }

  /** Matches the template's segments one by one; "{name}" captures a segment as a path param. */
  private Route match(
      List<String> segments,
      int i,
      Map<String, String> params,
      HttpMethod method,
      Function<Map<String, String>, Route> handler) {
    if (i == segments.size()) {
      return pathEnd(() -> method(method, () -> handler.apply(params)));
    }
    String s = segments.get(i);
    if (s.startsWith("{") && s.endsWith("}")) {
      String name = s.substring(1, s.length() - 1);
      return pathPrefix(
          PathMatchers.segment(),
          value -> {
            Map<String, String> next = new LinkedHashMap<>(params);
            next.put(name, value);
            return match(segments, i + 1, next, method, handler);
          });
    }
    return pathPrefix(s, () -> match(segments, i + 1, params, method, handler));
  }

  // ---------------------------------------------------------------- handlers

  private Route health() {
    Map<String, String> body = new LinkedHashMap<>();
    body.put("node", nodeName);
    body.put("status", "up");
    return complete(json(200, body));
  }

  private Route uploadModule() {
    return parameterOptional(
        "preemptible",
        pre -> {
          boolean preemptible = QueryParams.bool("preemptible", pre, false);
          return withBody(
              wasm -> service.uploadModule(wasm, preemptible).thenApply(m -> json(201, m)));
        });
  }

  private Route run() {
    return withBody(
        body -> service.run(RequestBodies.runRequest(body)).thenApply(p -> json(201, p)));
  }

  private Route list() {
    return respond(
        service
            .list()
            .thenApply(
                ps -> {
                  Map<String, List<ProcessInfo>> body = new LinkedHashMap<>();
                  body.put("processes", ps);
                  return json(200, body);
                }));
  }

  private Route status(String pid) {
    return respond(service.status(pid).thenApply(p -> json(200, p)));
  }

  private Route logs(String pid) {
    return parameterMap(
        query -> {
          LogStream stream = QueryParams.stream(param(query, "stream"));
          long offset = QueryParams.nonNegativeLong("offset", param(query, "offset"), 0);
          boolean follow = QueryParams.bool("follow", param(query, "follow"), false);
          int max =
              QueryParams.positiveInt("max", param(query, "max"), DEFAULT_LOG_READ, MAX_LOG_READ);
          return follow ? followLog(pid, stream, offset, max) : readLog(pid, stream, offset, max);
        });
  }

  private static Optional<String> param(Map<String, String> query, String name) {
    return Optional.ofNullable(query.get(name));
  }

  private Route readLog(String pid, LogStream stream, long offset, int max) {
    return respond(
        service
            .readLog(pid, stream, offset, max, Duration.ZERO)
            .thenApply(
                chunk ->
                    HttpResponse.create()
                        .withStatus(StatusCodes.OK)
                        .addHeader(
                            RawHeader.create(NEXT_OFFSET_HEADER, Long.toString(chunk.nextOffset())))
                        .addHeader(
                            RawHeader.create(COMPLETE_HEADER, Boolean.toString(chunk.complete())))
                        .withEntity(ContentTypes.APPLICATION_OCTET_STREAM, chunk.data())));
  }

  /** Where a followed log stands: the next offset to read, and whether the stream has ended. */
  private record Cursor(long offset, boolean ended) {}

  /**
   * A chunked response that streams the log from {@code offset} until the process can write no
   * more. The first read is made before answering, so an unknown pid is a plain 404; then each read
   * waits up to {@link #FOLLOW_POLL} for bytes. The response is not subject to the request timeout
   * once started; the server's idle timeout is off (see {@link FerryHttpServer}) because a quiet
   * program may write nothing for a long time.
   */
  private Route followLog(String pid, LogStream stream, long offset, int max) {
    return withoutRequestTimeout(
        () ->
            respond(
                service
                    .readLog(pid, stream, offset, max, Duration.ZERO)
                    .thenApply(
                        first -> {
                          Source<ByteString, NotUsed> rest =
                              Source.unfoldAsync(
                                  new Cursor(first.nextOffset(), first.complete()),
                                  cursor -> nextChunk(pid, stream, max, cursor));
                          Source<ByteString, NotUsed> all =
                              Source.single(ByteString.fromArray(first.data()))
                                  .concat(rest)
                                  // An empty chunk would end HTTP chunked encoding early.
                                  .filter(bytes -> !bytes.isEmpty());
                          return HttpResponse.create()
                              .withStatus(StatusCodes.OK)
                              .withEntity(
                                  HttpEntities.createChunked(
                                      ContentTypes.APPLICATION_OCTET_STREAM, all));
                        })));
  }

  private CompletionStage<Optional<Pair<Cursor, ByteString>>> nextChunk(
      String pid, LogStream stream, int max, Cursor cursor) {
    if (cursor.ended()) {
      return CompletableFuture.completedFuture(Optional.empty());
    }
    return service
        .readLog(pid, stream, cursor.offset(), max, FOLLOW_POLL)
        .thenApply(
            (LogChunk c) ->
                Optional.of(
                    Pair.create(
                        new Cursor(c.nextOffset(), c.complete()), ByteString.fromArray(c.data()))));
  }

  private Route await(String pid) {
    return parameterOptional(
        "timeout",
        timeoutParam -> {
          Duration timeout = QueryParams.duration("timeout", timeoutParam, DEFAULT_WAIT, MAX_WAIT);
          // A dependent future, so the timeout never completes the service's own future.
          CompletableFuture<Optional<ProcessInfo>> exited =
              service
                  .awaitExit(pid)
                  .toCompletableFuture()
                  .thenApply(Optional::of)
                  .completeOnTimeout(Optional.empty(), timeout.toMillis(), TimeUnit.MILLISECONDS);
          CompletionStage<HttpResponse> response =
              exited.thenCompose(
                  done ->
                      done.isPresent()
                          ? CompletableFuture.completedFuture(json(200, done.get()))
                          : service
                              .status(pid)
                              .thenApply(p -> json(p.state().isFinal() ? 200 : 202, p)));
          return withoutRequestTimeout(() -> respond(response));
        });
  }

  private Route kill(String pid) {
    return respond(service.kill(pid).thenApply(p -> json(200, p)));
  }

  private Route file(String pid) {
    return parameterOptional(
        "path",
        pathParam -> {
          String path = QueryParams.required("path", pathParam);
          if (!path.startsWith("/")) {
            throw FerryException.badRequest(
                "query parameter 'path' must be an absolute guest path such as /out.txt, got '"
                    + path
                    + "'");
          }
          return respond(
              service
                  .readFile(pid, path)
                  .thenApply(
                      bytes ->
                          HttpResponse.create()
                              .withStatus(StatusCodes.OK)
                              .withEntity(ContentTypes.APPLICATION_OCTET_STREAM, bytes)));
        });
  }

  private Route checkpoint(String pid) {
    return parameterOptional(
        "leaveRunning",
        leave -> {
          boolean leaveRunning = QueryParams.bool("leaveRunning", leave, false);
          CompletionStage<CheckpointResult> result = service.checkpoint(pid, leaveRunning);
          return respond(result.thenApply(r -> json(200, r)));
        });
  }

  private Route restore(String pid) {
    return withBody(
        body -> {
          Engine engine = RequestBodies.restoreEngine(body);
          return service.restore(pid, engine).thenApply(p -> json(200, p));
        });
  }

  // ---------------------------------------------------------------- cluster

  private Route nodes() {
    return respond(
        service
            .nodes()
            .thenApply(
                ns -> {
                  Map<String, List<NodeInfo>> body = new LinkedHashMap<>();
                  body.put("nodes", ns);
                  return json(200, body);
                }));
  }

  /**
   * Starts a migration: 202 with its record at once, or, when asked to wait (body {@code "wait":
   * true} or {@code ?wait=true}), 200 with the final record once it has committed, aborted or been
   * cancelled, or 202 with the current one when {@code timeout} passes first. Not subject to the
   * server's request timeout: the service bounds the start, {@code timeout} the waiting.
   */
  private Route migrate(String pid) {
    return parameterMap(
        query -> {
          boolean waitParam = QueryParams.bool("wait", param(query, "wait"), false);
          Duration timeout =
              QueryParams.duration(
                  "timeout", param(query, "timeout"), DEFAULT_MIGRATION_WAIT, MAX_WAIT);
          return withoutRequestTimeout(
              () ->
                  withBody(
                      body -> {
                        MigrationRequest req = RequestBodies.migrationRequest(body);
                        if (!(waitParam || req.await())) {
                          return service
                              .migrate(pid, req.to(), req.strategy())
                              .thenApply(m -> migrationResponse(202, m));
                        }
                        return watchingEnds(
                            ends ->
                                service
                                    .migrate(pid, req.to(), req.strategy())
                                    .thenCompose(m -> awaitMigrationEnd(m, timeout, ends))
                                    .thenApply(
                                        m ->
                                            migrationResponse(
                                                MigrationStates.isEnded(m) ? 200 : 202, m)));
                      }));
        });
  }

  private static HttpResponse migrationResponse(int status, MigrationInfo m) {
    return json(status, m).addHeader(Location.create("/v1/migrations/" + m.id()));
  }

  /**
   * {@code work} given the migrations' ends the event stream reports from now on; that subscription
   * is closed once the work is done, whichever way.
   */
  private <T> CompletionStage<T> watchingEnds(
      Function<MigrationEnds.Watch, CompletionStage<T>> work) {
    MigrationEnds.Watch ends = migrationEnds.watch();
    try {
      return work.apply(ends).whenComplete((v, t) -> ends.close());
    } catch (RuntimeException e) {
      ends.close();
      throw e;
    }
  }

  /**
   * The final record once the event stream reports it ({@code ends}), or once the record asked for
   * every {@link #MIGRATION_POLL} has ended; the current one when {@code timeout} passes first. One
   * question at a time. A migration that is not found yet (just accepted, not yet listed by every
   * node) is asked about again.
   */
  private CompletionStage<MigrationInfo> awaitMigrationEnd(
      MigrationInfo first, Duration timeout, MigrationEnds.Watch ends) {
    CompletableFuture<MigrationInfo> result = new CompletableFuture<>();
    ends.onEnd(first.id(), result::complete);
    pollMigration(first, System.nanoTime() + timeout.toNanos(), result);
    return result;
  }

  private void pollMigration(
      MigrationInfo last, long deadline, CompletableFuture<MigrationInfo> result) {
    if (result.isDone()) {
      return; // the event came first
    }
    if (MigrationStates.isEnded(last) || System.nanoTime() - deadline >= 0) {
      result.complete(last);
      return;
    }
    // A fresh task for every poll, so a service that answers at once does not deepen the stack.
    CompletableFuture.runAsync(
        () -> {
          try {
            service
                .migration(last.id())
                .whenComplete(
                    (m, t) -> {
                      if (t == null) {
                        pollMigration(m, deadline, result);
                      } else if (FerryException.of(t).kind() == FerryException.Kind.NOT_FOUND) {
                        pollMigration(last, deadline, result);
                      } else {
                        result.completeExceptionally(t);
                      }
                    });
          } catch (RuntimeException e) {
            result.completeExceptionally(e);
          }
        },
        CompletableFuture.delayedExecutor(MIGRATION_POLL.toNanos(), TimeUnit.NANOSECONDS));
  }

  private Route migrations() {
    return respond(
        service
            .migrations()
            .thenApply(
                ms -> {
                  Map<String, List<MigrationInfo>> body = new LinkedHashMap<>();
                  body.put("migrations", ms);
                  return json(200, body);
                }));
  }

  private Route migration(String id) {
    return respond(service.migration(id).thenApply(m -> json(200, m)));
  }

  /**
   * Commits by hand a migration held in doubt (its source is gone): 200 with the record, committed.
   * The destination asks the source first, so this may take a few seconds.
   */
  private Route commitInDoubt(String id) {
    return withoutRequestTimeout(
        () -> respond(service.commitInDoubt(id).thenApply(m -> json(200, m))));
  }

  /**
   * Cancels, then waits (at most {@link #CANCEL_WAIT}) for the migration to end, so that the answer
   * is the final record: 200 {@code cancelled} (or {@code aborted}: either way the process runs on
   * at its source), 409 if it committed before the cancellation could stop it, 202 with the current
   * record if it is still ending when the wait runs out.
   */
  private Route cancelMigration(String id) {
    return withoutRequestTimeout(
        () ->
            respond(
                watchingEnds(
                        ends ->
                            service
                                .cancelMigration(id)
                                .thenCompose(m -> awaitMigrationEnd(m, CANCEL_WAIT, ends)))
                    .thenApply(
                        m -> {
                          if (!MigrationStates.isEnded(m)) {
                            return json(202, m);
                          }
                          if (m.state().equals("committed")) {
                            throw FerryException.conflict(
                                "migration "
                                    + id
                                    + " committed before it could be cancelled; "
                                    + m.pid()
                                    + " runs on "
                                    + m.toNode());
                          }
                          return json(200, m);
                        })));
  }

  /**
   * The cluster's events from now on, as Server-Sent Events (see {@link EventJson}):
   *
   * <pre>
   *   : subscribed                  once the node has subscribed; every later event is sent
   *
   *   event: process                one event: its kind, then its JSON on one line
   *   data: {"at": ..., "process": {...}}
   *
   *   :                             a heartbeat after every eventHeartbeat of quiet
   * </pre>
   *
   * Each request subscribes when its response starts and unsubscribes when the stream ends for any
   * reason: the client went away (the node notices at the next event or heartbeat it writes), or it
   * fell {@link #EVENT_BUFFER} events behind (its stream is then cut, so that it knows it missed
   * some). The heartbeat keeps proxies from closing a quiet connection.
   *
   * <p>The bytes are written here rather than by Pekko's {@code EventStreamMarshalling}, whose
   * keep-alive is an empty {@code data:} event rather than a comment and which writes {@code data:}
   * before {@code event:}; SSE clients read both the same, line-oriented scripts do not.
   */
  private Route events() {
    Source<ByteString, NotUsed> events =
        Source.<FerryEvent>queue(EVENT_BUFFER)
            .mapMaterializedValue(queue -> service.subscribe(e -> offer(queue, e)))
            .watchTermination(
                (subscription, done) -> {
                  done.whenComplete((ok, failure) -> subscription.close());
                  return NotUsed.getInstance();
                })
            .mapConcat(e -> EventJson.toServerSentEvent(e).map(List::of).orElse(List.of()));
    // The queue is materialized, so subscribed, before the first element flows: the opening
    // comment reaches the client only once it can no longer miss an event.
    Source<ByteString, NotUsed> stream =
        events
            .prepend(Source.single(EventJson.OPENING))
            .keepAlive(eventHeartbeat, () -> EventJson.HEARTBEAT);
    HttpResponse response =
        HttpResponse.create()
            .withStatus(StatusCodes.OK)
            .addHeader(RawHeader.create("Cache-Control", "no-cache"))
            .withEntity(
                HttpEntities.createChunked(
                    ContentTypes.create(MediaTypes.TEXT_EVENT_STREAM), stream));
    return withoutRequestTimeout(() -> complete(response));
  }

  private static void offer(BoundedSourceQueue<FerryEvent> queue, FerryEvent e) {
    if (queue.offer(e) == QueueOfferResult.dropped()) {
      queue.fail(
          new IllegalStateException(
              "event stream client is more than " + EVENT_BUFFER + " events behind"));
    }
  }

  // ---------------------------------------------------------------- helpers

  /** Completes with the response, or with the JSON error the stage failed with. */
  private Route respond(CompletionStage<HttpResponse> response) {
    return completeWithFuture(
        response.exceptionally(t -> ApiErrors.fromThrowable(t, http.maxUploadBytes())));
  }

  /**
   * Reads the whole request body, at most {@code ferry.http.max-upload-bytes}: a larger one,
   * announced or not (chunked), is refused with 413 without being kept. It is read through and
   * dropped up to 64 MiB past the limit, so that the client, still sending, gets the answer; a body
   * announced larger than that, or one whose client waits for {@code 100 Continue}, is answered at
   * once.
   */
  private Route withBody(Function<byte[], CompletionStage<HttpResponse>> handler) {
    long max = http.maxUploadBytes();
    return extractMaterializer(
        mat ->
            extractRequest(
                request -> {
                  var entity = request.entity();
                  OptionalLong declared = entity.getContentLengthOption();
                  boolean expectsContinue =
                      request
                          .getHeader("Expect")
                          .map(h -> h.value().equalsIgnoreCase("100-continue"))
                          .orElse(false);
                  if (declared.isPresent()
                      && declared.getAsLong() > max
                      && (expectsContinue || declared.getAsLong() > max + DRAIN_BEYOND_LIMIT)) {
                    // It waits for a 100 Continue: it never sends the body. Or it is too large to
                    // read through: answered at once, and the connection closed.
                    return complete(ApiErrors.tooLarge(max));
                  }
                  // At most max bytes are kept; a body over the limit is read on and dropped (up to
                  // DRAIN_BEYOND_LIMIT past it), so that the client, still sending, gets the 413
                  // and not a connection reset.
                  CompletionStage<Body> read =
                      entity
                          .withSizeLimit(max + DRAIN_BEYOND_LIMIT)
                          .getDataBytes()
                          .completionTimeout(Duration.ofMillis(BODY_READ_TIMEOUT_MILLIS))
                          .runWith(
                              org.apache.pekko.stream.javadsl.Sink.fold(new Body(max), Body::add),
                              mat);
                  return respond(
                      read.thenCompose(
                          b ->
                              b.tooLarge()
                                  ? java.util.concurrent.CompletableFuture.completedFuture(
                                      ApiErrors.tooLarge(max))
                                  : handler.apply(b.bytes())));
                }));
  }

  /** A request body as it is read: kept up to a limit, past it only counted. */
  private static final class Body {
    private final long max;
    private final org.apache.pekko.util.ByteStringBuilder kept =
        org.apache.pekko.util.ByteString.createBuilder();
    private long seen;

    Body(long max) {
      this.max = max;
    }

    Body add(org.apache.pekko.util.ByteString chunk) {
      seen += chunk.size();
      if (seen <= max) {
        kept.append(chunk);
      }
      return this;
    }

    boolean tooLarge() {
      return seen > max;
    }

    byte[] bytes() {
      return kept.result().toArray();
    }
  }

  private static HttpResponse json(int status, Object body) {
    return HttpResponse.create()
        .withStatus(StatusCodes.get(status))
        .withEntity(ContentTypes.APPLICATION_JSON, ApiJson.write(body));
  }

  private Route authenticated(Supplier<Route> inner) {
    if (tokenDigest == null) {
      return inner.get();
    }
    return optionalHeaderValueByName(
        "Authorization",
        header -> {
          if (header.isPresent() && tokenMatches(header.get())) {
            return inner.get();
          }
          String why =
              header.isPresent()
                  ? "wrong bearer token"
                  : "missing 'Authorization: Bearer <token>' header";
          HttpResponse r =
              ApiErrors.of(
                      FerryException.Kind.UNAUTHORIZED,
                      why + " (this node requires the token set in ferry.http.token)")
                  .addHeader(RawHeader.create("WWW-Authenticate", "Bearer realm=\"ferry\""));
          return complete(r);
        });
  }

  /** Constant-time comparison of digests, so neither content nor length leaks through timing. */
  private boolean tokenMatches(String header) {
    String prefix = "bearer ";
    if (header.length() < prefix.length()
        || !header.substring(0, prefix.length()).toLowerCase(Locale.ROOT).equals(prefix)) {
      return false;
    }
    String presented = header.substring(prefix.length()).trim();
    return MessageDigest.isEqual(tokenDigest, sha256(presented));
  }

  private static byte[] sha256(String s) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is always available", e);
    }
  }

  private ExceptionHandler exceptionHandler() {
    return ExceptionHandler.newBuilder()
        .matchAny(t -> complete(ApiErrors.fromThrowable(t, http.maxUploadBytes())))
        .build();
  }

  /**
   * Unknown path: 404 JSON; known path, wrong method: 405 JSON with {@code Allow}; any other
   * rejection: Pekko's own status and message, rewrapped as JSON.
   */
  private RejectionHandler rejectionHandler() {
    return RejectionHandler.newBuilder()
        .handleAll(
            MethodRejection.class,
            rejections ->
                extractRequest(
                    req -> {
                      List<HttpMethod> allowed = new ArrayList<>();
                      List<String> names = new ArrayList<>();
                      for (MethodRejection r : rejections) {
                        allowed.add(r.supported());
                        names.add(r.supported().name());
                      }
                      HttpResponse resp =
                          ApiErrors.of(
                                  405,
                                  ApiErrors.METHOD_NOT_ALLOWED,
                                  "method "
                                      + req.method().name()
                                      + " is not allowed on "
                                      + req.getUri().path()
                                      + "; allowed: "
                                      + String.join(", ", names))
                              .addHeader(Allow.create(allowed.toArray(new HttpMethod[0])));
                      return complete(resp);
                    }))
        .handleNotFound(extractRequest(req -> complete(noRoute(req))))
        .build()
        .withFallback(RejectionHandler.defaultHandler().mapRejectionResponse(FerryRoutes::asJson))
        .seal();
  }

  /** The 404 for a path no route serves; its message starts with "no route". */
  static HttpResponse noRoute(HttpRequest req) {
    return ApiErrors.of(
        FerryException.Kind.NOT_FOUND,
        "no route for "
            + req.method().name()
            + " "
            + req.getUri().path()
            + " (see docs/HTTP-API.md)");
  }

  /** Rewraps a plain-text response from Pekko's default handler as a JSON error. */
  private static HttpResponse asJson(HttpResponse plain) {
    if (plain.entity().getContentType().equals(ContentTypes.APPLICATION_JSON)) {
      return plain;
    }
    String message = "request rejected";
    if (plain.entity() instanceof org.apache.pekko.http.javadsl.model.HttpEntity.Strict strict) {
      message = strict.getData().utf8String();
    }
    int status = plain.status().intValue();
    List<HttpHeader> headers = new ArrayList<>();
    plain.getHeaders().forEach(headers::add);
    return ApiErrors.of(status, ApiErrors.kindFor(status), message).addHeaders(headers);
  }

  private HttpResponse requestTimedOut(HttpRequest req) {
    return ApiErrors.of(
        FerryException.Kind.TIMEOUT,
        "the node did not answer "
            + req.method().name()
            + " "
            + req.getUri().path()
            + " in time; the operation may still complete (check with GET /v1/processes)");
  }
}
