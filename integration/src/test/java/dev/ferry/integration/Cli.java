package dev.ferry.integration;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

/**
 * Runs the {@code ferry} CLI in the test JVM, as a user's shell would run it, with its stdout and
 * stderr captured and an empty environment (so no {@code FERRY_API} of the machine leaks in: tests
 * pass {@code --api}).
 *
 * <p>It calls {@code new CommandLine(new FerryCli(out, err, env)).execute(args)}, through {@code
 * FerryCli.commandLine}, loaded from the node class path copy ({@link NodeClasspath#loader}), so
 * the CLI is the very code the nodes run and a concurrent {@code mvn install} cannot pull its
 * classes away mid-test (seen: {@code NoClassDefFoundError: dev/ferry/node/service/Engine}).
 */
final class Cli {
  private Cli() {}

  /**
   * What one command did. {@code stdout} is kept as bytes: {@code logs} and {@code cp -} are
   * binary.
   */
  record Result(String[] args, int exitCode, byte[] stdout, String stderr) {
    String out() {
      return new String(stdout, StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
      String out = out();
      return "ferry "
          + String.join(" ", args)
          + " -> exit "
          + exitCode
          + "\n  stdout: "
          + (out.length() > 2000 ? out.substring(0, 2000) + "..." : out)
          + "\n  stderr: "
          + stderr;
    }
  }

  static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = execute(o, e, args);
    }
    return new Result(
        Arrays.copyOf(args, args.length),
        code,
        out.toByteArray(),
        err.toString(StandardCharsets.UTF_8));
  }

  private static int execute(PrintStream out, PrintStream err, String[] args) {
    ClassLoader loader = NodeClasspath.loader();
    Thread t = Thread.currentThread();
    ClassLoader previous = t.getContextClassLoader();
    t.setContextClassLoader(loader);
    try {
      Class<?> ferryCli = Class.forName(NodeClasspath.MAIN_CLASS, true, loader);
      Object cli =
          ferryCli
              .getConstructor(PrintStream.class, PrintStream.class, Map.class)
              .newInstance(out, err, Map.of());
      Object commandLine = ferryCli.getMethod("commandLine", ferryCli).invoke(null, cli);
      Method execute = commandLine.getClass().getMethod("execute", String[].class);
      return (Integer) execute.invoke(commandLine, (Object) args);
    } catch (InvocationTargetException e) {
      throw new AssertionError("ferry " + String.join(" ", args) + " threw", e.getCause());
    } catch (ReflectiveOperationException e) {
      throw new AssertionError("cannot call the CLI (has FerryCli changed its API?)", e);
    } finally {
      t.setContextClassLoader(previous);
    }
  }
}
