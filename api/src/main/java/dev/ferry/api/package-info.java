/**
 * The outside of a Ferry node: the HTTP API ({@link dev.ferry.api.http}), the daemon that binds it
 * to a running node ({@link dev.ferry.api.daemon}) and the {@code ferry} command line ({@link
 * dev.ferry.api.cli}), which speaks only HTTP to a node.
 *
 * <p>Contract: everything here goes through {@link dev.ferry.node.service.ClusterService}; no class
 * in this module reaches into the node's actors, store or runtime. The HTTP API and its error
 * format are documented in {@code docs/openapi.yaml} and {@code docs/HTTP-API.md}, the CLI and its
 * exit codes in {@code docs/CLI.md}; tests fail when code and documents disagree.
 */
package dev.ferry.api;
