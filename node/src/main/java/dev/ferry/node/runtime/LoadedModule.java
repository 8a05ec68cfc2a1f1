package dev.ferry.node.runtime;

import com.dylibso.chicory.compiler.MachineFactoryCompiler;
import com.dylibso.chicory.runtime.Instance;
import com.dylibso.chicory.runtime.Machine;
import com.dylibso.chicory.wasm.WasmModule;
import java.util.function.Function;

/**
 * A parsed, validated, Asyncify-instrumented module, shared by every process that runs it. The
 * compiled engine's machine factory (Chicory translates the whole module to JVM bytecode) is built
 * on first use and then reused.
 */
public final class LoadedModule {
  private final String hash;
  private final WasmModule module;
  private final boolean preemptible;
  private final UnwindBound unwindBound;
  private volatile Function<Instance, Machine> compiled;

  LoadedModule(String hash, WasmModule module, boolean preemptible) {
    this.hash = hash;
    this.module = module;
    this.preemptible = preemptible;
    this.unwindBound = new UnwindBound(module);
  }

  /** Each function's frame size for bounding an unwind: worked out once per module. */
  UnwindBound unwindBound() {
    return unwindBound;
  }

  public String hash() {
    return hash;
  }

  public WasmModule module() {
    return module;
  }

  /** True if the module has loop-head migration points (imports env.log_execution). */
  public boolean preemptible() {
    return preemptible;
  }

  Function<Instance, Machine> compiledMachineFactory() {
    Function<Instance, Machine> f = compiled;
    if (f == null) {
      synchronized (this) {
        f = compiled;
        if (f == null) {
          f = MachineFactoryCompiler.compile(module);
          compiled = f;
        }
      }
    }
    return f;
  }
}
