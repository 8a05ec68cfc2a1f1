/**
 * The {@code ferry} command line ({@link dev.ferry.api.cli.FerryCli}). Every command but {@code
 * daemon} is a thin HTTP client of a node's API ({@link dev.ferry.api.cli.ApiClient}); {@code
 * daemon} runs a node. Commands return exit codes ({@link dev.ferry.api.cli.ExitCodes}) rather than
 * exiting, so they can be run in-process; only {@code main} calls {@code System.exit}.
 */
package dev.ferry.api.cli;
