package dev.ferry.node.runtime;

import com.dylibso.chicory.wasm.Parser;
import com.dylibso.chicory.wasm.WasmModule;
import com.dylibso.chicory.wasm.types.Export;
import com.dylibso.chicory.wasm.types.ExternalType;
import com.dylibso.chicory.wasm.types.FunctionImport;
import com.dylibso.chicory.wasm.types.Import;
import dev.ferry.config.RuntimeSettings;
import dev.ferry.node.service.FerryException;
import dev.ferry.node.service.ModuleInfo;
import dev.ferry.node.wasi.FerryWasi;
import dev.ferry.statestore.FerryStore;
import dev.ferry.statestore.TableName;
import dev.ferry.transport.proto.ModuleRecord;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The node's modules, stored by content hash. An upload is validated (a WebAssembly module that
 * imports nothing but WASI preview 1 and Ferry's loop-point hook, and exports {@code _start} and
 * {@code memory}), instrumented with Binaryen's Asyncify unless it already is, and stored under the
 * hex SHA-256 of the stored bytes. Uploading the same bytes again is cheap and gives the same hash.
 *
 * <p>Does not guarantee that a valid module runs correctly: a module can still trap at run time.
 */
public final class ModuleRegistry {
  static final String LOOP_POINT_MODULE = "env";
  static final String LOOP_POINT_NAME = "log_execution";
  private static final List<String> ASYNCIFY_EXPORTS =
      List.of(
          "asyncify_start_unwind",
          "asyncify_stop_unwind",
          "asyncify_start_rewind",
          "asyncify_stop_rewind",
          "asyncify_get_state");
  private static final Set<String> WASI_FUNCTIONS = FerryWasi.functionNames();

  private final FerryStore store;
  private final RuntimeSettings runtime;
  private final Path tmpDir;
  private final Map<String, LoadedModule> loaded = new ConcurrentHashMap<>();

  public ModuleRegistry(FerryStore store, RuntimeSettings runtime, Path tmpDir) {
    this.store = store;
    this.runtime = runtime;
    this.tmpDir = tmpDir;
  }

  /** Validates, instruments if needed, and stores a module. */
  public ModuleInfo upload(byte[] wasm, boolean preemptible) {
    String sourceHash = sha256(wasm);
    String aliasKey = "source:" + sourceHash + ":" + preemptible;
    Optional<byte[]> alias = store.table(TableName.META).get(aliasKey);
    if (alias.isPresent()) {
      Optional<ModuleInfo> known = info(new String(alias.get(), StandardCharsets.UTF_8));
      if (known.isPresent()) {
        return known.get();
      }
    }
    WasmModule module = parse(wasm, "the uploaded module");
    boolean hasLoopPoints = checkImports(module);
    checkExports(module);
    boolean instrumented = isInstrumented(module);
    byte[] stored;
    if (instrumented) {
      if (preemptible && !hasLoopPoints) {
        throw FerryException.badRequest(
            "the module is already Asyncify-instrumented without loop points, so it cannot be made"
                + " preemptible; upload the module from before `wasm-opt --asyncify` with"
                + " --preemptible, or instrument it yourself with"
                + " `wasm-opt --log-execution --asyncify`");
      }
      stored = wasm;
    } else {
      stored = instrument(wasm, preemptible);
      WasmModule out = parse(stored, "the module after wasm-opt");
      if (!isInstrumented(out)) {
        throw new FerryException(
            FerryException.Kind.INTERNAL, "wasm-opt did not add the Asyncify exports");
      }
      hasLoopPoints = checkImports(out);
    }
    String hash = sha256(stored);
    ModuleRecord rec =
        ModuleRecord.newBuilder()
            .setHash(hash)
            .setSizeBytes(stored.length)
            .setInstrumented(!instrumented)
            .setPreemptible(hasLoopPoints)
            .build();
    store.write(
        b -> {
          b.put(TableName.MODULES, hash, stored);
          b.put(TableName.META, "module:" + hash, rec.toByteArray());
          b.put(TableName.META, aliasKey, hash.getBytes(StandardCharsets.UTF_8));
        });
    store.sync();
    return toInfo(rec);
  }

