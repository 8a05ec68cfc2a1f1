package dev.ferry.api.http;

import org.apache.pekko.event.LoggingAdapter;
import org.apache.pekko.http.ParsingErrorHandler;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.scaladsl.model.ErrorInfo;
import org.apache.pekko.http.scaladsl.model.StatusCode;
import org.apache.pekko.http.scaladsl.settings.ServerSettings;

/**
 * Answers requests so malformed that no route sees them (a bad request line, an oversized header)
 * in the API's JSON error format instead of Pekko's plain text. Installed by {@link
 * FerryHttpServer} through {@code pekko.http.server.parsing.error-handler}, which instantiates it
 * by class name: keep the public no-argument constructor.
 */
public final class JsonParsingErrorHandler extends ParsingErrorHandler {
  public JsonParsingErrorHandler() {}

  @Override
  public HttpResponse handle(
      StatusCode status, ErrorInfo info, LoggingAdapter log, ServerSettings settings) {
    log.debug("malformed request: {}", info.formatPretty());
    String message = info.summary().isEmpty() ? status.reason() : info.summary();
    return ApiErrors.of(status.intValue(), ApiErrors.kindFor(status.intValue()), message);
  }
}
