package dev.ferry.node.service;

/**
 * A stored module. {@code hash} (hex SHA-256 of the stored, instrumented bytes) names it in {@link
 * RunRequest}; {@code instrumented} says whether Ferry ran wasm-opt on upload.
 */
public record ModuleInfo(String hash, long sizeBytes, boolean instrumented, boolean preemptible) {}
