/**
 * How a process moves: the migration strategy SPI ({@link dev.ferry.strategies.MigrationStrategy})
 * and one implementation per paper. A strategy decides what moves and when; it drives the phases
 * through the {@link dev.ferry.strategies.MigrationContext} the node gives it and never talks to
 * actors, sockets or the store itself. The node's migration coordinator calls the phases in order
 * (choose destination, prepare, freeze and capture, transfer, restore, commit) and calls abort on
 * any failure or cancellation before commit, which must leave the process running at the source.
 */
package dev.ferry.strategies;
