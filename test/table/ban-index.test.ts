import assert from 'node:assert/strict';
import { NetworkSet } from '../../src/net/networks';
import { PrefixTrie, ipv4Number, ipv6Bytes } from '../../src/net/prefix-trie';
import { BanIndex } from '../../src/table/ban-index';
import type { BlockRecord } from '../../src/table/policy-records';
import { UserAgentMatcher } from '../../src/table/user-agent-matcher';

const ban = (over: Partial<BlockRecord> & { id: string }): BlockRecord => ({ kind: 'block', updatedAt: 1, ...over });

describe('PrefixTrie', () => {
  it('parses IPv4 and IPv6 addresses, refusing what is neither', () => {
    assert.equal(ipv4Number('10.0.0.1'), 0x0a000001);
    assert.equal(ipv4Number('255.255.255.255'), 0xffffffff);
    for (const bad of ['10.0.0', '10.0.0.256', '1..2.3', 'a.b.c.d', '', '1.2.3.4.5']) assert.equal(ipv4Number(bad), -1, bad);
    assert.deepEqual([...ipv6Bytes('2001:db8::1')!], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual([...ipv6Bytes('::ffff:1.2.3.4')!].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual([...ipv6Bytes('::')!], new Array(16).fill(0));
    assert.equal(ipv6Bytes('1.2.3.4'), null);
  });

  it('finds the ranges holding an address, widest first, IPv4-mapped IPv6 judged as IPv4', () => {
    const t = new PrefixTrie<string>();
    for (const c of ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3', '2001:db8::/32', '::1', '0.0.0.0/0']) assert.ok(t.add(c, c));
    assert.equal(t.add('not-a-range', 'x'), false);
    const all = (a: string) => {
      const seen: string[] = [];
      t.find(a, (v) => (seen.push(v), false));
      return seen;
    };
    assert.deepEqual(all('10.1.2.3'), ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.3']);
    assert.deepEqual(all('::ffff:10.1.9.9'), ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16']);
    assert.deepEqual(all('2001:db8:ffff::7'), ['2001:db8::/32']);
    assert.deepEqual(all('::1'), ['::1']);
    assert.deepEqual(all('2001:db9::1'), []);
    assert.equal(t.find('10.1.2.3', (v) => v === '10.1.0.0/16'), '10.1.0.0/16');
    assert.equal(t.find('garbage', () => true), undefined);
  });

  it('answers as a list of every range does, for 10,000 random ranges and addresses', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    const t = new PrefixTrie<number>();
    const ranges: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const a = rand();
      const c = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${8 + (rand() % 25)}`;
      ranges.push(c);
      t.add(c, i);
    }
    const list = new NetworkSet(ranges);
    for (let i = 0; i < 2000; i++) {
      const a = rand();
      const address = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      assert.equal(t.find(address, () => true) !== undefined, list.has(address), address);
    }
  });
});

describe('UserAgentMatcher', () => {
  it('answers every matching pattern, across chunks, patterns with back-references kept apart', () => {
    const patterns = Array.from({ length: 150 }, (_, i) => `^bot-${i}\\b`);
    patterns.push('(ab)\\1', 'curl/', '(?<v>x)y');
    const m = new UserAgentMatcher(patterns);
    assert.equal(m.size, 153);
    assert.deepEqual(m.matches('bot-7 and curl/8'), [7, 151]);
    assert.deepEqual(m.matches('bot-149'), [149]);
    assert.deepEqual(m.matches('ababx'), [150]);
    assert.deepEqual(m.matches('xy'), [152]);
    assert.deepEqual(m.matches('Mozilla/5.0'), []);
    // Remembered: the same answer again.
    assert.deepEqual(m.matches('bot-7 and curl/8'), [7, 151]);
  });

  it('leaves out a pattern that does not compile and keeps the others', () => {
    const m = new UserAgentMatcher(['(unclosed', 'ok']);
    assert.equal(m.size, 1);
    assert.deepEqual(m.matches('ok'), [1]);
  });
});

describe('BanIndex', () => {
  it('applies a ban to its tool only and not after it expires', () => {
    const now = 1_000_000;
    const index = BanIndex.of([
      ban({ id: 'a', cidr: '10.0.0.0/8', tool: 'web' }),
      ban({ id: 'b', cidr: '10.0.0.0/8', expiresAt: now }),
      ban({ id: 'c', userAgent: 'Scraper', expiresAt: now + 1 }),
    ]);
    assert.equal(index.byAddress('10.2.3.4', 'web', now)?.id, 'a');
    assert.equal(index.byAddress('10.2.3.4', 'api', now), undefined);
    assert.equal(index.byAddress('10.2.3.4', 'api', now - 1)?.id, 'b');
    assert.equal(index.byUserAgent('A Scraper 1.0', 'api', now)?.id, 'c');
    assert.equal(index.byUserAgent('A Scraper 1.0', 'api', now + 1), undefined);
  });
});

describe('BanIndex changed rather than rebuilt', () => {
  it('answers as an index built from scratch, after random additions, replacements and removals', () => {
    let seed = 99;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    const addressOf = (a: number) => `10.${(a >>> 16) & 3}.${(a >>> 8) & 255}.${a & 255}`;
    let current = new Map<string, BlockRecord>();
    for (let i = 0; i < 300; i++) current.set(`b${i}`, ban({ id: `b${i}`, cidr: `${addressOf(rand())}/${20 + (rand() % 13)}`, tool: rand() % 3 === 0 ? 'web' : undefined }));
    let index = BanIndex.of([...current.values()]);
    for (let round = 0; round < 30; round++) {
      const next = new Map(current);
      const added: BlockRecord[] = [];
      const removed: BlockRecord[] = [];
      for (let k = 0; k < 10; k++) {
        const id = `b${rand() % 400}`;
        const before = next.get(id);
        if (before) removed.push(before);
        if (rand() % 4 === 0) next.delete(id);
        else {
          const b = rand() % 5 === 0 ? ban({ id, userAgent: `^Bot-${id}/` }) : ban({ id, cidr: `${addressOf(rand())}/${20 + (rand() % 13)}` });
          next.set(id, b);
          added.push(b);
        }
      }
      index = index.withChanges(added, removed);
      current = next;
      const fresh = BanIndex.of([...current.values()]);
      for (let i = 0; i < 200; i++) {
        const address = addressOf(rand());
        for (const tool of ['web', 'api']) assert.equal(index.byAddress(address, tool, 0)?.id, fresh.byAddress(address, tool, 0)?.id, `${address} round ${round}`);
      }
      for (const b of current.values()) if (b.userAgent) assert.equal(index.byUserAgent(`Bot-${b.id}/1`, 'web', 0)?.id, b.id);
      assert.equal(index.size, fresh.size);
    }
  });
});
