/**
 * A node's processes: records and logs kept in the node's LMDB store, checkpoints written durably
 * before they are acknowledged, restores on either engine, resumption after a node restart, and the
 * source and destination halves of a migration. No actors here.
 */
package dev.ferry.node.process;
