package dev.ferry.strategies;

import dev.ferry.transport.proto.ProcessImage;

/** A process frozen at the source with its image captured; it can still be resumed there. */
public interface Capture {
  ProcessImage image();

  /** From the freeze request until the process stood still. */
  long freezeMicros();

  /** Reading memory, globals and WASI state into the image. */
  long captureMicros();
}
