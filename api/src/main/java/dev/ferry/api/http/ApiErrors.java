package dev.ferry.api.http;

import dev.ferry.node.service.FerryException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds the one error format of the API, {@code {"error": {"kind": "NOT_FOUND", "message":
 * "..."}}}, from a status or from whatever a request failed with. {@code kind} is a {@link
 * FerryException.Kind} name, or {@code METHOD_NOT_ALLOWED} for a 405, which has no Kind.
 */
public final class ApiErrors {
  private static final Logger log = LoggerFactory.getLogger(ApiErrors.class);

  /**
   * The kind written for a wrong method; every other status maps to a {@link FerryException.Kind}.
   */
  public static final String METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED";

  private ApiErrors() {}

  /** An error response of {@code kind} with the status that kind carries. */
  public static HttpResponse of(FerryException.Kind kind, String message) {
    return of(kind.httpStatus(), kind.name(), message);
  }

  /** An error response with an explicit status and kind. */
  public static HttpResponse of(int status, String kind, String message) {
    Map<String, String> error = new LinkedHashMap<>();
    error.put("kind", kind);
    error.put("message", message);
    return HttpResponse.create()
        .withStatus(StatusCodes.get(status))
        .withEntity(ContentTypes.APPLICATION_JSON, ApiJson.write(Map.of("error", error)));
  }

  /** The kind name for a bare status, for responses that did not come from a FerryException. */
  public static String kindFor(int status) {
    if (status == 405) {
      return METHOD_NOT_ALLOWED;
    }
    for (FerryException.Kind k : FerryException.Kind.values()) {
      if (k.httpStatus() == status) {
        return k.name();
      }
    }
    return status >= 500
        ? FerryException.Kind.INTERNAL.name()
        : FerryException.Kind.BAD_REQUEST.name();
  }

  /**
   * The response for a failed request: a too-large body is 413, a {@link FerryException} (found
   * through CompletionException wrappers) keeps its kind, anything else is a 500 that is logged
   * with its stack trace because it is a bug or an unexpected fault.
   */
  public static HttpResponse fromThrowable(Throwable t, long maxUploadBytes) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof EntityStreamSizeException) {
        return tooLarge(maxUploadBytes);
      }
      if (c instanceof FerryException fe) {
        if (fe.kind() == FerryException.Kind.INTERNAL) {
          log.error("request failed: {}", fe.getMessage(), fe);
        }
        return of(fe.kind(), fe.getMessage());
      }
    }
    Throwable root = t;
    while ((root instanceof java.util.concurrent.CompletionException
            || root instanceof java.util.concurrent.ExecutionException)
        && root.getCause() != null) {
      root = root.getCause();
    }
    log.error("request failed unexpectedly", root);
    return of(FerryException.Kind.INTERNAL, "internal error: " + root);
  }

  /** 413 naming the limit and the setting that raises it. */
  public static HttpResponse tooLarge(long maxUploadBytes) {
    return of(
        FerryException.Kind.PAYLOAD_TOO_LARGE,
        "request body is larger than the limit of "
            + maxUploadBytes
            + " bytes ("
            + humanBytes(maxUploadBytes)
            + "); raise ferry.http.max-upload-bytes on the node to accept it");
  }

  static String humanBytes(long n) {
    String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int u = 0;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return u == 0 ? n + " B" : String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
  }
}
