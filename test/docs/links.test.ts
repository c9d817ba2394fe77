import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { anchorsOf, headingSlug } from '../support/markdown';

const ROOT = path.join(__dirname, '..', '..');
const DOCUMENTS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The targets of a document's markdown links, outside code: `[text](target)`. */
function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}

// README.md was split into docs/: a section moved or renamed must take its links along.
describe('links of README.md and docs/', () => {
  it('find the documents they read', () => {
    assert.ok(DOCUMENTS.length >= 10, DOCUMENTS.join(' '));
  });

  it('each point at a file of the repository, and at a heading that file has', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const doc of DOCUMENTS) {
      const markdown = readFileSync(path.join(ROOT, doc), 'utf8');
      for (const target of linkTargets(markdown)) {
        if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
        checked++;
        const [file, anchor] = target.split('#', 2);
        const resolved = file ? path.join(path.dirname(doc), file) : doc;
        if (!existsSync(path.join(ROOT, resolved))) {
          broken.push(`${doc}: ${target} (no file ${resolved})`);
          continue;
        }
        if (anchor !== undefined && !anchorsOf(readFileSync(path.join(ROOT, resolved), 'utf8')).has(anchor)) {
          broken.push(`${doc}: ${target} (no heading #${anchor} in ${resolved})`);
        }
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(checked >= 40, `only ${checked} links checked`);
  });

  it('make anchors as GitHub does', () => {
    assert.equal(headingSlug('HTTPS (`proxy.tls`)'), 'https-proxytls');
    assert.equal(headingSlug('Self-healing: fallback port discovery'), 'self-healing-fallback-port-discovery');
    assert.equal(headingSlug('Metrics (`GET /metrics` on the control port, every role)'), 'metrics-get-metrics-on-the-control-port-every-role');
    assert.deepEqual([...anchorsOf('# A\n## A\n```\n# not a heading\n```\n<a id="x"></a>')].sort(), ['a', 'a-1', 'x']);
  });
});
