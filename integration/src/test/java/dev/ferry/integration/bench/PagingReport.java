package dev.ferry.integration.bench;

import static dev.ferry.integration.bench.BenchReport.bytes;
import static dev.ferry.integration.bench.BenchReport.human;
import static dev.ferry.integration.bench.BenchReport.msCell;
import static dev.ferry.integration.bench.BenchReport.num;
import static dev.ferry.integration.bench.BenchReport.row;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/** The paging benchmark's Markdown report. */
final class PagingReport {
  /** The target: 256 MiB with about 1 % dirty freezes this many times faster with gfvm. */
  static final double GFVM_TARGET = 20.0;

  static final int TARGET_MIB = 256;
  static final int TARGET_PERCENT = 1;

  private PagingReport() {}

  static String render(
      PagingBench.Options o,
      BenchReport.Machine m,
      List<String> nodeFlags,
      Map<String, String> nodeJdks,
      Instant started,
      Instant ended,
      PagingBench.Results results,
      boolean complete) {
    List<PagingSample> all = results.samples();
    StringBuilder b = new StringBuilder();
    b.append("### Paging strategies, ")
        .append(PagingBench.NODES)
        .append(" node JVMs on loopback (")
        .append(started.toString(), 0, 16)
        .append("Z)")
        .append(complete ? "" : " — incomplete")
        .append("\n\n");
    BenchReport.setup(b, m, PagingBench.NODES, o.engine, nodeJdks, nodeFlags, o.commit, o.command);
    b.append("- Node settings: ")
        .append(
            o.nodeSettings.isEmpty()
                ? "the defaults (gfvm: replication-factor 2, page-size 4KiB, flush-interval 500ms,"
                    + " quiet-time 1s)"
                : "`" + String.join("`, `", o.nodeSettings) + "`, the rest the defaults")
        .append(".\n");
    b.append(
            "- Method: the `dirty` module is uploaded to every node first. Per run, one fresh paged process (`\"paged\": true`) of `dirty <MiB> <%> ")
        .append(PagingBench.STEPS)
        .append(" 1 ")
        .append(o.window)
        .append(
            "` (guests/README.md) started on n1; once it has filled its area, its cold pages are"
                + " in the paging file, a replica is in sync and no more pages are dirty than its"
                + " hot set (+")
        .append(PagingBench.DIRTY_SLACK)
        .append(
            "), it is migrated once (gfvm: to the node holding the replica; the others: to n2)"
                + " with `{\"strategy\": …, \"to\": …, \"wait\": true}`, the guest's report of its"
                + " resume is read from its stderr, and it is killed. A run tries every strategy"
                + " once, in an order that rotates from run to run; ")
        .append(o.runs)
        .append(" runs per cell, run r of every cell before run r + 1 of any");
    if (o.jitWarmupSeconds > 0) {
      b.append(", after the guest ran ")
          .append(o.jitWarmupSeconds)
          .append(" s on every node at once (to warm the nodes' JIT up)");
    }
    if (o.warmup > 0) {
      b.append(o.jitWarmupSeconds > 0 ? " and " : ", after ")
          .append(o.warmup)
          .append(" warm-up round(s) of every strategy at every size (not counted)");
    }
    b.append(". Wall time ").append(human(Duration.between(started, ended))).append(".\n");
    for (Map.Entry<String, String> e : results.notOffered().entrySet()) {
      b.append("- `")
          .append(e.getKey())
          .append("`: not offered by the nodes (")
          .append(e.getValue().replace("|", "\\|"))
          .append(").\n");
    }
    b.append("\n");

    b.append(
        "| address space | dirty | strategy | runs | freeze | total | moved during freeze | moved in"
            + " total | pages dirty at freeze | freeze: full copy ÷ this | total: full copy ÷ this"
            + " | work per step after resume ÷ before | extra work after resume |\n");
    b.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int mib : o.sizesMib) {
      for (int pct : o.dirtyPercents) {
        for (String strategy : o.strategies) {
          b.append(mainRow(all, results, mib, pct, strategy));
        }
      }
    }
    b.append("\nMedians over the runs. *freeze* = `totalFreezeMicros` (ms, from the freeze request")
        .append(" until the process runs at the destination); *total* = `totalMicros` (ms);")
        .append(" *moved during freeze*: data-segment `bytesMoved` (all of it moves frozen);")
        .append(" a strategy with a page report: `pages.bytesDuringFreeze` plus the image")
        .append(" (`imageBytes`, memory left out) that the bundle carries; *moved in total*:")
        .append(" `bytesMoved`, or that plus the pages moved before and after the freeze if more.")
        .append(" Neither counts what the background flusher wrote to the paging file and its")
        .append(" replica before the migration (second table). *full copy ÷ this*: data-segment's")
        .append(" time over this strategy's in the same run, median over the runs (× faster).")
        .append(" *work per step after resume ÷ before*: the guest's mean work time per step")
        .append(" (its writes to the hot set, timed by its monotonic clock, with no frozen or")
        .append(" restoring time in it) over the ")
        .append(o.window)
        .append(" steps from its resume on, over that of the ")
        .append(o.window)
        .append(" steps before (1 = no slowdown); *extra work after resume*: what those ")
        .append(o.window)
        .append(" steps took beyond as many steps of the median work time before (ms): the")
        .append(" page-ins, and whatever else slowed the guest once it ran again.\n\n");

