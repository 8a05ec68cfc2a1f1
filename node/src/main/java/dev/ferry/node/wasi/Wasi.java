package dev.ferry.node.wasi;

/** WASI preview 1 constants: file types, flags and rights, named as in the specification. */
final class Wasi {
  private Wasi() {}

  static final String MODULE = "wasi_snapshot_preview1";

  // filetype
  static final int FILETYPE_UNKNOWN = 0;
  static final int FILETYPE_CHARACTER_DEVICE = 2;
  static final int FILETYPE_DIRECTORY = 3;
  static final int FILETYPE_REGULAR_FILE = 4;
  static final int FILETYPE_SYMBOLIC_LINK = 7;

  // fdflags
  static final int FDFLAGS_APPEND = 1;
  static final int FDFLAGS_DSYNC = 2;
  static final int FDFLAGS_NONBLOCK = 4;
  static final int FDFLAGS_RSYNC = 8;
  static final int FDFLAGS_SYNC = 16;

  // oflags
  static final int OFLAGS_CREAT = 1;
  static final int OFLAGS_DIRECTORY = 2;
  static final int OFLAGS_EXCL = 4;
  static final int OFLAGS_TRUNC = 8;

  // whence
  static final int WHENCE_SET = 0;
  static final int WHENCE_CUR = 1;
  static final int WHENCE_END = 2;

  // clocks
  static final int CLOCK_REALTIME = 0;
  static final int CLOCK_MONOTONIC = 1;
  static final int CLOCK_PROCESS_CPUTIME = 2;
  static final int CLOCK_THREAD_CPUTIME = 3;

  // rights
  static final long RIGHT_FD_DATASYNC = 1L << 0;
  static final long RIGHT_FD_READ = 1L << 1;
  static final long RIGHT_FD_SEEK = 1L << 2;
  static final long RIGHT_FD_FDSTAT_SET_FLAGS = 1L << 3;
  static final long RIGHT_FD_SYNC = 1L << 4;
  static final long RIGHT_FD_TELL = 1L << 5;
  static final long RIGHT_FD_WRITE = 1L << 6;
  static final long RIGHT_FD_ADVISE = 1L << 7;
  static final long RIGHT_FD_ALLOCATE = 1L << 8;
  static final long RIGHT_PATH_CREATE_DIRECTORY = 1L << 9;
  static final long RIGHT_PATH_CREATE_FILE = 1L << 10;
  static final long RIGHT_PATH_OPEN = 1L << 13;
  static final long RIGHT_FD_READDIR = 1L << 14;
  static final long RIGHT_FD_FILESTAT_GET = 1L << 21;
  static final long RIGHT_FD_FILESTAT_SET_SIZE = 1L << 22;
  static final long RIGHT_ALL = (1L << 30) - 1;

  static final long RIGHTS_FILE =
      RIGHT_FD_DATASYNC
          | RIGHT_FD_READ
          | RIGHT_FD_SEEK
          | RIGHT_FD_FDSTAT_SET_FLAGS
          | RIGHT_FD_SYNC
          | RIGHT_FD_TELL
          | RIGHT_FD_WRITE
          | RIGHT_FD_ADVISE
          | RIGHT_FD_ALLOCATE
          | RIGHT_FD_FILESTAT_GET
          | RIGHT_FD_FILESTAT_SET_SIZE
          | (1L << 23) // fd_filestat_set_times
          | (1L << 27); // poll_fd_readwrite
  static final long RIGHTS_DIRECTORY =
      RIGHT_ALL & ~(RIGHT_FD_READ | RIGHT_FD_WRITE | RIGHT_FD_SEEK);
  static final long RIGHTS_STDIO =
      RIGHT_FD_READ
          | RIGHT_FD_WRITE
          | RIGHT_FD_FDSTAT_SET_FLAGS
          | RIGHT_FD_FILESTAT_GET
          | (1L << 27);
}
