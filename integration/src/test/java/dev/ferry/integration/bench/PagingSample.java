package dev.ferry.integration.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One run of the paging benchmark: a fresh {@code dirty} process of {@code mib} MiB with {@code
 * percent}% of its pages hot, settled, then migrated once with {@code strategy}.
 *
 * @param run its number within its cell (size, dirty fraction), from 1; warm-ups count down from 0
 * @param before the process just before the migration (null if it never got there)
 * @param migration the final migration record (null if none was made)
 * @param pages the record's {@code pages} (null for a strategy that reports none: data-segment)
 * @param resume what the guest reported of its resume (null if it reported nothing)
 * @param failure why the run has no committed migration, or what went wrong after it; empty if
 *     nothing did
 */
record PagingSample(
    int mib,
    int percent,
    String strategy,
    int run,
    boolean warmUp,
    Before before,
    Sample migration,
    Pages pages,
    Resume resume,
    String failure) {

  /**
   * The process as it stood before the migration.
   *
   * @param areaPages the guest's 4 KiB pages ("filled N pages")
   * @param hotPages pages rewritten every step ("H hot")
   * @param pageSize of the paged memory
   * @param settleMillis from starting the process until it was settled (filled, cold pages written
   *     out, a replica in sync)
   * @param stored pages in the local copy of the paging file
   * @param flushed pages written out (to the paging file and every replica) since it started
   * @param dirty pages dirty at the last look
   * @param replica the node holding an in-sync replica (null if the nodes keep none)
   */
  record Before(
      long areaPages,
      long hotPages,
      int pageSize,
      long settleMillis,
      long stored,
      long flushed,
      long dirty,
      String replica) {}

  /** The record's {@code pages} (see docs/openapi.yaml, MigrationPages). */
  record Pages(
      long dirtyAtFreeze,
      long beforeFreeze,
      long duringFreeze,
      long afterFreeze,
      int rounds,
      long remoteFaultsAfterResume,
      long bytesDuringFreeze) {

    static Pages of(JsonNode record) {
      JsonNode p = record.path("pages");
      if (!p.isObject()) {
        return null;
      }
      return new Pages(
          p.path("dirtyAtFreeze").asLong(),
          p.path("beforeFreeze").asLong(),
          p.path("duringFreeze").asLong(),
          p.path("afterFreeze").asLong(),
          p.path("rounds").asInt(),
          p.path("remoteFaultsAfterResume").asLong(),
          p.path("bytesDuringFreeze").asLong());
    }
  }

  /** The guest's stderr line after a resume (guests/README.md, dirty). */
  record Resume(
      long step,
      long frozenMicros,
      int beforeN,
      long beforeMeanNs,
      long beforeMedianNs,
      int afterN,
      long afterMeanNs,
      long afterMedianNs,
      long afterMaxNs) {
    static final Pattern LINE =
        Pattern.compile(
            "resume step=(\\d+) frozen_us=(\\d+) before_n=(\\d+) before_mean_ns=(\\d+)"
                + " before_median_ns=(\\d+) after_n=(\\d+) after_mean_ns=(\\d+)"
                + " after_median_ns=(\\d+) after_max_ns=(\\d+)");

    /** The first resume line in {@code stderr}, or null. */
    static Resume find(String stderr) {
      Matcher m = LINE.matcher(stderr);
      if (!m.find()) {
        return null;
      }
      return new Resume(
          Long.parseLong(m.group(1)),
          Long.parseLong(m.group(2)),
          Integer.parseInt(m.group(3)),
          Long.parseLong(m.group(4)),
          Long.parseLong(m.group(5)),
          Integer.parseInt(m.group(6)),
          Long.parseLong(m.group(7)),
          Long.parseLong(m.group(8)),
          Long.parseLong(m.group(9)));
    }
  }

  boolean committed() {
    return migration != null && migration.committed();
  }

  /** Measured: committed, not a warm-up. */
  boolean measured() {
    return !warmUp && committed();
  }

  double freezeMicros() {
    return migration.totalFreezeMicros();
  }

  double totalMicros() {
    return migration.totalMicros();
  }

  /**
   * Bytes sent while the process stood still: for a strategy with a page report, the pages it wrote
   * out during the freeze ({@code pages.bytesDuringFreeze}) plus the image, which the bundle
   * carries during the freeze (the bundle's logs and, on a first move, its module are left out: the
   * guest writes no log while measured); for data-segment, everything it moved.
   */
  double freezeBytes() {
    if (pages == null) {
      return migration.bytesMoved();
    }
    return pages.bytesDuringFreeze() + migration.imageBytes();
  }

  /**
   * Bytes the migration moved in all: its {@code bytesMoved}, or, if more, the bytes during the
   * freeze plus the pages moved before and after it.
   */
  double totalBytes() {
    double pagesOutside =
        pages == null
            ? 0
            : (double) (pages.beforeFreeze() + pages.afterFreeze())
                * (before == null ? 0 : before.pageSize());
    return Math.max(migration.bytesMoved(), freezeBytes() + pagesOutside);
  }

  /** Mean step time of the first steps after the resume over that of the steps before. */
  double slowdown() {
    return resume == null || resume.beforeMeanNs() == 0
        ? Double.NaN
        : (double) resume.afterMeanNs() / resume.beforeMeanNs();
  }

  /** The slowest step after the resume over the median step before. */
  double slowestStep() {
    return resume == null || resume.beforeMedianNs() == 0
        ? Double.NaN
        : (double) resume.afterMaxNs() / resume.beforeMedianNs();
  }

  /**
   * The work time the first steps after the resume took beyond as many steps of the median work
   * time before, in µs: what the resume cost the guest once it ran again (page-ins).
   */
  double extraWorkMicros() {
    return resume == null
        ? Double.NaN
        : (resume.afterMeanNs() - resume.beforeMedianNs()) * (double) resume.afterN() / 1000.0;
  }

  /**
   * The part of the freeze in none of the record's phases (until still, capture, transfer,
   * restore), µs: for gfvm, writing the dirty pages out happens there.
   */
  double unphasedFreezeMicros() {
    Sample m = migration;
    return m.totalFreezeMicros()
        - m.freezeMicros()
        - m.captureMicros()
        - m.transferMicros()
        - m.restoreMicros();
  }

  /** Pages written out in the background before the migration, in bytes. */
  double writtenOutBefore() {
    return before == null ? Double.NaN : (double) before.flushed() * before.pageSize();
  }

  static String csvHeader() {
    return "mib,dirty_percent,strategy,run,warm_up,failure,area_pages,hot_pages,page_size,settle_ms,"
        + "stored_before,flushed_before,dirty_before,replica,freeze_bytes,total_bytes,"
        + "pages_dirty_at_freeze,pages_before_freeze,pages_during_freeze,pages_after_freeze,rounds,"
        + "remote_faults_after_resume,page_bytes_during_freeze,resume_step,guest_frozen_us,"
        + "before_n,before_mean_ns,before_median_ns,after_n,after_mean_ns,after_median_ns,"
        + "after_max_ns,"
        + Sample.csvHeader();
  }

  String csv() {
    List<String> c = new ArrayList<>();
    c.add(Integer.toString(mib));
    c.add(Integer.toString(percent));
    c.add(strategy);
    c.add(Integer.toString(run));
    c.add(Boolean.toString(warmUp));
    c.add('"' + failure.replace("\"", "'") + '"');
    if (before == null) {
      c.addAll(List.of("", "", "", "", "", "", "", ""));
    } else {
      c.add(Long.toString(before.areaPages()));
      c.add(Long.toString(before.hotPages()));
      c.add(Integer.toString(before.pageSize()));
      c.add(Long.toString(before.settleMillis()));
      c.add(Long.toString(before.stored()));
      c.add(Long.toString(before.flushed()));
      c.add(Long.toString(before.dirty()));
      c.add(before.replica() == null ? "" : before.replica());
    }
    c.add(migration == null ? "" : String.format(Locale.ROOT, "%.0f", freezeBytes()));
    c.add(migration == null ? "" : String.format(Locale.ROOT, "%.0f", totalBytes()));
    if (pages == null) {
      c.addAll(List.of("", "", "", "", "", "", ""));
    } else {
      c.add(Long.toString(pages.dirtyAtFreeze()));
      c.add(Long.toString(pages.beforeFreeze()));
      c.add(Long.toString(pages.duringFreeze()));
      c.add(Long.toString(pages.afterFreeze()));
      c.add(Integer.toString(pages.rounds()));
      c.add(Long.toString(pages.remoteFaultsAfterResume()));
      c.add(Long.toString(pages.bytesDuringFreeze()));
    }
    if (resume == null) {
      c.addAll(List.of("", "", "", "", "", "", "", "", ""));
    } else {
      c.add(Long.toString(resume.step()));
      c.add(Long.toString(resume.frozenMicros()));
      c.add(Integer.toString(resume.beforeN()));
      c.add(Long.toString(resume.beforeMeanNs()));
      c.add(Long.toString(resume.beforeMedianNs()));
      c.add(Integer.toString(resume.afterN()));
      c.add(Long.toString(resume.afterMeanNs()));
      c.add(Long.toString(resume.afterMedianNs()));
      c.add(Long.toString(resume.afterMaxNs()));
    }
    String head = String.join(",", c);
    if (migration == null) {
      return head + "," + ",".repeat(Sample.csvHeader().split(",", -1).length - 1);
    }
    return head + "," + migration.csv();
  }
}
