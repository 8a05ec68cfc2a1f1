package dev.ferry.node.runtime;

import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.InterpreterMachine;
import com.dylibso.chicory.runtime.Machine;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.FunctionBody;
import com.dylibso.chicory.wasm.types.FunctionType;
import com.dylibso.chicory.wasm.types.ValType;
import java.lang.reflect.Field;
import java.util.Deque;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * An upper bound on how many bytes an Asyncify unwind of the current call stack will write.
 *
 * <p>Why it exists: Binaryen's Asyncify (verified with binaryen 108) checks the buffer's end only
 * in {@code asyncify_start_unwind} and {@code asyncify_stop_unwind}; while unwinding it writes past
 * the end unchecked. An unwind that does not fit would overwrite guest memory or trap and lose the
 * process. So before starting one, Ferry adds up, for every wasm frame on the stack, the call index
 * (4 bytes) plus the size of every parameter and local of that function — Asyncify never saves more
 * than that — and refuses the freeze (the process keeps running) if the sum does not fit.
 *
 * <p>Frames are found on the interpreter's own call stack, or as the JVM frames of the compiled
 * module's methods ({@code func_N}). A frame whose function cannot be identified counts as the
 * largest function of the module.
 */
final class UnwindBound {
  private static final Pattern COMPILED_FUNC = Pattern.compile("func_(\\d+)");
  private static final String GENERATED = "com.dylibso.chicory.$gen";
  private static final StackWalker WALKER =
      StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE);
  private static final Field CALL_STACK = field(InterpreterMachine.class, "callStack");
  private static final Field FUNC_ID =
      field(com.dylibso.chicory.runtime.StackFrame.class, "funcId");

  private final int importCount;

  /** Indexed by function index (imports included; imports are 0). */
  private final long[] frameBytes;

  private final long largestFrame;

  UnwindBound(WasmModule module) {
    this.importCount =
        (int)
            module.importSection().stream()
                .filter(i -> i.importType() == com.dylibso.chicory.wasm.types.ExternalType.FUNCTION)
                .count();
    int defined = module.functionSection().functionCount();
    this.frameBytes = new long[importCount + defined];
    long max = 0;
    for (int j = 0; j < defined; j++) {
      FunctionType t = module.typeSection().getType(module.functionSection().getFunctionType(j));
      FunctionBody body = module.codeSection().getFunctionBody(j);
      long bytes = 4 + sizeOf(t.params()) + sizeOf(body.localTypes());
      frameBytes[importCount + j] = bytes;
      max = Math.max(max, bytes);
    }
    this.largestFrame = max;
  }

  private static long sizeOf(List<ValType> types) {
    long n = 0;
    for (ValType v : types) {
      n += v.equals(ValType.V128) ? 16 : (v.equals(ValType.I32) || v.equals(ValType.F32)) ? 4 : 8;
    }
    return n;
  }

  /**
   * Bytes the unwind of the calling thread's current wasm stack can need at most. Where finding
   * each frame's function is costly (the compiled engine's JVM frames), a coarser bound that counts
   * every frame as the module's largest is returned when it is at most {@code enough}; the exact
   * sum is worked out only when it is not.
   */
  long current(Instance instance, long enough) {
    Machine m = instance.getMachine();
    if (m instanceof InterpreterMachine && CALL_STACK != null && FUNC_ID != null) {
      try {
        Deque<?> frames = (Deque<?>) CALL_STACK.get(m);
        long total = 0;
        for (Object f : frames) {
          total += frame((int) FUNC_ID.get(f));
        }
        return total;
      } catch (IllegalAccessException | ClassCastException e) {
        // fall through to the JVM stack
      }
    }
    // The frames of the compiled module's methods, and the interpreter's calls (functions the
    // compiler left to the interpreter), told apart by class alone: asking a JVM frame its method
    // name is what makes a walk slow.
    List<StackWalker.StackFrame> frames =
        WALKER.walk(
            s ->
                s.filter(
                        f ->
                            f.getDeclaringClass() == InterpreterMachine.class
                                || f.getClassName().startsWith(GENERATED))
                    .collect(Collectors.toList()));
    long coarse = frames.size() * largestFrame;
    if (coarse <= enough) {
      return coarse;
    }
    long total = 0;
    for (StackWalker.StackFrame f : frames) {
      if (f.getDeclaringClass() == InterpreterMachine.class) {
        if (f.getMethodName().equals("call")) {
          // a function the compiler left to the interpreter: unknown, count the largest
          total += largestFrame;
        }
        continue;
      }
      Matcher mt = COMPILED_FUNC.matcher(f.getMethodName());
      if (mt.matches()) {
        total += frame(Integer.parseInt(mt.group(1)));
      }
    }
    return total;
  }

  /** The bytes the largest function's frame can need. */
  long largestFrame() {
    return largestFrame;
  }

  private long frame(int funcIndex) {
    if (funcIndex >= importCount && funcIndex < frameBytes.length) {
      return frameBytes[funcIndex];
    }
    return funcIndex < importCount ? 0 : largestFrame;
  }

  private static Field field(Class<?> c, String name) {
    try {
      Field f = c.getDeclaredField(name);
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
