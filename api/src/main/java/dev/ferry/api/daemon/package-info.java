/**
 * {@code ferry daemon}: turns flags and a HOCON file into validated {@link
 * dev.ferry.config.FerrySettings} ({@link dev.ferry.api.daemon.DaemonConfig}), starts a {@link
 * dev.ferry.node.FerryNode} and serves its HTTP API until the JVM is asked to stop ({@link
 * dev.ferry.api.daemon.FerryDaemon}).
 *
 * <p>Stopping unbinds HTTP first, so no request arrives at a closing node, then closes the node,
 * which checkpoints its running processes durably. A second signal during that does not cut it
 * short; only {@code kill -9} does, and then processes resume from their last durable checkpoint.
 */
package dev.ferry.api.daemon;
