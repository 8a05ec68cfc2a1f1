/**
 * What a node offers its clients: {@link dev.ferry.node.service.ProcessService} (one process at a
 * time) and {@link dev.ferry.node.service.ClusterService} (nodes, migrations, events), as
 * asynchronous calls that fail with a {@link dev.ferry.node.service.FerryException} whose kind maps
 * to an HTTP status and a CLI exit code.
 */
package dev.ferry.node.service;
