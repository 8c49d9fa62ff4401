// Installed once per execution context. Defines the n8n-style globals on top of the host
// functions in __lf_host (Rust), with per-item caches so an item's JSON crosses into JavaScript
// at most once per node, however many parameters read it.
(function (g) {
  'use strict';
  const host = g.__lf_host;
  delete g.__lf_host;
  const S = {
    itemGen: -1, inputGen: -1, dataGen: -1, itemIndex: 0, runIndex: 0,
    json: undefined, jsonGen: -2, binary: undefined, binaryGen: -2,
    item: undefined, itemGenSeen: -2, all: undefined, allGen: -2,
    nodeCache: new Map(), nodeCacheGen: -2,
  };
  const fns = [];
  const parse = JSON.parse;

  class LfDateTime extends Date {
    toString() { return this.toISOString(); }
    toISO() { return this.toISOString(); }
    toMillis() { return this.getTime(); }
    toJSON() { return this.toISOString(); }
    plus(ms) { return new LfDateTime(this.getTime() + Number(ms)); }
    minus(ms) { return new LfDateTime(this.getTime() - Number(ms)); }
  }

  function str(v) {
    if (v === undefined || v === null) return '';
    if (v instanceof Date) return v.toISOString();
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function currentItem() {
    if (S.itemGenSeen !== S.itemGen) { S.item = parse(host.item()); S.itemGenSeen = S.itemGen; }
    return S.item;
  }
  function inputAll() {
    if (S.allGen !== S.inputGen) { S.all = parse(host.inputAll()); S.allGen = S.inputGen; }
    return S.all;
  }
  function nodeItems(name) {
    if (S.nodeCacheGen !== S.dataGen) { S.nodeCache = new Map(); S.nodeCacheGen = S.dataGen; }
    let items = S.nodeCache.get(name);
    if (items === undefined) { items = parse(host.nodeAll(String(name))); S.nodeCache.set(name, items); }
    return items;
  }
  function nodeProxy(name) {
    name = String(name);
    return {
      get item() { return parse(host.nodePaired(name)); },
      all() { return nodeItems(name); },
      first() { return nodeItems(name)[0]; },
      last() { const a = nodeItems(name); return a[a.length - 1]; },
      get params() { return parse(host.nodeParams(name)); },
      get isExecuted() { return host.nodeExecuted(name); },
    };
  }

  const input = {
    get item() { return currentItem(); },
    all() { return inputAll(); },
    first() { return inputAll()[0]; },
    last() { const a = inputAll(); return a[a.length - 1]; },
  };
  const define = (name, get) => Object.defineProperty(g, name, { get, configurable: false, enumerable: false });
  define('$json', () => {
    if (S.jsonGen !== S.itemGen) { S.json = parse(host.json()); S.jsonGen = S.itemGen; }
    return S.json;
  });
  define('$binary', () => {
    if (S.binaryGen !== S.itemGen) { S.binary = parse(host.binary()); S.binaryGen = S.itemGen; }
    return S.binary;
  });
  define('$input', () => input);
  define('$itemIndex', () => S.itemIndex);
  define('$runIndex', () => S.runIndex);
  const globalsJson = parse(host.globals());
  const nowMs = globalsJson.nowMs;
  define('$now', () => new LfDateTime(nowMs));
  define('$today', () => { const d = new LfDateTime(nowMs); d.setUTCHours(0, 0, 0, 0); return d; });
  define('$workflow', () => globalsJson.workflow);
  define('$execution', () => globalsJson.execution);
  define('$vars', () => globalsJson.vars);
  g.$ = nodeProxy;
  g.$node = new Proxy({}, {
    get(_, name) {
      const n = nodeProxy(name);
      return { get json() { return n.item.json; }, get binary() { return n.item.binary; }, get parameter() { return n.params; } };
    },
  });
  g.__lf_str = str;
  g.console = { log() {}, info() {}, warn() {}, error() {}, debug() {} };
  g.__lf = {
    register(f) { fns.push(f); return fns.length - 1; },
    run(id, itemGen, inputGen, dataGen, itemIndex, runIndex) {
      S.itemGen = itemGen; S.inputGen = inputGen; S.dataGen = dataGen;
      S.itemIndex = itemIndex; S.runIndex = runIndex;
      return fns[id]();
    },
  };
})(globalThis);
