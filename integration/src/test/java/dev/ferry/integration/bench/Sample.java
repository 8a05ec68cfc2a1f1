package dev.ferry.integration.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.time.Instant;

/**
 * One migration as its record (MigrationInfo, {@code GET /v1/migrations/{id}}) reported it, plus
 * what the benchmark saw from outside.
 *
 * @param seq its number within its size, from 1, warm-ups included
 * @param streamMicros of the transfer, receiving the chunks (first to last), as the destination
 *     measured it
 * @param storeMicros of the transfer, verifying, parsing and storing the bundle durably (fsync) at
 *     the destination
 * @param warmUp whether it was discarded as a warm-up
 * @param roundTripMicros from sending the POST to having the final record (client side)
 * @param startDelayMicros from sending the POST to the record's {@code requestedAt} (wall clocks of
 *     the same machine)
 * @param answerDelayMicros from the record's {@code finishedAt} to having the final record
 * @param requestedAt the record's {@code requestedAt} (ISO-8601), for matching with node logs
 * @param finishedAt the record's {@code finishedAt}
 */
record Sample(
    long kib,
    int seq,
    boolean warmUp,
    String id,
    String fromNode,
    String toNode,
    String state,
    long freezeMicros,
    long captureMicros,
    long transferMicros,
    long restoreMicros,
    long totalFreezeMicros,
    long totalMicros,
    long streamMicros,
    long storeMicros,
    long bytesMoved,
    long imageBytes,
    String fromEngine,
    String toEngine,
    String error,
    long roundTripMicros,
    long startDelayMicros,
    long answerDelayMicros,
    String requestedAt,
    String finishedAt) {

  static Sample of(
      long kib,
      int seq,
      boolean warmUp,
      JsonNode m,
      Instant sent,
      Instant answered,
      long roundTripMicros) {
    return new Sample(
        kib,
        seq,
        warmUp,
        m.path("id").asText(),
        m.path("fromNode").asText(),
        m.path("toNode").asText(),
        m.path("state").asText(),
        m.path("freezeMicros").asLong(),
        m.path("captureMicros").asLong(),
        m.path("transferMicros").asLong(),
        m.path("restoreMicros").asLong(),
        m.path("totalFreezeMicros").asLong(),
        m.path("totalMicros").asLong(),
        m.path("streamMicros").asLong(),
        m.path("storeMicros").asLong(),
        m.path("bytesMoved").asLong(),
        m.path("imageBytes").asLong(),
        m.path("fromEngine").asText(""),
        m.path("toEngine").asText(""),
        m.path("error").isNull() || m.path("error").isMissingNode() ? "" : m.path("error").asText(),
        roundTripMicros,
        micros(sent, instant(m.path("requestedAt"))),
        micros(instant(m.path("finishedAt")), answered),
        m.path("requestedAt").asText(""),
        m.path("finishedAt").asText(""));
  }

  private static Instant instant(JsonNode n) {
    try {
      return n.isTextual() ? Instant.parse(n.asText()) : null;
    } catch (java.time.format.DateTimeParseException e) {
      return null;
    }
  }

  private static long micros(Instant from, Instant to) {
    return from == null || to == null ? 0 : Duration.between(from, to).toNanos() / 1000;
  }

  boolean committed() {
    return state.equals("committed");
  }

  /** The migration's time outside its four phases: prepare, placement, messages, commit. */
  long otherMicros() {
    return totalMicros - freezeMicros - captureMicros - transferMicros - restoreMicros;
  }

  /**
   * The part of the transfer the destination did not see: asking whether it has the module,
   * building and serializing the bundle at the source, the first chunk's way, the last answer's.
   */
  long sourceSideMicros() {
    return transferMicros - streamMicros - storeMicros;
  }

  /** Bytes moved per microsecond of transfer = MB/s (10^6 bytes per second). */
  double transferMBps() {
    return transferMicros == 0 ? 0 : (double) bytesMoved / transferMicros;
  }

  static String csvHeader() {
    return "kib,seq,warm_up,id,from_node,to_node,state,freeze_us,capture_us,transfer_us,restore_us,"
        + "total_freeze_us,total_us,other_us,stream_us,store_us,bytes_moved,image_bytes,from_engine,"
        + "to_engine,"
        + "round_trip_us,start_delay_us,answer_delay_us,requested_at,finished_at,error";
  }

  String csv() {
    return String.join(
        ",",
        Long.toString(kib),
        Integer.toString(seq),
        Boolean.toString(warmUp),
        id,
        fromNode,
        toNode,
        state,
        Long.toString(freezeMicros),
        Long.toString(captureMicros),
        Long.toString(transferMicros),
        Long.toString(restoreMicros),
        Long.toString(totalFreezeMicros),
        Long.toString(totalMicros),
        Long.toString(otherMicros()),
        Long.toString(streamMicros),
        Long.toString(storeMicros),
        Long.toString(bytesMoved),
        Long.toString(imageBytes),
        fromEngine,
        toEngine,
        Long.toString(roundTripMicros),
        Long.toString(startDelayMicros),
        Long.toString(answerDelayMicros),
        requestedAt,
        finishedAt,
        '"' + error.replace("\"", "'") + '"');
  }
}
