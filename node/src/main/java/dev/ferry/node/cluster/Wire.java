package dev.ferry.node.cluster;

import com.google.protobuf.ByteString;
import dev.ferry.node.service.CheckpointResult;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogChunk;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProtoRecords;
import dev.ferry.transport.proto.CheckpointInfo;
import dev.ferry.transport.proto.CheckpointMsg;
import dev.ferry.transport.proto.ErrorMsg;
import dev.ferry.transport.proto.LogChunkMsg;
import dev.ferry.transport.proto.ProcessInfoMsg;
import dev.ferry.transport.proto.ProcessRecord;
import dev.ferry.transport.proto.ProcessReply;

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
            .setStartedAtMicros(ProtoRecords.micros(i.startedAt()))
            .setEndedAtMicros(i.endedAt() == null ? 0 : ProtoRecords.micros(i.endedAt()));
    if (i.exitCode() != null) {
      r.setHasExitCode(true).setExitCode(i.exitCode());
    }
    if (i.error() != null) {
      r.setError(i.error());
    }
    if (i.lastCheckpoint() != null) {
      r.setLastCheckpoint(checkpointInfo(i.lastCheckpoint()));
    }
    ProcessInfoMsg.Builder b =
        ProcessInfoMsg.newBuilder()
            .setRecord(r)
            .setStdoutBytes(i.stdoutBytes())
            .setStderrBytes(i.stderrBytes());
    if (i.paging() != null) {
      b.setPaging(ProtoRecords.paging(i.paging()));
    }
    if (i.outputHeld() != null) {
      b.setOutputHeld(i.outputHeld());
    }
    return b.build();
  }

  static ProcessInfo info(ProcessInfoMsg m) {
    return ProtoRecords.processInfo(
        m.getRecord(),
        m.getStdoutBytes(),
        m.getStderrBytes(),
        m.hasPaging() ? m.getPaging() : null,
        m.getOutputHeld());
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
        .setNodeGone(e instanceof FerryException.NodeGone)
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
    return m.getNodeGone()
        ? new FerryException.NodeGone(m.getMessage())
        : new FerryException(kind, m.getMessage());
  }
}
