/**
 * The Protobuf messages of Ferry, one .proto per kind of state ({@code src/main/proto/ferry}):
 * {@code image.proto} (a frozen process), {@code process.proto} (a node's records), {@code
 * cluster.proto} (requests between nodes, transfers, migration records) and {@code events.proto}
 * (the event stream). Generated classes live in {@code dev.ferry.transport.proto}; Pekko serializes
 * them with its Protobuf serializer, and Java serialization is off.
 */
package dev.ferry.transport;
