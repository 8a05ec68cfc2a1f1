/**
 * Running Asyncify-instrumented modules on Chicory and freezing them at migration points. {@link
 * dev.ferry.node.runtime.WasmProcess} owns one instance and its thread and implements the unwind /
 * capture / rewind protocol; {@link dev.ferry.node.runtime.ModuleRegistry} validates, instruments
 * (wasm-opt) and stores modules by content hash. A freeze that cannot complete leaves the process
 * running; nothing here touches the store or the cluster.
 */
package dev.ferry.node.runtime;
