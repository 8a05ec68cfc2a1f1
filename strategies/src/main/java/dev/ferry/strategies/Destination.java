package dev.ferry.strategies;

/** The node a process moves to, as seen from the source. Implemented by the node. */
public interface Destination {
  String name();

  /** True if the destination already stores this module. */
  boolean hasModule(String moduleHash) throws MigrationException;

  /**
   * Sends {@code bytes} in bounded chunks; returns once the destination has stored them durably and
   * said so.
   */
  void transfer(byte[] bytes, int chunkBytes, int window) throws MigrationException;

  /**
   * Resumes the transferred process at the destination, under {@code engine} (null: its default).
   */
  void activate(String engine) throws MigrationException;

  /** Tells the destination to drop whatever it received; best effort. */
  void abort();
}
