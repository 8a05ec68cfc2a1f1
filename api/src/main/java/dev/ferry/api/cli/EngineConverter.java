package dev.ferry.api.cli;

import dev.ferry.node.service.Engine;
import dev.ferry.node.service.FerryException;
import java.util.Iterator;
import java.util.List;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Parses {@code --engine interpreter|compiled}; anything else is a usage error. */
final class EngineConverter implements ITypeConverter<Engine> {
  @Override
  public Engine convert(String value) {
    try {
      return Engine.parse(value);
    } catch (FerryException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }

  /** The values shown in help and completion. */
  static final class Candidates implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
      return List.of("interpreter", "compiled").iterator();
    }
  }
}
