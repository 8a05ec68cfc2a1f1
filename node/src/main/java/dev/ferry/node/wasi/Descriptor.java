package dev.ferry.node.wasi;

import dev.ferry.transport.proto.FdEntry;
import java.io.IOException;
import java.nio.channels.FileChannel;

/**
 * One entry of a process's file-descriptor table. Everything needed to reopen it elsewhere is kept
 * in plain fields (guest path, rights, flags, offset); the host channel is a cache that is reopened
 * by path after a restore.
 */
final class Descriptor {
  final FdEntry.Kind kind;

  /** Full guest path, normalized ("/data/a.txt"); "/" for the root preopen. */
  final String guestPath;

  long rightsBase;
  long rightsInheriting;
  int fdflags;
  long offset;
  final boolean readable;
  final boolean writable;

  /** readdir: the cookie the guest last asked for, informational. */
  long dirCookie;

  /** Open host channel for FILE descriptors; null for others. */
  FileChannel channel;

  Descriptor(
      FdEntry.Kind kind,
      String guestPath,
      long rightsBase,
      long rightsInheriting,
      int fdflags,
      boolean readable,
      boolean writable) {
    this.kind = kind;
    this.guestPath = guestPath;
    this.rightsBase = rightsBase;
    this.rightsInheriting = rightsInheriting;
    this.fdflags = fdflags;
    this.readable = readable;
    this.writable = writable;
  }

  boolean isDirectory() {
    return kind == FdEntry.Kind.PREOPEN || kind == FdEntry.Kind.DIRECTORY;
  }

  boolean isStdio() {
    return kind == FdEntry.Kind.STDIN || kind == FdEntry.Kind.STDOUT || kind == FdEntry.Kind.STDERR;
  }

  FdEntry toProto(int fd) {
    return FdEntry.newBuilder()
        .setFd(fd)
        .setKind(kind)
        .setGuestPath(guestPath)
        .setRightsBase(rightsBase)
        .setRightsInheriting(rightsInheriting)
        .setFdflags(fdflags)
        .setOffset(offset)
        .setReadable(readable)
        .setWritable(writable)
        .setDirCookie(dirCookie)
        .build();
  }

  static Descriptor fromProto(FdEntry e) {
    Descriptor d =
        new Descriptor(
            e.getKind(),
            e.getGuestPath(),
            e.getRightsBase(),
            e.getRightsInheriting(),
            e.getFdflags(),
            e.getReadable(),
            e.getWritable());
    d.offset = e.getOffset();
    d.dirCookie = e.getDirCookie();
    return d;
  }

  void closeChannel() {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException ignored) {
        // closing a file we only read or already flushed: nothing to lose
      }
      channel = null;
    }
  }
}