  /**
   * Stores an already validated, instrumented module received from another node; returns its hash.
   */
  public String putVerbatim(byte[] stored) {
    String hash = sha256(stored);
    if (store.table(TableName.MODULES).contains(hash)) {
      return hash;
    }
    WasmModule module = parse(stored, "module " + hash);
    boolean loop = checkImports(module);
    ModuleRecord rec =
        ModuleRecord.newBuilder()
            .setHash(hash)
            .setSizeBytes(stored.length)
            .setInstrumented(true)
            .setPreemptible(loop)
            .build();
    store.write(
        b -> {
          b.put(TableName.MODULES, hash, stored);
          b.put(TableName.META, "module:" + hash, rec.toByteArray());
        });
    // parsed once: the process it came with is about to be restored from it
    loaded.putIfAbsent(hash, new LoadedModule(hash, module, loop));
    return hash;
  }

  /**
   * Makes a stored module ready to run at once: parsed, and with {@code compile} also compiled for
   * the compiled engine (cached, as a process started or restored from it would do).
   */
  public void prepare(String hash, boolean compile) {
    LoadedModule m = load(hash);
    if (compile) {
      m.compiledMachineFactory();
    }
  }

  public Optional<ModuleInfo> info(String hash) {
    return store
        .table(TableName.META)
        .get("module:" + hash)
        .map(
            bytes -> {
              try {
                return toInfo(ModuleRecord.parseFrom(bytes));
              } catch (IOException e) {
                throw new FerryException(
                    FerryException.Kind.INTERNAL, "corrupt module record " + hash, e);
              }
            });
  }

  /** The stored bytes of a module, or NOT_FOUND. */
  public byte[] bytes(String hash) {
    return store.table(TableName.MODULES).get(hash).orElseThrow(() -> unknown(hash));
  }

  /** A parsed module ready to instantiate, cached. */
  public LoadedModule load(String hash) {
    LoadedModule m = loaded.get(hash);
    if (m != null) {
      return m;
    }
    byte[] bytes = bytes(hash);
    WasmModule parsed = parse(bytes, "module " + hash);
    boolean loop = checkImports(parsed);
    return loaded.computeIfAbsent(hash, h -> new LoadedModule(h, parsed, loop));
  }

  private static FerryException unknown(String hash) {
    return FerryException.notFound(
        "no module '" + hash + "' on this node: upload it first (POST /v1/modules)");
  }

  private static ModuleInfo toInfo(ModuleRecord r) {
    return new ModuleInfo(r.getHash(), r.getSizeBytes(), r.getInstrumented(), r.getPreemptible());
  }

  private static WasmModule parse(byte[] wasm, String what) {
    if (wasm.length < 8 || wasm[0] != 0 || wasm[1] != 'a' || wasm[2] != 's' || wasm[3] != 'm') {
      throw FerryException.badRequest(
          what + " is not a WebAssembly module (it does not start with \\0asm)");
    }
    try {
      return Parser.parse(wasm);
    } catch (RuntimeException e) {
      throw FerryException.badRequest(
          what + " is not a valid WebAssembly module: " + e.getMessage());
    }
  }

  /** Returns true if the module has loop points; rejects any import Ferry does not provide. */
  private static boolean checkImports(WasmModule module) {
    boolean loop = false;
    List<String> bad = new ArrayList<>();
    for (int i = 0; i < module.importSection().importCount(); i++) {
      Import imp = module.importSection().getImport(i);
      String name = imp.module() + "." + imp.name();
      if (imp.importType() != ExternalType.FUNCTION || !(imp instanceof FunctionImport)) {
        bad.add(name + " (" + imp.importType() + ")");
      } else if (imp.module().equals("wasi_snapshot_preview1")
          && WASI_FUNCTIONS.contains(imp.name())) {
        continue;
      } else if (imp.module().equals(LOOP_POINT_MODULE) && imp.name().equals(LOOP_POINT_NAME)) {
        loop = true;
      } else {
        bad.add(name);
      }
    }
    if (!bad.isEmpty()) {
      throw FerryException.badRequest(
          "the module imports "
              + String.join(", ", bad)
              + ", which Ferry does not provide: a module may import only WASI preview 1"
              + " functions (wasi_snapshot_preview1) and env.log_execution");
    }
    return loop;
  }

