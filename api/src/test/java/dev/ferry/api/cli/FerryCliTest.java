package dev.ferry.api.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.FakeClusterService;
import dev.ferry.api.TestServer;
import dev.ferry.api.http.ApiJson;
import dev.ferry.node.service.Engine;
import dev.ferry.node.service.LogStream;
import dev.ferry.node.service.ProcessState;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The CLI end to end, in-process, against the API over the fake service. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FerryCliTest {
  private static final byte[] WASM = {0, 'a', 's', 'm', 1, 0, 0, 0};

  private static TestServer server;
  private static FakeClusterService service;

  @TempDir Path tmp;

  @BeforeAll
  static void start() throws Exception {
    server = new TestServer();
    service = server.service;
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  /** What one run of the CLI did. */
  record Result(int exitCode, byte[] stdoutBytes, String stderr) {
    String stdout() {
      return new String(stdoutBytes, StandardCharsets.UTF_8);
    }
  }

  static Result ferry(Map<String, String> env, String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream outStream = new PrintStream(out, true, StandardCharsets.UTF_8);
    PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8);
    int code = FerryCli.commandLine(new FerryCli(outStream, errStream, env)).execute(args);
    outStream.flush();
    errStream.flush();
    return new Result(code, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
  }

  /** Runs the CLI against the test server (through FERRY_API). */
  static Result ferry(String... args) {
    return ferry(Map.of(ApiOptions.API_ENV, server.url()), args);
  }

  private Path wasmFile() throws Exception {
    Path p = tmp.resolve("prog.wasm");
    Files.write(p, WASM);
    return p;
  }

  // ---------------------------------------------------------------- run

  @Test
  void runPrintsOnlyThePid() throws Exception {
    Path data = tmp.resolve("data.bin");
    Files.write(data, new byte[] {1, 2, 3});
    Result r =
        ferry(
            "run",
            "--engine",
            "compiled",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--file",
            data + ":/in/data.bin",
            wasmFile().toString(),
            "--",
            "-v",
            "two words");
    assertEquals(0, r.exitCode(), r.stderr());
    assertTrue(r.stdout().matches("p-\\d+\n"), "stdout was: '" + r.stdout() + "'");
    assertEquals("", r.stderr());
    assertEquals(List.of("-v", "two words"), service.lastRun.args());
    assertEquals(Map.of("A", "1", "B", "x=y"), service.lastRun.env());
    assertEquals(List.of("A", "B"), List.copyOf(service.lastRun.env().keySet()));
    assertArrayEquals(new byte[] {1, 2, 3}, service.lastRun.files().get("/in/data.bin"));
    assertEquals(Engine.COMPILED, service.lastRun.engine());
  }

  @Test
  void runWithJsonPrintsTheProcess() throws Exception {
    Result r = ferry("run", "--json", wasmFile().toString());
    assertEquals(0, r.exitCode(), r.stderr());
    JsonNode p = ApiJson.mapper().readTree(r.stdoutBytes());
    assertEquals("running", p.path("state").asText());
    assertTrue(p.path("id").asText().startsWith("p-"));
  }

  @Test
  void runChecksLocalFilesBeforeSendingAnything() throws Exception {
    int modules = service.moduleCount();
    Result r =
        ferry("run", "--file", tmp.resolve("missing.txt") + ":/in.txt", wasmFile().toString());
    assertEquals(ExitCodes.ERROR, r.exitCode());
    assertTrue(r.stderr().startsWith("ferry: cannot read file '"), r.stderr());
    assertTrue(r.stderr().contains("missing.txt"), r.stderr());
    assertEquals(modules, service.moduleCount(), "nothing may be uploaded");

    r = ferry("run", tmp.resolve("nope.wasm").toString());
    assertEquals(ExitCodes.ERROR, r.exitCode());
    assertTrue(r.stderr().contains("nope.wasm': no such file"), r.stderr());

    r = ferry("run", "--file", wasmFile() + ":relative.txt", wasmFile().toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("must be absolute"), r.stderr());

    r = ferry("run", "--env", "NOVALUE", wasmFile().toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("NAME=VALUE"), r.stderr());
  }

  @Test
  void aModuleTheNodeRefusesExits7() throws Exception {
    Path notWasm = tmp.resolve("text.wasm");
    Files.writeString(notWasm, "hello, not wasm");
    Result r = ferry("run", notWasm.toString());
    assertEquals(ExitCodes.BAD_REQUEST, r.exitCode());
    assertEquals("ferry: not a WebAssembly module: it does not start with \\0asm\n", r.stderr());
    assertEquals("", r.stdout());
  }

  @Test
  void aModuleOverTheUploadLimitExits7NamingTheSetting() throws Exception {
    Path big = tmp.resolve("big.wasm");
    byte[] bytes = new byte[(int) TestServer.MAX_UPLOAD * 4];
    System.arraycopy(WASM, 0, bytes, 0, WASM.length);
    Files.write(big, bytes);
    Result r = ferry("run", big.toString());
    assertEquals(ExitCodes.BAD_REQUEST, r.exitCode());
    assertTrue(r.stderr().contains("ferry.http.max-upload-bytes"), r.stderr());
  }

  @Test
  void anUnknownEngineIsAUsageError() throws Exception {
    Result r = ferry("run", "--engine", "jit", wasmFile().toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("unknown engine 'jit'"), r.stderr());
  }

  // ---------------------------------------------------------------- exit codes of failures

  @Test
  void anUnknownProcessExits3() {
    Result r = ferry("status", "p-404");
    assertEquals(ExitCodes.NOT_FOUND, r.exitCode());
    assertEquals("ferry: no process 'p-404'\n", r.stderr());
  }

  @Test
  void aConflictExits4() {
    String pid = service.start();
    assertEquals(0, ferry("kill", pid).exitCode());
    Result r = ferry("kill", pid);
    assertEquals(ExitCodes.CONFLICT, r.exitCode());
    assertTrue(r.stderr().startsWith("ferry: process '" + pid + "' has already ended"), r.stderr());
  }

  @Test
  void anUnreachableNodeExits5AndSaysWhatToDo() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    String url = "http://127.0.0.1:" + port;
    Result r = ferry(Map.of(), "ps", "--api", url);
    assertEquals(ExitCodes.UNREACHABLE, r.exitCode());
    assertTrue(r.stderr().contains(url), r.stderr());
    assertTrue(r.stderr().contains("ferry daemon"), r.stderr());
    assertTrue(r.stderr().contains("--api"), r.stderr());
  }

  @Test
  void aMissingOrWrongTokenExits6() throws Exception {
    try (TestServer secured = new TestServer("t0ken", Duration.ofSeconds(30))) {
      String pid = secured.service.start();
      Result r = ferry(Map.of(ApiOptions.API_ENV, secured.url()), "status", pid);
      assertEquals(ExitCodes.UNAUTHORIZED, r.exitCode());
      assertTrue(
          r.stderr().startsWith("ferry: missing 'Authorization: Bearer <token>'"), r.stderr());

      r = ferry(Map.of(ApiOptions.API_ENV, secured.url()), "status", "--token", "nope", pid);
      assertEquals(ExitCodes.UNAUTHORIZED, r.exitCode());

      r = ferry(Map.of(ApiOptions.API_ENV, secured.url()), "status", "--token", "t0ken", pid);
      assertEquals(0, r.exitCode(), r.stderr());

      r =
          ferry(
              Map.of(ApiOptions.API_ENV, secured.url(), ApiOptions.TOKEN_ENV, "t0ken"),
              "status",
              pid);
      assertEquals(0, r.exitCode(), r.stderr());
    }
  }

  @Test
  void usageErrorsExit2() {
    assertEquals(ExitCodes.USAGE, ferry("status").exitCode());
    assertEquals(ExitCodes.USAGE, ferry("ps", "--bogus").exitCode());
    assertEquals(ExitCodes.USAGE, ferry().exitCode());
    assertEquals(ExitCodes.USAGE, ferry("cp", "p-1", "x").exitCode());
    Result r = ferry(Map.of(), "ps", "--api", "ftp://host");
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("invalid API URL"), r.stderr());
  }

  @Test
  void apiFlagWinsOverTheEnvironment() throws Exception {
    Map<String, String> env = new HashMap<>();
    env.put(ApiOptions.API_ENV, "http://127.0.0.1:1");
    Result r = ferry(env, "ps", "--api", server.url());
    assertEquals(0, r.exitCode(), r.stderr());
  }

  // ---------------------------------------------------------------- reading

  @Test
  void logsAreByteExactAcrossManyReads() {
    String pid = service.start();
    byte[] bytes = new byte[3 * LogsCommand.READ_SIZE + 12345];
    new Random(7).nextBytes(bytes);
    service.append(pid, LogStream.STDOUT, bytes);
    service.append(pid, LogStream.STDERR, "warning\n".getBytes(StandardCharsets.UTF_8));
    Result r = ferry("logs", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertArrayEquals(bytes, r.stdoutBytes());

    r = ferry("logs", "--stderr", pid);
    assertEquals("warning\n", r.stdout());
  }

  @Test
  void logsAddNothingToOutputWithoutANewline() {
    String pid = service.start();
    service.append(pid, "no newline");
    assertEquals("no newline", ferry("logs", pid).stdout());
    String empty = service.start();
    assertEquals("", ferry("logs", empty).stdout());
  }

  @Test
  void logsFollowUntilTheProcessEnds() throws Exception {
    String pid = service.start();
    byte[] expected = new byte[200_000];
    new Random(3).nextBytes(expected);
    Thread writer =
        new Thread(
            () -> {
              try {
                for (int at = 0; at < expected.length; at += 10_000) {
                  service.append(
                      pid, LogStream.STDOUT, Arrays.copyOfRange(expected, at, at + 10_000));
                  Thread.sleep(10);
                }
                service.exit(pid, 0);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    writer.start();
    Result r = ferry("logs", "--follow", pid);
    writer.join();
    assertEquals(0, r.exitCode(), r.stderr());
    assertArrayEquals(expected, r.stdoutBytes());
  }

  @Test
  void waitExitsWithTheProgramsExitCode() {
    String pid = service.start();
    new Thread(
            () -> {
              try {
                Thread.sleep(200);
              } catch (InterruptedException e) {
                return;
              }
              service.exit(pid, 42);
            })
        .start();
    Result r = ferry("wait", pid);
    assertEquals(42, r.exitCode(), r.stderr());
    assertEquals("", r.stdout());
  }

  @Test
  void waitExits137ForAKilledProcessAnd1ForAFailedOne() {
    String killed = service.start();
    ferry("kill", killed);
    Result r = ferry("wait", killed);
    assertEquals(ExitCodes.KILLED, r.exitCode());

    String failed = service.start();
    service.fail(failed, "trap: unreachable");
    r = ferry("wait", failed);
    assertEquals(ExitCodes.ERROR, r.exitCode());
    assertEquals("ferry: process " + failed + " failed: trap: unreachable\n", r.stderr());

    assertEquals(ExitCodes.NOT_FOUND, ferry("wait", "p-404").exitCode());
  }

  @Test
  void psListsProcessesAsATable() throws Exception {
    String pid = service.start();
    service.exit(pid, 5);
    Result r = ferry("ps");
    assertEquals(0, r.exitCode(), r.stderr());
    String[] lines = r.stdout().split("\n");
    assertTrue(lines[0].matches("ID\\s+STATE\\s+ENGINE\\s+NODE\\s+EXIT\\s+STARTED"), lines[0]);
    boolean found = false;
    for (String line : lines) {
      if (line.startsWith(pid + " ")) {
        found = true;
        assertTrue(
            line.matches(
                pid
                    + "\\s+exited\\s+interpreter\\s+fake-node\\s+5\\s+\\d{4}-\\d\\d-\\d\\d"
                    + " \\d\\d:\\d\\d:\\d\\d"),
            line);
      }
    }
    assertTrue(found, r.stdout());

    r = ferry("ps", "--json");
    assertTrue(ApiJson.mapper().readTree(r.stdoutBytes()).path("processes").isArray());
  }

  @Test
  void statusShowsAReadableBlock() throws Exception {
    String pid = service.start("in.txt");
    service.append(pid, "x".repeat(2048));
    Result r = ferry("status", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertTrue(r.stdout().contains("ID:         " + pid + "\n"), r.stdout());
    assertTrue(r.stdout().contains("State:      running\n"), r.stdout());
    assertTrue(r.stdout().contains("Stdout:     2.0 KiB\n"), r.stdout());
    assertTrue(r.stdout().contains("Args:       in.txt\n"), r.stdout());

    r = ferry("status", "--json", pid);
    assertEquals(pid, ApiJson.mapper().readTree(r.stdoutBytes()).path("id").asText());
  }

  @Test
  void cpCopiesAFileOutOfTheSandbox() throws Exception {
    String pid = service.start();
    byte[] content = {0, 1, (byte) 0xff, '\n'};
    service.putFile(pid, "/out.bin", content);
    Path dest = tmp.resolve("copy.bin");
    Result r = ferry("cp", pid + ":/out.bin", dest.toString());
    assertEquals(0, r.exitCode(), r.stderr());
    assertArrayEquals(content, Files.readAllBytes(dest));

    r = ferry("cp", pid + ":/out.bin", tmp.toString());
    assertEquals(0, r.exitCode(), r.stderr());
    assertArrayEquals(content, Files.readAllBytes(tmp.resolve("out.bin")));

    r = ferry("cp", pid + ":/out.bin", "-");
    assertArrayEquals(content, r.stdoutBytes());

    r = ferry("cp", pid + ":/missing", dest.toString());
    assertEquals(ExitCodes.NOT_FOUND, r.exitCode());
  }

  // ---------------------------------------------------------------- checkpoint / restore / kill

  @Test
  void checkpointPrintsPhaseTimesAndSize() throws Exception {
    String pid = service.start();
    Result r = ferry("checkpoint", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertEquals(
        pid
            + " checkpointed (stopped)\n"
            + "  freeze   1.234 ms\n"
            + "  capture  0.567 ms\n"
            + "  write    8.901 ms\n"
            + "  image    1.5 MiB (24 pages)\n",
        r.stdout());
    assertEquals(ProcessState.CHECKPOINTED, service.state(pid));

    r = ferry("checkpoint", pid);
    assertEquals(ExitCodes.CONFLICT, r.exitCode());

    r = ferry("restore", "--engine", "compiled", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertEquals(pid + " running on compiled (node fake-node)\n", r.stdout());

    r = ferry("checkpoint", "--leave-running", "--json", pid);
    JsonNode c = ApiJson.mapper().readTree(r.stdoutBytes());
    assertTrue(c.path("leftRunning").asBoolean());
    assertEquals(1234, c.path("freezeMicros").asLong());
    assertEquals(ProcessState.RUNNING, service.state(pid));
  }

  @Test
  void killPrintsTheNewState() {
    String pid = service.start();
    Result r = ferry("kill", pid);
    assertEquals(0, r.exitCode(), r.stderr());
    assertEquals(pid + " killed\n", r.stdout());
  }

  // ---------------------------------------------------------------- daemon configuration

  @Test
  void daemonRefusesAnInvalidConfigurationWithExit2() {
    Result r = ferry(Map.of(), "daemon", "--port", "0");
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().startsWith("ferry: invalid configuration: ferry.node.port"), r.stderr());

    r = ferry(Map.of(), "daemon", "--engine", "jit");
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(
        r.stderr().startsWith("ferry: invalid configuration: ferry.node.engine"), r.stderr());
  }

  @Test
  void daemonRefusesAMissingOrBrokenConfigFile() throws Exception {
    Result r = ferry(Map.of(), "daemon", "--config", tmp.resolve("nope.conf").toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().startsWith("ferry: invalid configuration: config file '"), r.stderr());
    assertTrue(r.stderr().contains("does not exist"), r.stderr());

    Path broken = tmp.resolve("broken.conf");
    Files.writeString(broken, "ferry { node { port = \n");
    r = ferry(Map.of(), "daemon", "--config", broken.toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("broken.conf"), r.stderr());

    Path unknownKey = tmp.resolve("typo.conf");
    Files.writeString(unknownKey, "ferry.http.prot = 7500\n");
    r = ferry(Map.of(), "daemon", "--config", unknownKey.toString());
    assertEquals(ExitCodes.USAGE, r.exitCode());
    assertTrue(r.stderr().contains("ferry.http.prot"), r.stderr());

    // A strategy section is checked as early: refused before the node creates its data
    // directory or joins a cluster (the seed below does not exist; joining would wait for it).
    Path strategy = tmp.resolve("strategy.conf");
    Path dataDir = tmp.resolve("never-created");
    Files.writeString(
        strategy,
        "ferry.strategies.data-segment.window = 0\n"
            + "ferry.node.seeds = [\"127.0.0.1:1\"]\n"
            + "ferry.node.data-dir = \""
            + dataDir
            + "\"\n");
    r = ferry(Map.of(), "daemon", "--config", strategy.toString());
    assertEquals(ExitCodes.USAGE, r.exitCode(), r.stderr());
    assertTrue(
        r.stderr()
            .startsWith("ferry: invalid configuration: ferry.strategies.data-segment.window: "),
        r.stderr());
    assertFalse(Files.exists(dataDir), "nothing is created for a refused configuration");
  }

  @Test
  void helpListsEveryCommand() {
    Result r = ferry("--help");
    assertEquals(0, r.exitCode());
    for (String c :
        List.of(
            "run",
            "ps",
            "status",
            "logs",
            "wait",
            "kill",
            "cp",
            "checkpoint",
            "restore",
            "daemon")) {
      assertTrue(r.stdout().contains("  " + c + " "), c + " missing from:\n" + r.stdout());
    }
    Result v = ferry("--version");
    assertEquals(0, v.exitCode());
    assertTrue(v.stdout().matches("ferry \\S+\n"), v.stdout());
    // The same version from every subcommand's -V / --version.
    for (String[] args :
        List.of(
            new String[] {"ps", "-V"},
            new String[] {"migrate", "--version"},
            new String[] {"daemon", "-V"},
            new String[] {"demo", "-V"})) {
      Result sub = ferry(args);
      assertEquals(0, sub.exitCode(), String.join(" ", args));
      assertEquals(v.stdout(), sub.stdout(), String.join(" ", args));
    }
  }
}
