import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, compareEventIds, maxEventId, procedureOf, queryKey } from '../src/util';

test('canonicalJson sorts keys at every level and keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
  assert.equal(canonicalJson(undefined), 'null');
});

test('queryKey is procedure:canonical input, as protocol section 4 recommends', () => {
  assert.equal(queryKey('agents.get', { id: 'a1', org: 'o' }), 'agents.get:{"id":"a1","org":"o"}');
  assert.equal(queryKey('agents.get', { org: 'o', id: 'a1' }), queryKey('agents.get', { id: 'a1', org: 'o' }));
  assert.equal(queryKey('stats', undefined), 'stats:null');
  assert.equal(procedureOf('agents.get:{"id":"a:1"}'), 'agents.get');
});

test('event ids compare numerically, not as strings', () => {
  assert.ok(compareEventIds('9', '10') < 0);
  assert.ok(compareEventIds('1764074400124001', '1764074400123999') > 0);
  assert.equal(compareEventIds('007', '7'), 0);
  assert.ok(compareEventIds(undefined, '1') < 0);
  assert.ok(compareEventIds('1', undefined) > 0);
  assert.equal(compareEventIds('1764074400123457', '1764074400123457'), 0);
  assert.ok(compareEventIds('9007199254740990', '9007199254740991') < 0, 'exact up to 53 bits');
  assert.equal(maxEventId('9', '10'), '10');
  assert.equal(maxEventId(undefined, '3'), '3');
});
