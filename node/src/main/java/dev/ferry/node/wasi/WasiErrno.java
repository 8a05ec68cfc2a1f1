package dev.ferry.node.wasi;

/** WASI preview 1 error numbers used by Ferry's WASI layer (the subset it can return). */
public enum WasiErrno {
  SUCCESS(0),
  E2BIG(1),
  ACCES(2),
  BADF(8),
  EXIST(20),
  FAULT(21),
  INVAL(28),
  IO(29),
  ISDIR(31),
  LOOP(32),
  NAMETOOLONG(37),
  NOENT(44),
  NOSPC(51),
  NOSYS(52),
  NOTDIR(54),
  NOTEMPTY(55),
  NOTSUP(58),
  OVERFLOW(61),
  PERM(63),
  SPIPE(70),
  NOTCAPABLE(76);

  private final int code;

  WasiErrno(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }
}
