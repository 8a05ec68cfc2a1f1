package dev.ferry.integration;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ferry} CLI, run in-process as a user would, against one real daemon: what each command
 * prints, its exit code, and that the bytes it hands back are the program's own.
 */
@Timeout(90)
class CliEndToEndTest {
  @RegisterExtension static final NodeHarness nodes = new NodeHarness();

  static DaemonProcess node;
  static String api;

  @TempDir Path local;

  @BeforeAll
  static void startDaemon() {
    node = nodes.start("interpreter");
    api = node.apiUri().toString();
  }

  /** {@code ferry <command> --api <node> <rest...>}. */
  static Cli.Result ferry(String command, String... rest) {
    List<String> args = new ArrayList<>();
    args.add(command);
    args.add("--api");
    args.add(api);
    args.addAll(List.of(rest));
    return Cli.run(args.toArray(new String[0]));
  }

  static Cli.Result ok(Cli.Result r) {
    assertEquals(0, r.exitCode(), r::toString);
    return r;
  }

  /** {@code ferry run}, which must print the pid alone; returns it. */
  static String run(String guest, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Guests.wasm(guest).toString());
    cmd.add("--");
    cmd.addAll(List.of(args));
    Cli.Result r = ok(ferry("run", cmd.toArray(new String[0])));
    return r.out().strip();
  }

  @Test
  void runPrintsOnlyThePid() {
    Cli.Result r = ok(ferry("run", Guests.wasm("lines").toString(), "--", "10", "0"));
    String out = r.out();
    assertTrue(out.matches("[^\\s]+\n"), "stdout is the pid and a newline: " + r);
    assertEquals("", r.stderr(), r::toString);
    String pid = out.strip();
    JsonNode status = node.api().status(pid);
    assertEquals(pid, status.path("id").asText(), "the printed pid names the process: " + status);
    assertEquals(
        List.of("10", "0"),
        List.of(status.path("args").get(0).asText(), status.path("args").get(1).asText()));
  }

  @Test
  void waitExitsWithTheProgramsExitCode() {
    // files exits 3 ("FAIL: rounds out of range") for 0 rounds; lines exits 0.
    String failing = run("files", "0");
    String fine = run("lines", "100", "0");
    Cli.Result failed = ferry("wait", failing);
    Cli.Result succeeded = ferry("wait", fine);
    assertAll(
        () -> assertEquals(3, failed.exitCode(), failed::toString),
        () -> assertEquals(0, succeeded.exitCode(), succeeded::toString),
        () -> assertEquals("", succeeded.out(), "wait prints nothing without --json"));
    Cli.Result stderr = ok(ferry("logs", failing, "--stderr"));
    assertTrue(stderr.out().startsWith("FAIL: rounds out of range"), stderr::toString);
  }

  @Test
  void logsAreByteIdenticalToTheProgramsOutput() {
    String pid = run("lines", "20000", "700");
    ok(ferry("wait", pid));
    assertArrayEquals(Guests.linesStdout(20000), ok(ferry("logs", pid)).stdout(), "ferry logs");
    assertArrayEquals(
        Guests.linesStderr(20000, 700),
        ok(ferry("logs", pid, "--stderr")).stdout(),
        "ferry logs --stderr");
    assertArrayEquals(
        Guests.linesStdout(20000),
        ok(ferry("logs", pid, "--follow")).stdout(),
        "ferry logs --follow");
  }

  @Test
  void checkpointThenRestoreOnTheCompiledEngineCompletesTheProgram() {
    String pid = run("lines", "20000", "1000", "unbuffered");
    node.api()
        .awaitStatus(
            pid, s -> s.path("stdoutBytes").asLong() > 0, "some output", Duration.ofSeconds(30));

    Cli.Result cp = ok(ferry("checkpoint", pid));
    assertTrue(cp.out().startsWith(pid + " checkpointed (stopped)"), cp::toString);
    JsonNode status = NodeApi.parse(ok(ferry("status", pid, "--json")).stdout());
    assertEquals("checkpointed", status.path("state").asText(), status::toString);
    long writtenWhenFrozen = status.path("stdoutBytes").asLong();
    assertTrue(
        writtenWhenFrozen < Guests.linesStdout(20000).length, "frozen before the end: " + status);

    Cli.Result restored = ok(ferry("restore", pid, "--engine", "compiled"));
    assertTrue(restored.out().startsWith(pid + " running on compiled"), restored::toString);
    ok(ferry("wait", pid));

    assertArrayEquals(
        Guests.linesStdout(20000), ok(ferry("logs", pid)).stdout(), "stdout across the checkpoint");
    assertArrayEquals(
        Guests.linesStderr(20000, 1000),
        ok(ferry("logs", pid, "--stderr")).stdout(),
        "stderr across the checkpoint");
    assertEquals("compiled", node.api().status(pid).path("engine").asText());
  }

  @Test
  void cpCopiesASandboxFileByteExact() throws Exception {
    String pid = run("files", "50");
    ok(ferry("wait", pid));
    assertArrayEquals(Guests.filesStdout(50), ok(ferry("logs", pid)).stdout(), "stdout of files");

    Path a = local.resolve("a-copy.txt");
    ok(ferry("cp", pid + ":/data/a.txt", a.toString()));
    assertArrayEquals(Guests.filesA(50), Files.readAllBytes(a), "ferry cp to a file");

    ok(ferry("cp", pid + ":/data/b.bin", local.toString()));
    assertArrayEquals(
        Guests.filesB(50), Files.readAllBytes(local.resolve("b.bin")), "ferry cp into a directory");

    assertArrayEquals(
        Guests.filesB(50),
        ok(ferry("cp", pid + ":/data/b.bin", "-")).stdout(),
        "ferry cp to stdout");
  }

  @Test
  void statusAndPsJsonParse() {
    String pid = run("lines", "10", "0");
    ok(ferry("wait", pid));

    JsonNode status = NodeApi.parse(ok(ferry("status", pid, "--json")).stdout());
    assertEquals(pid, status.path("id").asText(), status::toString);
    assertEquals("exited", status.path("state").asText(), status::toString);
    assertEquals(0, status.path("exitCode").asInt(-1), status::toString);

    JsonNode ps = NodeApi.parse(ok(ferry("ps", "--json")).stdout());
    assertTrue(ps.path("processes").isArray(), ps::toString);
    boolean listed = false;
    for (JsonNode p : ps.path("processes")) {
      listed |= p.path("id").asText().equals(pid);
    }
    assertTrue(listed, pid + " in ps --json: " + ps);

    String table = ok(ferry("ps")).out();
    assertTrue(table.startsWith("ID") && table.contains(pid), table);
    String block = ok(ferry("status", pid)).out();
    assertTrue(block.contains("exited") && block.contains(pid), block);
  }

  @Test
  void failuresExitWithTheDocumentedCodes() {
    Cli.Result unknown = ferry("status", "p-0000000000");
    Cli.Result unknownWait = ferry("wait", "p-0000000000");

    // A process that keeps running for a while: 100 000 iterations with a 1 ms sleep every 10th.
    String running = run("clock", "100000", "1000");
    Cli.Result restoreRunning = ferry("restore", running);
    Cli.Result killed = ferry("kill", running);
    Cli.Result waitKilled = ferry("wait", running);

    int closedPort = FreePorts.next();
    Cli.Result unreachable = Cli.run("ps", "--api", "http://127.0.0.1:" + closedPort);

    Cli.Result notWasm = ferry("run", Guests.wasm("not-a-module").toString());

    assertAll(
        () -> assertEquals(3, unknown.exitCode(), unknown::toString),
        () -> assertTrue(unknown.stderr().startsWith("ferry: "), unknown::toString),
        () -> assertEquals(3, unknownWait.exitCode(), unknownWait::toString),
        () -> assertEquals(4, restoreRunning.exitCode(), restoreRunning::toString),
        () -> assertEquals(0, killed.exitCode(), killed::toString),
        () -> assertEquals(137, waitKilled.exitCode(), waitKilled::toString),
        () -> assertEquals(5, unreachable.exitCode(), unreachable::toString),
        () ->
            assertTrue(
                unreachable.stderr().contains("127.0.0.1:" + closedPort), unreachable::toString),
        () -> assertEquals(7, notWasm.exitCode(), notWasm::toString),
        () ->
            assertTrue(
                notWasm.stderr().startsWith("ferry: ") && notWasm.stderr().strip().length() > 7,
                notWasm::toString),
        () -> assertEquals("", notWasm.out(), notWasm::toString));
    assertFalse(
        node.api().list().stream().anyMatch(p -> p.path("state").asText().equals("failed")),
        "no process failed: " + node.api().list());
  }
}
