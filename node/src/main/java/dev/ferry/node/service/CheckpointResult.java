package dev.ferry.node.service;

/**
 * What a checkpoint did and what it cost.
 *
 * @param freezeMicros from request until the process stood still at a migration point
 * @param captureMicros to read memory, globals and WASI state into an image
 * @param writeMicros to write the image durably
 * @param imageBytes size of the serialized image
 */
public record CheckpointResult(
    String pid,
    long freezeMicros,
    long captureMicros,
    long writeMicros,
    long imageBytes,
    int memoryPages,
    boolean leftRunning) {}
