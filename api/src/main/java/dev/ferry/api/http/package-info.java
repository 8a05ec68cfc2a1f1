/**
 * The HTTP API under {@code /v1}: {@link dev.ferry.api.http.FerryRoutes} is the whole route tree
 * over a {@link dev.ferry.node.service.ClusterService} (processes, nodes, migrations, the event
 * stream), {@link dev.ferry.api.http.FerryHttpServer} binds it with the server settings it needs
 * (no idle cut of followed logs and event streams, the upload limit).
 *
 * <p>Every response that is not a success is JSON {@code {"error": {"kind", "message"}}}: service
 * failures, malformed input, unknown routes, wrong methods, oversized bodies, missing tokens.
 */
package dev.ferry.api.http;
