package dev.ferry.integration.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The options every benchmark has: the nodes' engine, heap, JVM options and JDK, where the guests
 * are, where results go, and what the script tells the report (its pid file, the source, the
 * command).
 */
class BenchOptions {
  String engine = "compiled";
  String heap;
  List<String> nodeJvmOptions = new ArrayList<>();
  Path java = Path.of(System.getProperty("java.home"));
  Path guests;
  Path dir = Path.of("integration/target/bench");
  Path out;
  Path pidFile;
  String commit = "";
  String command = "";

  BenchOptions(String heap) {
    this.heap = heap;
  }

  /** Takes option {@code a} with value {@code v} if it is a common one; false if it is not. */
  boolean common(String a, String v) {
    switch (a) {
      case "--engine" -> {
        if (!v.equals("compiled") && !v.equals("interpreter")) {
          throw new BenchSupport.UsageError("--engine must be compiled or interpreter");
        }
        engine = v;
      }
      case "--heap" -> heap = v;
      case "--node-jvm-opt" -> nodeJvmOptions.add(v);
      case "--java" -> java = Path.of(v);
      case "--guests" -> guests = Path.of(v);
      case "--dir" -> dir = Path.of(v);
      case "--out" -> out = Path.of(v);
      case "--pid-file" -> pidFile = Path.of(v);
      case "--commit" -> commit = v;
      case "--command" -> command = v;
      default -> {
        return false;
      }
    }
    return true;
  }

  /**
   * Calls {@code each} with every option and its value; {@code -h} or {@code --help} calls {@code
   * help}.
   */
  static void scan(String[] args, Runnable help, BiConsumer<String, String> each) {
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (a.equals("-h") || a.equals("--help")) {
        help.run();
        continue;
      }
      each.accept(a, BenchSupport.value(args, i++));
    }
  }

  /** {@code parser}'s options; on a bad command line, {@code usage} of what is wrong. */
  static <O> O parse(String[] args, Function<String[], O> parser, Consumer<String> usage) {
    try {
      return parser.apply(args);
    } catch (BenchSupport.UsageError e) {
      usage.accept(e.getMessage());
      return null;
    }
  }
}
