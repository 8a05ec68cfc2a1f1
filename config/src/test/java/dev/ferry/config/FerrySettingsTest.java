package dev.ferry.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class FerrySettingsTest {

  private static FerrySettings load(String hocon) {
    return FerrySettings.load(ConfigFactory.parseString(hocon));
  }

  private static InvalidSettingsException rejected(String hocon) {
    return assertThrows(InvalidSettingsException.class, () -> load(hocon));
  }

  @Test
  void loadsTheDefaultsOfReferenceConf() {
    FerrySettings settings = FerrySettings.load(ConfigFactory.load());

    assertEquals(
        new NodeSettings("", "127.0.0.1", 7401, Path.of("ferry-data"), "interpreter", List.of()),
        settings.node());
    assertEquals("127.0.0.1:7401", settings.node().name());
    assertEquals(new HttpSettings("127.0.0.1", 7400, "", 64L << 20), settings.http());
    assertFalse(settings.http().requiresToken());
    assertEquals(
        new RuntimeSettings(
            "wasm-opt", 1 << 20, Duration.ofSeconds(10), 16384, Duration.ofMillis(50)),
        settings.runtime());
    assertEquals(new StoreSettings(64L << 30), settings.store());
  }

  @Test
  void loadsTheStandardConfigurationWithoutArguments() {
    assertEquals(FerrySettings.load(ConfigFactory.load()), FerrySettings.load());
  }

  @Test
  void defaultsMatchTheValuesWrittenInReferenceConf() {
    Config reference = ConfigFactory.parseResources(FerrySettings.class, "/reference.conf");
    FerrySettings settings = FerrySettings.load(ConfigFactory.empty());

    assertEquals(reference.getString("ferry.node.host"), settings.node().host());
    assertEquals(reference.getInt("ferry.node.port"), settings.node().port());
    assertEquals(reference.getString("ferry.node.data-dir"), settings.node().dataDir().toString());
    assertEquals(reference.getString("ferry.node.engine"), settings.node().engine());
    assertEquals(reference.getStringList("ferry.node.seeds"), settings.node().seeds());
    assertEquals(reference.getString("ferry.http.host"), settings.http().host());
    assertEquals(reference.getInt("ferry.http.port"), settings.http().port());
    assertEquals(reference.getString("ferry.http.token"), settings.http().token());
    assertEquals(
        reference.getBytes("ferry.http.max-upload-bytes"), settings.http().maxUploadBytes());
    assertEquals(reference.getString("ferry.runtime.wasm-opt"), settings.runtime().wasmOpt());
    assertEquals(
        reference.getBytes("ferry.runtime.asyncify-buffer-bytes").intValue(),
        settings.runtime().asyncifyBufferBytes());
    assertEquals(
        reference.getDuration("ferry.runtime.freeze-timeout"), settings.runtime().freezeTimeout());
    assertEquals(
        reference.getInt("ferry.runtime.max-memory-pages"), settings.runtime().maxMemoryPages());
    assertEquals(
        reference.getDuration("ferry.runtime.log-flush-interval"),
        settings.runtime().logFlushInterval());
    assertEquals(reference.getBytes("ferry.store.map-size"), settings.store().mapSize());
  }

  @Test
  void appliesOverridesOnTopOfTheDefaults() {
    FerrySettings settings =
        load(
            "ferry.node { name = a, port = \"7411\", engine = compiled,"
                + " seeds = [\"10.0.0.1:7401\", \"[::1]:7402\"] }\n"
                + "ferry.http.token = s3cret\n"
                + "ferry.runtime { freeze-timeout = 250ms, asyncify-buffer-bytes = 64KiB }\n"
                + "ferry.store.map-size = 16MiB");

    assertEquals("a", settings.node().name());
    assertEquals(7411, settings.node().port());
    assertEquals("compiled", settings.node().engine());
    assertEquals(List.of("10.0.0.1:7401", "[::1]:7402"), settings.node().seeds());
    assertTrue(settings.http().requiresToken());
    assertEquals(Duration.ofMillis(250), settings.runtime().freezeTimeout());
    assertEquals(65536, settings.runtime().asyncifyBufferBytes());
    assertEquals(16L << 20, settings.store().mapSize());
  }

  @Test
  void emptyNameDefaultsToHostAndPort() {
    FerrySettings settings = load("ferry.node { host = \"10.0.0.5\", port = 7411 }");

    assertEquals("10.0.0.5:7411", settings.node().name());
  }

  @Test
  void emptyNameOfAnIpv6HostPutsTheHostInBrackets() {
    NodeSettings node = new NodeSettings("", "::1", 7401, Path.of("d"), "interpreter", List.of());

    assertEquals("[::1]:7401", node.name());
  }

  @Test
  void rejectsPortOutOfRangeWithTheExactMessage() {
    InvalidSettingsException e = rejected("ferry.node.port = 0");

    assertEquals("ferry.node.port: must be between 1 and 65535, got 0", e.getMessage());
    assertEquals("ferry.node.port", e.key());
  }

  static Stream<Arguments> badValues() {
    return Stream.of(
        // wrong types
        Arguments.of("ferry.node.port", "abc", "must be an integer, got \"abc\""),
        Arguments.of("ferry.node.port", "7401.5", "must be an integer, got 7401.5"),
        Arguments.of("ferry.node.port", "[7401]", "must be an integer"),
        Arguments.of("ferry.node.host", "[a, b]", "must be a string"),
        Arguments.of("ferry.node.host", "null", "must be set, got null"),
        Arguments.of("ferry.node.seeds", "\"a:1\"", "must be a list of strings, got \"a:1\""),
        Arguments.of("ferry.http.max-upload-bytes", "lots", "must be a size in bytes"),
        Arguments.of("ferry.runtime.freeze-timeout", "abc", "must be a duration"),
        Arguments.of("ferry.runtime.log-flush-interval", "{ a = 1 }", "must be a duration"),
        Arguments.of("ferry.runtime.asyncify-buffer-bytes", "abc", "must be a size in bytes"),
        Arguments.of("ferry.runtime.max-memory-pages", "many", "must be an integer"),
        Arguments.of("ferry.store.map-size", "big", "such as 64MiB or 4096, got \"big\""),
        // ranges
        Arguments.of("ferry.node.port", "65536", "must be between 1 and 65535, got 65536"),
        Arguments.of("ferry.node.port", "10000000000", "must be between 1 and 65535"),
        Arguments.of("ferry.http.port", "0", "must be between 1 and 65535, got 0"),
        Arguments.of("ferry.http.port", "-1", "must be between 1 and 65535, got -1"),
        Arguments.of("ferry.http.max-upload-bytes", "0", "must be between 1 and"),
        Arguments.of("ferry.runtime.asyncify-buffer-bytes", "1000", "at least 4 KiB"),
        Arguments.of("ferry.runtime.asyncify-buffer-bytes", "4100", "a multiple of 8, got 4100"),
        Arguments.of("ferry.runtime.asyncify-buffer-bytes", "4GiB", "must be at most"),
        Arguments.of("ferry.runtime.max-memory-pages", "0", "must be between 1 and 65536, got 0"),
        Arguments.of("ferry.runtime.max-memory-pages", "65537", "must be between 1 and 65536"),
        Arguments.of("ferry.runtime.freeze-timeout", "0s", "must be greater than 0, got 0s"),
        Arguments.of("ferry.runtime.log-flush-interval", "-5ms", "greater than 0, got -5ms"),
        Arguments.of("ferry.store.map-size", "1MiB", "must be at least 16 MiB"),
        // values
        Arguments.of("ferry.node.engine", "jit", "must be one of interpreter, compiled"),
        Arguments.of("ferry.node.host", "\"\"", "must not be empty"),
        Arguments.of("ferry.node.name", "\"  \"", "must not be blank"),
        Arguments.of("ferry.node.data-dir", "\"\"", "must not be empty"),
        Arguments.of("ferry.node.seeds", "[nohost]", "\"nohost\" is not host:port"),
        Arguments.of("ferry.node.seeds", "[\":7401\"]", "is not host:port"),
        Arguments.of("ferry.node.seeds", "[\"a:b\"]", "is not host:port"),
        Arguments.of("ferry.node.seeds", "[\"::1:7401\"]", "is not host:port"),
        Arguments.of("ferry.node.seeds", "[\"a:1\", \"b:0\"]", "\"b:0\" has port 0"),
        Arguments.of("ferry.node.seeds", "[\"b:99999999\"]", "must be between 1 and 65535"),
        Arguments.of("ferry.http.token", "\"two words\"", "must not contain spaces"),
        // sections
        Arguments.of("ferry.node", "5", "must be a section"),
        Arguments.of("ferry.strategies", "[]", "must be a section"),
        Arguments.of("ferry.strategies.data-segment", "3", "must be a section"));
  }

  @ParameterizedTest(name = "{0} = {1}")
  @MethodSource("badValues")
  void rejectsABadValueWithAMessageThatStartsWithTheKey(String key, String value, String problem) {
    InvalidSettingsException e = rejected(key + " = " + value);

    assertTrue(e.getMessage().startsWith(key + ": "), () -> "message should start with key: " + e);
    assertTrue(e.getMessage().contains(problem), () -> "message should say " + problem + ": " + e);
    assertEquals(key, e.key());
  }

  @Test
  void rejectsAsyncifyBufferAsLargeAsTheWholeMemory() {
    InvalidSettingsException e =
        rejected("ferry.runtime { max-memory-pages = 1, asyncify-buffer-bytes = 64KiB }");

    assertTrue(
        e.getMessage()
            .startsWith("ferry.runtime.asyncify-buffer-bytes: must be smaller than the largest"),
        e::getMessage);
  }

  @Test
  void rejectsATypoInAKeyAndSuggestsTheRightOne() {
    InvalidSettingsException e = rejected("ferry.node.prot = 7411");

    assertTrue(
        e.getMessage()
            .startsWith("ferry.node.prot: unknown setting (did you mean ferry.node.port?)"),
        e::getMessage);
    assertEquals("ferry.node.prot", e.key());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "ferry.node.colour",
        "ferry.http.tokne",
        "ferry.runtime.wasmopt",
        "ferry.store.mapsize",
        "ferry.store.map-size-bytes"
      })
  void rejectsUnknownKeysInEverySection(String key) {
    InvalidSettingsException e = rejected(key + " = 1");

    assertTrue(e.getMessage().startsWith(key + ": unknown setting"), e::getMessage);
  }

  @Test
  void acceptsUnknownStrategiesAndLeavesTheirContentsAlone() {
    // The config module does not know the strategies: each validates its own section.
    FerrySettings settings = load("ferry.strategies.teleport { replicas = 3, anything = [1, 2] }");

    assertEquals(3, settings.strategy("teleport").getInt("replicas"));
    assertEquals("copy", settings.strategy("data-segment").getString("files"));
    assertEquals(
        List.of("data-segment", "flushing", "gfvm", "post-copy", "pre-copy", "teleport"),
        List.copyOf(settings.strategyNames()));
  }

  @Test
  void rejectsAStrategyThatHasNoSection() {
    FerrySettings settings = load("");

    InvalidSettingsException e =
        assertThrows(InvalidSettingsException.class, () -> settings.strategy("nope"));
    assertTrue(e.getMessage().startsWith("ferry.strategies.nope: "), e::getMessage);
  }

  @Test
  void reportsAnUnresolvableSubstitutionWithoutARawConfigException() {
    InvalidSettingsException e = rejected("ferry.node.host = ${FERRY_TEST_SURELY_UNSET}");

    assertTrue(e.getMessage().startsWith("cannot read configuration: "), e::getMessage);
    assertEquals("", e.key());
  }

  @Test
  void resolvesSubstitutionsAgainstTheConfigItself() {
    FerrySettings settings = load("my-port = 7499\nferry.http.port = ${my-port}");

    assertEquals(7499, settings.http().port());
  }

  @Test
  void doesNotPrintTheTokenOrTheRawConfig() {
    FerrySettings settings = load("ferry.http.token = s3cret");

    assertFalse(settings.toString().contains("s3cret"), settings::toString);
    assertFalse(settings.http().toString().contains("s3cret"));
  }

  @Test
  void settingsBuiltByHandAreValidatedToo() {
    InvalidSettingsException e =
        assertThrows(
            InvalidSettingsException.class,
            () -> new NodeSettings("n", "h", 7401, Path.of("d"), "jit", List.of()));

    assertTrue(e.getMessage().startsWith("ferry.node.engine: "), e::getMessage);
    assertThrows(
        InvalidSettingsException.class,
        () -> new RuntimeSettings("wasm-opt", 4104, Duration.ZERO, 16, Duration.ofMillis(1)));
    assertThrows(InvalidSettingsException.class, () -> new StoreSettings(0));
  }
}
