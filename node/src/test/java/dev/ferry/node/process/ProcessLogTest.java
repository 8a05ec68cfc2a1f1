package dev.ferry.node.process;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.statestore.LogStore;
import dev.ferry.statestore.StoreFullException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** What an operator is told while a process's output waits for a full store, and after. */
class ProcessLogTest {

  /** A log store that refuses every append while {@code full}. */
  static final class FillingStore implements LogStore {
    volatile boolean full;
    final ByteArrayOutputStream[] streams = {
      null, new ByteArrayOutputStream(), new ByteArrayOutputStream()
    };

    @Override
    public synchronized long append(String pid, int stream, byte[] data, int off, int len) {
      if (full) {
        throw new StoreFullException("store full: append to the log of " + pid, null);
      }
      streams[stream].write(data, off, len);
      return streams[stream].size();
    }

    @Override
    public synchronized long length(String pid, int stream) {
      return streams[stream].size();
    }

    @Override
    public synchronized byte[] read(String pid, int stream, long offset, int maxBytes) {
      byte[] all = streams[stream].toByteArray();
      int from = (int) Math.min(offset, all.length);
      return java.util.Arrays.copyOfRange(all, from, Math.min(all.length, from + maxBytes));
    }

    @Override
    public void truncate(String pid, int stream, long length) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void delete(String pid) {
      throw new UnsupportedOperationException();
    }
  }

  @Test
  void aRefusedOutputIsReportedWhileItWaitsAndWhenItIsStoredAgain() throws Exception {
    FillingStore store = new FillingStore();
    ProcessLog log = new ProcessLog("p-1", store);
    List<String> notices = new CopyOnWriteArrayList<>();
    log.notices((what, detail) -> notices.add(what + ": " + detail));
    assertNull(log.held());

    store.full = true;
    byte[] line = "a line of output\n".getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream written = new ByteArrayOutputStream();
    while (log.accepting()) {
      log.write(1, line, 0, line.length);
      written.write(line);
    }
    String held = log.held();
    assertTrue(held != null && held.contains("store full"), held);
    assertTrue(held.contains(written.size() + " bytes wait in memory"), held);
    assertTrue(held.contains("the process waits at its next write"), held);
    assertEquals(1, notices.size(), "told once, not at every refusal: " + notices);
    assertTrue(notices.get(0).startsWith("output-held: "), notices.toString());
    assertFalse(log.tryFlush(true), "the store still refuses it");
    assertEquals(1, notices.size(), notices.toString());

    store.full = false;
    assertTrue(log.tryFlush(true));
    assertNull(log.held());
    assertEquals(2, notices.size(), notices.toString());
    assertTrue(notices.get(1).startsWith("output-stored: "), notices.toString());
    assertArrayEquals(written.toByteArray(), store.streams[1].toByteArray(), "no byte lost");
  }
}
