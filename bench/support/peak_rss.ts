/**
 * The peak resident memory of processes a benchmark does not start itself
 * (workers started by a master), sampled from /proc while they run.
 *
 * @module
 */

/** A running sampler; `stop()` returns the highest VmHWM seen, in bytes (0 when none matched). */
export interface PeakSampler {
  stop(): Promise<number>;
}

/**
 * Sample every process whose command line matches `pattern`, every
 * `everyMs`. Make the pattern name the job (`--job KEY`), so other
 * processes on the machine are not counted.
 */
export function samplePeakRss(pattern: RegExp, everyMs = 25): PeakSampler {
  let peak = 0;
  const scan = () => {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
        if (!pattern.test(cmdline)) continue;
        const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
        const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
        peak = Math.max(peak, hwm);
      } catch { /* the process ended meanwhile */ }
    }
  };
  const timer = setInterval(scan, everyMs);
  return {
    stop() {
      clearInterval(timer);
      scan();
      return Promise.resolve(peak);
    },
  };
}
