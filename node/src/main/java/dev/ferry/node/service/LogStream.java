package dev.ferry.node.service;

/** One of a process's two output streams. */
public enum LogStream {
  STDOUT,
  STDERR
}
