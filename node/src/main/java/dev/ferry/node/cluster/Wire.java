package dev.ferry.node.cluster;

import com.google.protobuf.ByteString;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.MigrationInfo;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.transport.proto.CheckpointInfo;
import dev.ferry.transport.proto.CheckpointMsg;
import dev.ferry.transport.proto.ErrorMsg;
import dev.ferry.transport.proto.LogChunkMsg;
import dev.ferry.transport.proto.MigrationRecord;
import dev.ferry.transport.proto.ProcessInfoMsg;
import dev.ferry.transport.proto.ProcessRecord;
import dev.ferry.transport.proto.ProcessReply;
import java.time.Instant;
import java.util.Locale;

/** Conversions between the service's records and the Protobuf messages that cross nodes. */
final class Wire {
  private Wire() {}

  static ProcessInfoMsg info(ProcessInfo i) {
    ProcessRecord.Builder r =
        ProcessRecord.newBuilder()
            .setId(i.id())
            .setModuleHash(i.moduleHash() == null ? "" : i.moduleHash())
            .setEngine(i.engine().wireName())
            .addAllArgs(i.args())
            .setState(ProcessRecord.State.valueOf(i.state().name()))
            .setNode(i.node() == null ? "" : i.node())
            .setStartedAtMicros(micros(i.startedAt()))
            .setEndedAtMicros(i.endedAt() == null ? 0 : micros(i.endedAt()));
    if (i.exitCode() != null) {
      r.setHasExitCode(true).setExitCode(i.exitCode());
    }
    if (i.error() != null) {
      r.setError(i.error());
    }
    if (i.lastCheckpoint() != null) {
      r.setLastCheckpoint(checkpointInfo(i.lastCheckpoint()));
    }
    return ProcessInfoMsg.newBuilder()
        .setRecord(r)
        .setStdoutBytes(i.stdoutBytes())
        .setStderrBytes(i.stderrBytes())
        .build();
  }

  static ProcessInfo info(ProcessInfoMsg m) {
    ProcessRecord r = m.getRecord();
    return new ProcessInfo(
        r.getId(),
        ProcessState.valueOf(r.getState().name()),
        Engine.parse(r.getEngine()),
        r.getNode(),
        r.getModuleHash(),
        java.util.List.copyOf(r.getArgsList()),
        r.getHasExitCode() ? r.getExitCode() : null,
        m.getStdoutBytes(),
        m.getStderrBytes(),
        instant(r.getStartedAtMicros()),
        r.getEndedAtMicros() == 0 ? null : instant(r.getEndedAtMicros()),
        r.hasLastCheckpoint() ? checkpoint(r.getId(), r.getLastCheckpoint()) : null,
        r.getError().isEmpty() ? null : r.getError());
  }

  static CheckpointInfo checkpointInfo(CheckpointResult c) {
    return CheckpointInfo.newBuilder()
        .setFreezeMicros(c.freezeMicros())
        .setCaptureMicros(c.captureMicros())
        .setWriteMicros(c.writeMicros())
        .setImageBytes(c.imageBytes())
        .setMemoryPages(c.memoryPages())
        .setLeftRunning(c.leftRunning())
        .build();
  }

  static CheckpointResult checkpoint(String pid, CheckpointInfo c) {
    return new CheckpointResult(
        pid,
        c.getFreezeMicros(),
        c.getCaptureMicros(),
        c.getWriteMicros(),
        c.getImageBytes(),
        c.getMemoryPages(),
        c.getLeftRunning());
  }

  static ProcessReply reply(ProcessInfo i) {
    return ProcessReply.newBuilder().setInfo(info(i)).build();
  }

  static ProcessReply reply(LogChunk c) {
    return ProcessReply.newBuilder()
        .setLogChunk(
            LogChunkMsg.newBuilder()
                .setOffset(c.offset())
                .setData(ByteString.copyFrom(c.data()))
                .setNextOffset(c.nextOffset())
                .setComplete(c.complete()))
        .build();
  }

  static LogChunk logChunk(LogChunkMsg m) {
    return new LogChunk(
        m.getOffset(), m.getData().toByteArray(), m.getNextOffset(), m.getComplete());
  }

  static ProcessReply reply(CheckpointResult c) {
    return ProcessReply.newBuilder()
        .setCheckpoint(CheckpointMsg.newBuilder().setPid(c.pid()).setInfo(checkpointInfo(c)))
        .build();
  }

  static ErrorMsg error(Throwable t) {
    FerryException e = FerryException.of(t);
    return ErrorMsg.newBuilder()
        .setKind(e.kind().name())
        .setMessage(e.getMessage() == null ? e.toString() : e.getMessage())
        .build();
  }

  static ProcessReply replyError(Throwable t) {
    return ProcessReply.newBuilder().setError(error(t)).build();
  }

  static FerryException exception(ErrorMsg m) {
    FerryException.Kind kind;
    try {
      kind = FerryException.Kind.valueOf(m.getKind());
    } catch (IllegalArgumentException e) {
      kind = FerryException.Kind.INTERNAL;
    }
    return new FerryException(kind, m.getMessage());
  }

  static MigrationInfo migration(MigrationRecord r) {
    return new MigrationInfo(
        r.getId(),
        r.getPid(),
        r.getFromNode(),
        r.getToNode(),
        r.getStrategy(),
        r.getState().name().toLowerCase(Locale.ROOT),
        instant(r.getRequestedAtMicros()),
        r.getFinishedAtMicros() == 0 ? null : instant(r.getFinishedAtMicros()),
        r.getFreezeMicros(),
        r.getCaptureMicros(),
        r.getTransferMicros(),
        r.getRestoreMicros(),
        r.getTotalFreezeMicros(),
        r.getTotalMicros(),
        r.getBytesMoved(),
        r.getImageBytes(),
        r.getFromEngine(),
        r.getToEngine(),
        r.getError().isEmpty() ? null : r.getError(),
        r.getStreamMicros(),
        r.getStoreMicros());
  }

  static long micros(Instant t) {
    return t == null ? 0 : t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }

  static Instant instant(long us) {
    return Instant.ofEpochSecond(us / 1_000_000, (us % 1_000_000) * 1000);
  }

  static long nowMicros() {
    return micros(Instant.now());
  }
}
