package dev.ferry.node.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.transport.proto.ProcessReply;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class RepeatedRequestsTest {
  private final AtomicLong now = new AtomicLong();
  private final RepeatedRequests seen = new RepeatedRequests(3, Duration.ofSeconds(10), now::get);
  private final AtomicInteger runs = new AtomicInteger();

  private CompletableFuture<ProcessReply> work(String pid) {
    runs.incrementAndGet();
    return CompletableFuture.completedFuture(ProcessReply.newBuilder().build());
  }

  @Test
  void aCopyGetsTheFirstAnswerWithoutRunningAgain() throws Exception {
    var first = seen.once("a", () -> work("a")).toCompletableFuture().get();
    var copy = seen.once("a", () -> work("a")).toCompletableFuture().get();
    assertSame(first, copy);
    assertEquals(1, runs.get());
  }

  @Test
  void aCopyWhileTheFirstRunsWaitsForItsAnswer() throws Exception {
    CompletableFuture<ProcessReply> slow = new CompletableFuture<>();
    var first = seen.once("a", () -> slow).toCompletableFuture();
    var copy = seen.once("a", () -> work("a")).toCompletableFuture();
    assertFalse(copy.isDone());
    ProcessReply r = ProcessReply.newBuilder().build();
    slow.complete(r);
    assertSame(r, copy.get());
    assertSame(r, first.get());
    assertEquals(0, runs.get());
  }

  @Test
  void aFailureIsTheAnswerOfEveryCopy() {
    var first =
        seen.once(
            "a",
            () -> {
              throw new IllegalStateException("refused");
            });
    var copy = seen.once("a", () -> work("a"));
    for (var f : java.util.List.of(first, copy)) {
      var e = assertThrows(ExecutionException.class, () -> f.toCompletableFuture().get());
      assertEquals("refused", e.getCause().getMessage());
    }
    assertEquals(0, runs.get());
  }

  @Test
  void noIdIsNeverRemembered() {
    seen.once("", () -> work(""));
    seen.once("", () -> work(""));
    seen.once(null, () -> work(""));
    assertEquals(3, runs.get());
  }

  @Test
  void idsAreForgottenAfterTheirTimeAndBeyondCapacity() {
    seen.once("a", () -> work("a"));
    now.addAndGet(Duration.ofSeconds(6).toNanos());
    seen.once("b", () -> work("b"));
    seen.once("c", () -> work("c"));
    assertTrue(seen.remembers("a"));
    now.addAndGet(Duration.ofSeconds(5).toNanos()); // a: 11 s old, b and c: 5 s
    assertFalse(seen.remembers("a"));
    assertTrue(seen.remembers("b"));
    seen.once("d", () -> work("d"));
    seen.once("e", () -> work("e")); // four remembered ids: the oldest (b) goes
    assertFalse(seen.remembers("b"));
    assertTrue(seen.remembers("c") && seen.remembers("d") && seen.remembers("e"));
    seen.once("b", () -> work("b")); // forgotten: runs again
    assertEquals(6, runs.get());
  }
}
