package dev.ferry.node.service;

import dev.ferry.transport.proto.CheckpointInfo;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.ProcessRecord;
import java.time.Instant;
import java.util.List;
import java.util.Locale;

/**
 * The service's records built from the Protobuf messages a node stores and sends (one place, so a
 * process or migration reads the same wherever it is shown). Timestamps travel as microseconds
 * since the epoch; 0 means "not set".
 */
public final class ProtoRecords {
  private ProtoRecords() {}

  /**
   * A process as clients see it, from its record, the current lengths of its logs, its paging
   * file's status (null if it has none) and what of its output waits for the store (null or empty
   * if nothing: {@link ProcessInfo#outputHeld}).
   */
  public static ProcessInfo processInfo(
      ProcessRecord r,
      long stdoutBytes,
      long stderrBytes,
      dev.ferry.transport.proto.PagingStatus paging,
      String outputHeld) {
    return new ProcessInfo(
        r.getId(),
        ProcessState.valueOf(r.getState().name()),
        Engine.parse(r.getEngine()),
        r.getNode(),
        r.getModuleHash(),
        List.copyOf(r.getArgsList()),
        r.getHasExitCode() ? r.getExitCode() : null,
        stdoutBytes,
        stderrBytes,
        instant(r.getStartedAtMicros()),
        r.getEndedAtMicros() == 0 ? null : instant(r.getEndedAtMicros()),
        r.hasLastCheckpoint() ? checkpoint(r.getId(), r.getLastCheckpoint()) : null,
        emptyToNull(r.getError()),
        paging == null ? null : paging(paging),
        emptyToNull(outputHeld));
  }

  public static PagingInfo paging(dev.ferry.transport.proto.PagingStatus s) {
    List<PagingInfo.Replica> replicas = new java.util.ArrayList<>();
    for (var r : s.getReplicasList()) {
      replicas.add(new PagingInfo.Replica(r.getNode(), r.getState(), r.getPages()));
    }
    return new PagingInfo(
        s.getPageSize(),
        s.getPages(),
        s.getResident(),
        s.getDirty(),
        s.getStored(),
        s.getFaults(),
        s.getFlushed(),
        replicas);
  }

  public static dev.ferry.transport.proto.PagingStatus paging(PagingInfo p) {
    var b =
        dev.ferry.transport.proto.PagingStatus.newBuilder()
            .setPageSize(p.pageSize())
            .setPages(p.pages())
            .setResident(p.resident())
            .setDirty(p.dirty())
            .setStored(p.stored())
            .setFaults(p.faults())
            .setFlushed(p.flushed());
    for (PagingInfo.Replica r : p.replicas()) {
      b.addReplicas(
          dev.ferry.transport.proto.ReplicaStatus.newBuilder()
              .setNode(r.node())
              .setState(r.state())
              .setPages(r.pages()));
    }
    return b.build();
  }

  public static CheckpointResult checkpoint(String pid, CheckpointInfo c) {
    return new CheckpointResult(
        pid,
        c.getFreezeMicros(),
        c.getCaptureMicros(),
        c.getWriteMicros(),
        c.getImageBytes(),
        c.getMemoryPages(),
        c.getLeftRunning());
  }

  /** A migration as clients see it; a record not yet given a state reads as pending. */
  public static MigrationInfo migration(MigrationRecord r) {
    return new MigrationInfo(
        r.getId(),
        r.getPid(),
        r.getFromNode(),
        r.getToNode(),
        r.getStrategy(),
        r.getState() == MigrationRecord.State.STATE_UNSPECIFIED
            ? "pending"
            : r.getState().name().toLowerCase(Locale.ROOT),
        r.getRequestedAtMicros() == 0 ? null : instant(r.getRequestedAtMicros()),
        r.getFinishedAtMicros() == 0 ? null : instant(r.getFinishedAtMicros()),
        r.getFreezeMicros(),
        r.getCaptureMicros(),
        r.getTransferMicros(),
        r.getRestoreMicros(),
        r.getTotalFreezeMicros(),
        r.getTotalMicros(),
        r.getBytesMoved(),
        r.getImageBytes(),
        emptyToNull(r.getFromEngine()),
        emptyToNull(r.getToEngine()),
        emptyToNull(r.getError()),
        r.getStreamMicros(),
        r.getStoreMicros(),
        r.getStrategy().isEmpty() || r.getStrategy().equals("data-segment")
            ? null
            : new MigrationInfo.Pages(
                r.getPagesDirtyAtFreeze(),
                r.getPagesBeforeFreeze(),
                r.getPagesDuringFreeze(),
                r.getPagesAfterFreeze(),
                r.getRounds(),
                r.getRemoteFaultsAfterResume(),
                r.getBytesDuringFreeze(),
                r.getBytesRemaining(),
                List.copyOf(r.getReplicasList())));
  }

  public static Instant instant(long micros) {
    return Instant.ofEpochSecond(
        Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1000);
  }

  public static long micros(Instant t) {
    return t == null ? 0 : t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }

  public static long nowMicros() {
    return micros(Instant.now());
  }

  private static String emptyToNull(String s) {
    return s == null || s.isEmpty() ? null : s;
  }
}
