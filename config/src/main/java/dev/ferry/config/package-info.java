/**
 * Ferry's typed, validated settings.
 *
 * <p>Contract: {@link dev.ferry.config.FerrySettings#load(com.typesafe.config.Config)} either
 * returns settings in which every value is within its documented range, or throws {@link
 * dev.ferry.config.InvalidSettingsException} whose message starts with the full key at fault
 * ({@code "ferry.node.port: must be between 1 and 65535, got 0"}). No raw {@code ConfigException}
 * escapes, and a key under {@code ferry.node}, {@code ferry.http}, {@code ferry.runtime} or {@code
 * ferry.store} that Ferry does not know is an error, not ignored.
 *
 * <p>The keys, their defaults and ranges are defined by {@code reference.conf} in this module and
 * documented in {@code docs/CONFIGURATION.md}. This package knows nothing of strategies: it only
 * checks that each {@code ferry.strategies.<name>} is a section and hands it over untouched.
 * Settings are read once; nothing here watches files or reloads.
 */
package dev.ferry.config;
