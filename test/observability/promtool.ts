import { spawn } from 'node:child_process';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `input` on stdin. A missing promtool fails the test: .ci/run installs it. */
export function promtool(args: string[], input?: string, cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d.toString()));
    p.stderr.on('data', (d) => (stderr += d.toString()));
    p.once('error', (err) => reject(new Error(`promtool could not run (Debian package "prometheus"): ${err.message}`)));
    p.once('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

/**
 * prom-client's default Node metrics include gauges whose names end in _total; promtool's linter flags
 * them. They are Node's standard names that dashboards use, so those findings (and only those) are accepted.
 */
const ACCEPTED_LINT = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/**
 * `promtool check metrics` over an exposition: it must parse (exit 1 is a parse error; 3 means lint
 * findings), and any lint finding other than the accepted ones fails.
 */
export async function checkMetrics(text: string): Promise<void> {
  const r = await promtool(['check', 'metrics'], text);
  const findings = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const unexpected = findings.filter((l) => !ACCEPTED_LINT.test(l));
  if ((r.code !== 0 && r.code !== 3) || unexpected.length > 0) {
    throw new Error(`promtool check metrics exited ${r.code}:\n${unexpected.join('\n')}`);
  }
}
