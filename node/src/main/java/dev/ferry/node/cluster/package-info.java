/**
 * The cluster side of a node (Apache Pekko): one Cluster Sharding entity per process, placed by an
 * external shard allocation that migrations move; a node agent per node found through the
 * receptionist; the migration coordinator and its chunked transfer; the cluster-wide event topic.
 * Every message that crosses nodes is a Protobuf message from the transport module.
 */
package dev.ferry.node.cluster;
