package dev.ferry.node.process;

import static dev.ferry.node.process.ProcessHarness.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.CodedInputStream;
import dev.ferry.node.runtime.WasmProcess;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessInfo;
import dev.ferry.node.service.ProcessState;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.MigrationBundle;
import dev.ferry.transport.proto.ProcessImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A large incoming image is copied into the destination's store while its bundle arrives (an {@link
 * ImageSpool}), as the transfer receiver does: a transfer that breaks half-way leaves no image
 * behind and the same process can then arrive whole; the image stored is the one that arrived, and
 * the process runs on from where it froze to the output of an uninterrupted run.
 */
class IncomingImageSpoolTest {
  /** 8 MiB of pages, each checked against its generation; well over the spool's threshold. */
  private static final List<String> ARGS = List.of("8", "6", "4096", "256");

  @TempDir Path tmp;

  @Test
  void aSpooledImageArrivesWholeAfterABrokenTransfer() throws Exception {
    byte[] expected;
    String pid;
    byte[] bundleBytes;
    try (ProcessHarness source = new ProcessHarness(tmp.resolve("a"), Map.of())) {
      String hash = source.upload("generations");
      expected = source.referenceOutput(hash, ARGS);
      // every page written (an all-zero page is not in the image)
      pid = source.runUntil(hash, ARGS, "round 1 ok");
      WasmProcess.Frozen frozen = source.processes.freezeForMigration(pid);
      bundleBytes = source.bundle(pid, frozen, true);
      source.processes.discardAfterCommit(pid, frozen, false, "b");
    }

    Path b = tmp.resolve("b");
    try (ProcessHarness dest = new ProcessHarness(b, Map.of())) {
      // A transfer that breaks half-way: the pieces written so far are removed.
      byte[] data = new byte[bundleBytes.length];
      ImageSpool broken = spool(dest, pid, bundleBytes, data);
      assertNotNull(broken, "an 8 MiB image is spooled");
      int half = bundleBytes.length / 2;
      System.arraycopy(bundleBytes, 0, data, 0, half);
      broken.arrived(half);
      broken.discard();
      assertFalse(dest.store.table(TableName.IMAGES).contains(pid));

      // A bundle that carries a second image after the spooled one (the parse would keep the
      // second, the store the first): refused, nothing stored.
      CodedInputStream first = CodedInputStream.newInstance(bundleBytes);
      first.enableAliasing(true);
      byte[] other = MigrationBundle.parseFrom(first).getImage().toByteArray();
      other[other.length - 1] ^= 1;
      byte[] twice =
          com.google.protobuf.ByteString.copyFrom(bundleBytes) // (the image first, as sent)
              .concat(
                  MigrationBundle.newBuilder()
                      .setImage(com.google.protobuf.ByteString.copyFrom(other))
                      .build()
                      .toByteString())
              .toByteArray();
      byte[] twiceData = new byte[twice.length];
      ImageSpool doubled = spool(dest, pid, twice, twiceData);
      System.arraycopy(twice, 0, twiceData, 0, twice.length);
      doubled.arrived(twice.length);
      CodedInputStream twiceIn = CodedInputStream.newInstance(twiceData);
      twiceIn.enableAliasing(true);
      MigrationBundle twiceBundle = MigrationBundle.parseFrom(twiceIn);
      assertArrayEquals(other, twiceBundle.getImage().toByteArray(), "the parse keeps the last");
      FerryException refused =
          assertThrows(
              FerryException.class,
              () ->
                  dest.processes.receiveIncoming(
                      "m-0",
                      twiceBundle,
                      ProcessImage.parseFrom(twiceBundle.getImage()),
                      Engine.COMPILED,
                      doubled));
      assertEquals(FerryException.Kind.BAD_REQUEST, refused.kind(), refused.getMessage());
      doubled.discard();
      assertFalse(dest.store.table(TableName.IMAGES).contains(pid));
      assertFalse(dest.processes.has(pid));

      // Then it arrives whole, in 1 MiB chunks, as the receiver gets them.
      data = new byte[bundleBytes.length];
      ImageSpool spool = spool(dest, pid, bundleBytes, data);
      for (int at = 0; at < data.length; at += 1 << 20) {
        int n = Math.min(1 << 20, data.length - at);
        System.arraycopy(bundleBytes, at, data, at, n);
        spool.arrived(at + n);
      }
      CodedInputStream in = CodedInputStream.newInstance(data);
      in.enableAliasing(true);
      MigrationBundle bundle = MigrationBundle.parseFrom(in);
      ProcessImage image = ProcessImage.parseFrom(bundle.getImage());
      NodeProcesses.Arrival arrival =
          dest.processes.receiveIncoming("m-1", bundle, image, Engine.COMPILED, spool);
      spool.discard(); // as the receiver always does: nothing, once stored with the process
      assertArrayEquals(
          bundle.getImage().toByteArray(),
          dest.store.table(TableName.IMAGES).get(pid).orElseThrow(),
          "the image stored is the one that arrived");
      arrival.run().run();
      ProcessInfo end = get(dest.processes.awaitExit(pid));
      assertEquals(ProcessState.EXITED, end.state(), "error: " + end.error());
      assertEquals(0, end.exitCode());
      assertArrayEquals(expected, dest.log(pid, LogStream.STDOUT));
    }
  }

  /** As the transfer receiver does: the image is the bundle's first field. */
  private static ImageSpool spool(ProcessHarness dest, String pid, byte[] bundle, byte[] data)
      throws Exception {
    CodedInputStream in = CodedInputStream.newInstance(bundle, 0, 16);
    in.readTag();
    int length = in.readRawVarint32();
    return dest.processes.spoolIncomingImage(pid, data, in.getTotalBytesRead(), length);
  }
}
