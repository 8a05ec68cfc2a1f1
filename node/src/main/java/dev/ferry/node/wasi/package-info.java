/**
 * Ferry's WASI preview 1 implementation over a per-process sandbox directory. Its contract: every
 * WASI function first passes the {@link dev.ferry.node.wasi.CallGate} (so every call is a migration
 * point), and all of its state — argv, env, every descriptor as full guest path, rights, flags and
 * offset — is in {@link dev.ferry.node.wasi.FerryWasi#snapshot()} and can be reopened by path on
 * any node. Not supported: sockets, links, signals.
 */
package dev.ferry.node.wasi;
