import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

export const ALERT_RULES = path.join(__dirname, '..', '..', 'config', 'prometheus', 'alerts.yml');

/**
 * One rule's summary and description in config/prometheus/alerts.yml, as templates: the description's
 * folded block (`>-`) joined with spaces as YAML folds it. The file is ours; its layout is known.
 */
export function ruleAnnotations(alert: string): { summary: string; description: string } {
  const block = readFileSync(ALERT_RULES, 'utf8').split(/^\s*- alert: /m).find((b) => b.split('\n')[0].trim() === alert);
  if (!block) throw new Error(`no rule ${alert} in ${ALERT_RULES}`);
  const summary = /summary: "(.*)"/.exec(block)![1];
  const folded = /description: >-\n((?:\s{12}.*\n?)+)/.exec(block)![1];
  const description = folded
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  return { summary, description };
}

/**
 * `promtool test rules` on a test file (its text: series recorded during a run and what the rules must
 * do with them) written next to a copy of the real alerts.yml, which it loads as `rule_files: [alerts.yml]`.
 */
export async function testRecorded(tests: string): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-promtool-'));
  copyFileSync(ALERT_RULES, path.join(dir, 'alerts.yml'));
  writeFileSync(path.join(dir, 'recorded.test.yml'), tests);
  return promtool(['test', 'rules', 'recorded.test.yml'], undefined, dir);
}