    b.append(
        "| address space | dirty | strategy | until still | capture | transfer | restore | freeze"
            + " in no phase | image |"
            + " written out before | settled after | guest saw itself frozen | work per step before"
            + " | work per step after | largest after | not committed |\n");
    b.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int mib : o.sizesMib) {
      for (int pct : o.dirtyPercents) {
        for (String strategy : o.strategies) {
          if (results.notOffered().containsKey(strategy)) {
            continue;
          }
          List<PagingSample> c = cell(all, mib, pct, strategy);
          List<PagingSample> resumed = c.stream().filter(s -> s.resume() != null).toList();
          b.append(
              row(
                  mib + " MiB",
                  pct + " %",
                  strategy,
                  msCell(Stats.median(c, s -> s.migration().freezeMicros())),
                  msCell(Stats.median(c, s -> s.migration().captureMicros())),
                  msCell(Stats.median(c, s -> s.migration().transferMicros())),
                  msCell(Stats.median(c, s -> s.migration().restoreMicros())),
                  msCell(Stats.median(c, PagingSample::unphasedFreezeMicros)),
                  bytes(Stats.median(c, s -> s.migration().imageBytes())),
                  bytes(Stats.median(c, PagingSample::writtenOutBefore)),
                  seconds(Stats.median(c, s -> s.before().settleMillis())),
                  msCell(Stats.median(resumed, s -> s.resume().frozenMicros())),
                  micros(Stats.median(resumed, s -> s.resume().beforeMeanNs())),
                  micros(Stats.median(resumed, s -> s.resume().afterMeanNs())),
                  micros(Stats.median(resumed, s -> s.resume().afterMaxNs())),
                  String.valueOf(failed(all, mib, pct, strategy).size())));
        }
      }
    }
    b.append("\nMedians. *until still*, *capture*, *transfer*, *restore*: the record's phases")
        .append(" (ms); *freeze in no phase*: *freeze* less those four (gfvm writes its dirty")
        .append(
            " pages out there); *image*: `imageBytes`; *written out before*: pages the background flusher")
        .append(" had written (to the local paging file and to each replica) by the time the")
        .append(" process settled, × page size; *settled after*: from starting the process until")
        .append(" it was ready to move (s); *guest saw itself frozen*: the jump of its realtime")
        .append(" clock against its monotonic clock (ms); *work per step*: means, and the largest")
        .append(" after, in µs; *not committed*: runs without a committed migration (listed")
        .append(" below with any other problem).\n");

    boolean anyFailed = false;
    for (PagingSample s : all) {
      if (!s.failure().isEmpty()) {
        if (!anyFailed) {
          b.append("\nRuns not measured or with a problem:\n\n");
          anyFailed = true;
        }
        b.append("- ")
            .append(s.mib())
            .append(" MiB ")
            .append(s.percent())
            .append(" % ")
            .append(s.strategy())
            .append(" run ")
            .append(s.run())
            .append(s.warmUp() ? " (warm-up)" : "")
            .append(": ")
            .append(s.failure())
            .append("\n");
      }
    }

    b.append("\nTarget (checked as measured, not tuned):\n\n");
    if (results.notOffered().containsKey("gfvm") || !o.strategies.contains("gfvm")) {
      b.append("- gfvm not measured.\n");
      return b.toString();
    }
    for (int pct : o.dirtyPercents) {
      List<String> parts = new ArrayList<>();
      for (int mib : o.sizesMib) {
        List<PagingSample> c = cell(all, mib, pct, "gfvm");
        parts.add(
            mib
                + " MiB "
                + msCell(Stats.median(c, PagingSample::freezeMicros))
                + " ms ("
                + bytes(Stats.median(c, PagingSample::freezeBytes))
                + ")");
      }
      b.append("- gfvm freeze at ")
          .append(pct)
          .append(" % dirty: ")
          .append(String.join(", ", parts))
          .append(".\n");
    }
    if (o.sizesMib.contains(TARGET_MIB)
        && o.dirtyPercents.contains(TARGET_PERCENT)
        && o.strategies.contains(PagingBench.FULL_COPY)
        && !results.notOffered().containsKey(PagingBench.FULL_COPY)) {
      double ratio =
          ratio(all, TARGET_MIB, TARGET_PERCENT, "gfvm", PagingSample::freezeMicros).median();
      b.append("- ")
          .append(TARGET_MIB)
          .append(" MiB, ")
          .append(TARGET_PERCENT)
          .append(" % dirty: gfvm freezes ")
          .append(num(ratio, 1))
          .append("× faster than a full copy in the same run (median over the runs), against ≥ ")
          .append(num(GFVM_TARGET, 0))
          .append("×: **")
          .append(Double.isNaN(ratio) ? "not measured" : ratio >= GFVM_TARGET ? "met" : "not met")
          .append("**.\n");
    }
    return b.toString();
  }

  private static String mainRow(
      List<PagingSample> all, PagingBench.Results results, int mib, int pct, String strategy) {
    if (results.notOffered().containsKey(strategy)) {
      return row(
          mib + " MiB",
          pct + " %",
          strategy,
          "not offered by the nodes",
          "–",
          "–",
          "–",
          "–",
          "–",
          "–",
          "–",
          "–",
          "–");
    }
    List<PagingSample> c = cell(all, mib, pct, strategy);
    int notMeasured = failed(all, mib, pct, strategy).size();
    boolean baseline = strategy.equals(PagingBench.FULL_COPY);
    Ratio freeze = ratio(all, mib, pct, strategy, PagingSample::freezeMicros);
    Ratio total = ratio(all, mib, pct, strategy, PagingSample::totalMicros);
    return row(
        mib + " MiB",
        pct + " %",
        strategy,
        c.size() + (notMeasured == 0 ? "" : " (+" + notMeasured + " not committed)"),
        msCell(Stats.median(c, PagingSample::freezeMicros)),
        msCell(Stats.median(c, PagingSample::totalMicros)),
        bytes(Stats.median(c, PagingSample::freezeBytes)),
        bytes(Stats.median(c, PagingSample::totalBytes)),
        num(
            Stats.median(
                c.stream().filter(s -> s.pages() != null).toList(), s -> s.pages().dirtyAtFreeze()),
            0),
        baseline ? "1 (baseline)" : freeze.cell(),
        baseline ? "1 (baseline)" : total.cell(),
        num(
            Stats.median(
                c.stream().filter(s -> s.resume() != null).toList(), PagingSample::slowdown),
            2),
        msCell(
            Stats.median(
                c.stream().filter(s -> s.resume() != null).toList(),
                PagingSample::extraWorkMicros)));
  }

  /** The measured runs of one strategy in one cell. */
  static List<PagingSample> cell(List<PagingSample> all, int mib, int pct, String strategy) {
    return all.stream()
        .filter(s -> s.mib() == mib && s.percent() == pct && s.strategy().equals(strategy))
        .filter(PagingSample::measured)
        .toList();
  }

  /** The runs of one strategy in one cell that have no committed migration. */
  static List<PagingSample> failed(List<PagingSample> all, int mib, int pct, String strategy) {
    return all.stream()
        .filter(s -> s.mib() == mib && s.percent() == pct && s.strategy().equals(strategy))
        .filter(s -> !s.warmUp() && !s.committed())
        .toList();
  }

  /** Per run, full copy's value over this strategy's; the median and how many runs had both. */
  record Ratio(List<Double> perRun) {
    double median() {
      return Stats.median(perRun, x -> x);
    }

    String cell() {
      return perRun.isEmpty() ? "–" : num(median(), 1) + "×";
    }
  }

  static Ratio ratio(
      List<PagingSample> all,
      int mib,
      int pct,
      String strategy,
      ToDoubleFunction<PagingSample> metric) {
    List<PagingSample> base = cell(all, mib, pct, PagingBench.FULL_COPY);
    List<Double> out = new ArrayList<>();
    for (PagingSample s : cell(all, mib, pct, strategy)) {
      for (PagingSample f : base) {
        if (f.run() == s.run() && metric.applyAsDouble(s) > 0) {
          out.add(metric.applyAsDouble(f) / metric.applyAsDouble(s));
        }
      }
    }
    return new Ratio(out);
  }

  private static String seconds(double millis) {
    return Double.isNaN(millis) ? "–" : num(millis / 1000.0, 1) + " s";
  }

  private static String micros(double nanos) {
    return Double.isNaN(nanos) ? "–" : num(nanos / 1000.0, nanos < 100_000 ? 1 : 0);
  }
}