  private static void checkExports(WasmModule module) {
    Set<String> functions = new HashSet<>();
    boolean memory = false;
    for (int i = 0; i < module.exportSection().exportCount(); i++) {
      Export e = module.exportSection().getExport(i);
      if (e.exportType() == ExternalType.FUNCTION) {
        functions.add(e.name());
      } else if (e.exportType() == ExternalType.MEMORY && e.name().equals("memory")) {
        memory = true;
      }
    }
    if (!functions.contains("_start")) {
      throw FerryException.badRequest(
          "the module exports no _start function: Ferry runs WASI commands (compile a program"
              + " with a main function, e.g. clang --target=wasm32-wasi)");
    }
    if (!memory) {
      throw FerryException.badRequest("the module exports no memory named 'memory'");
    }
  }

  private static boolean isInstrumented(WasmModule module) {
    Set<String> functions = new HashSet<>();
    for (int i = 0; i < module.exportSection().exportCount(); i++) {
      Export e = module.exportSection().getExport(i);
      if (e.exportType() == ExternalType.FUNCTION) {
        functions.add(e.name());
      }
    }
    long present = ASYNCIFY_EXPORTS.stream().filter(functions::contains).count();
    if (present != 0 && present != ASYNCIFY_EXPORTS.size()) {
      throw FerryException.badRequest(
          "the module exports only some of the Asyncify functions " + ASYNCIFY_EXPORTS);
    }
    return present == ASYNCIFY_EXPORTS.size();
  }

  private byte[] instrument(byte[] wasm, boolean preemptible) {
    Path in = null;
    Path out = null;
    try {
      Files.createDirectories(tmpDir);
      in = Files.createTempFile(tmpDir, "upload-", ".wasm");
      out = Files.createTempFile(tmpDir, "instrumented-", ".wasm");
      Files.write(in, wasm);
      List<String> cmd = new ArrayList<>();
      cmd.add(runtime.wasmOpt());
      cmd.add("-O1");
      if (preemptible) {
        cmd.add("--log-execution");
      }
      cmd.add("--asyncify");
      cmd.add(in.toString());
      cmd.add("-o");
      cmd.add(out.toString());
      Process p;
      try {
        p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      } catch (IOException e) {
        throw new FerryException(
            FerryException.Kind.UNAVAILABLE,
            "cannot instrument the module: wasm-opt was not found at '"
                + runtime.wasmOpt()
                + "' (ferry.runtime.wasm-opt). Install Binaryen (Debian: apt-get install binaryen,"
                + " or run scripts/install-tools.sh), or upload a module already instrumented with"
                + " `wasm-opt -O1 --asyncify in.wasm -o out.wasm`");
      }
      byte[] output = p.getInputStream().readAllBytes();
      if (!p.waitFor(300, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new FerryException(
            FerryException.Kind.INTERNAL, "wasm-opt took longer than 300 s; gave up");
      }
      if (p.exitValue() != 0) {
        throw FerryException.badRequest(
            "wasm-opt rejected the module: " + new String(output, StandardCharsets.UTF_8).strip());
      }
      return Files.readAllBytes(out);
    } catch (IOException e) {
      throw new FerryException(
          FerryException.Kind.INTERNAL, "cannot instrument the module: " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new FerryException(FerryException.Kind.UNAVAILABLE, "interrupted", e);
    } finally {
      deleteQuietly(in);
      deleteQuietly(out);
    }
  }

  private static void deleteQuietly(Path p) {
    if (p != null) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException ignored) {
        // a temp file left behind in the data dir's tmp/ is harmless
      }
    }
  }

  public static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
