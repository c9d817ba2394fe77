import { waitFor } from './wait';

/** The value of one sample of a Prometheus text exposition, summed over label sets that match. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) {
      sum += Number(m[3]);
      seen = true;
    }
  }
  return seen ? sum : NaN;
}

/** The control port's /metrics; a scrape must answer even while the store is down (generous deadline). */
export async function scrape(p: { control: string }): Promise<string> {
  const res = await fetch(`${p.control}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

/** Scrapes until a sample satisfies `want`; answers that scrape. */
export async function waitMetric(
  p: { control: string },
  name: string,
  labels: Record<string, string>,
  want: (v: number) => boolean,
  what = `${name}${JSON.stringify(labels)}`,
): Promise<string> {
  let last = NaN;
  try {
    return await waitFor(
      what,
      async () => {
        const text = await scrape(p);
        last = metricValue(text, name, labels);
        return want(last) ? text : null;
      },
      15_000,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last value ${last})`);
  }
}
