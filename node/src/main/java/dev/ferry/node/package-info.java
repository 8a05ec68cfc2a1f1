/**
 * A Ferry node: {@link dev.ferry.node.FerryNode} wires the store, the module registry, the process
 * table, the Pekko cluster member and the migration machinery together. Sub-packages: {@code wasi}
 * (Ferry's own WASI preview 1 layer, whose state can be saved and reopened), {@code runtime}
 * (Chicory instances, Asyncify freeze/capture/restore, module validation and instrumentation),
 * {@code process} (a node's processes, logs, checkpoints), {@code cluster} (sharded process
 * entities, node agents, migration coordinator, events) and {@code service} (the API the HTTP layer
 * and the CLI use).
 *
 * <p>Guest code never runs on an actor dispatcher: every process has its own thread.
 */
package dev.ferry.node;
