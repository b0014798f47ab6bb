/**
 * From the Run's nodes to what is drawn: module groups (one per module call),
 * collapsed groups folded into one box, shared leaves split into one copy per use,
 * constants and cut edges made visible. Pure functions: the layout worker and the
 * renderer take their output as it is.
 */
import { nodeText } from "./tensor";
import type { CutEdge, GraphNode } from "./wire";

export type ItemKind = "op" | "leaf" | "param" | "const" | "output" | "group" | "cut";

export interface Item {
  id: string;
  kind: ItemKind;
  label: string;
  /** Second line: the shape, or a group's size. */
  sub: string;
  /** The graph node this item stands for (a group: none). */
  node: string | null;
  /** The expanded group box this item sits in, if any. */
  parent: string | null;
  w: number;
  h: number;
}

export interface Edge {
  from: string;
  to: string;
  dashed: boolean;
  /** The graph nodes at the two ends (producer, consumer): what stepping highlights. */
  src: string;
  dst: string | null;
}

/** One call of an nn.Module: the nodes it created, nested in its caller's group. */
export interface Group {
  id: string;
  path: string;
  label: string;
  parent: string | null;
  members: string[];
}

export interface DisplayGraph {
  items: Item[];
  edges: Edge[];
  /** Expanded groups: drawn as boxes around their members. */
  boxes: Group[];
  /** Every group, expanded or not, by id. */
  groups: Map<string, Group>;
  /** The item that shows each graph node (itself, a collapsed group, a fold, or absent). */
  itemOf: Map<string, string>;
  /** Modules called over and over: each path's call groups, folded into "×N" boxes. */
  repeats: Map<string, string[]>;
}

export interface DisplayOptions {
  collapsed: Set<string>;
  splitShared: boolean;
  showConstants: boolean;
  /** For a module called over and over (an RNN cell): the call opened among its folded
   * calls (from 1), by module path; a path not here has every call folded into one box. */
  calls: Map<string, number>;
  /** Draw such modules folded (else every call as a group of its own). */
  foldRepeats: boolean;
}

/** A module called this many times or more is drawn as one box, "cell ×500". */
export const FOLD_CALLS_FROM = 8;

/** Graphs with more nodes than this open with every module group collapsed. */
export const COLLAPSE_ABOVE = 120;
/** Leaves used more often than this get one copy per use even in small graphs. */
export const SPLIT_USES_ABOVE = 4;
/** Past this many nodes every shared leaf is split and constants are not drawn. */
export const LARGE_GRAPH = 400;

export const CHAR_W = 7;
export const ITEM_H = 36;

export function shapeText(shape: number[] | undefined | null): string {
  if (!shape) return "";
  return shape.length === 0 ? "scalar" : shape.join("×");
}

function itemWidth(label: string, sub: string): number {
  return Math.max(56, Math.max(label.length, sub.length) * CHAR_W + 22);
}

/**
 * Module groups, one per call: consecutive op nodes (in creation order) that share
 * a module path prefix and the same outermost call (`call`) belong to the same call
 * of that module. Leaves join the call of their first consumer when they belong to
 * that module (parameters).
 */
export function moduleGroups(nodes: GraphNode[], consumers: Map<string, string[]>): {
  groups: Map<string, Group>;
  chainOf: Map<string, string[]>;
} {
  const groups = new Map<string, Group>();
  const chainOf = new Map<string, string[]>();
  const open = new Map<string, string>();
  const calls = new Map<string, number>();
  let outerCall: number | null | undefined;
  for (const node of nodes) {
    if (node.kind === "leaf") continue;
    const parts = node.module ? node.module.split(".") : [];
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("."));
    if ((node.call ?? null) !== outerCall) {
      open.clear();
      outerCall = node.call ?? null;
    }
    for (const p of [...open.keys()]) if (!prefixes.includes(p)) open.delete(p);
    const chain: string[] = [];
    let parent: string | null = null;
    for (const p of prefixes) {
      let id = open.get(p);
      if (id === undefined || groups.get(id)!.parent !== parent) {
        const n = (calls.get(p) ?? 0) + 1;
        calls.set(p, n);
        id = `g:${p}#${n}`;
        const name = parent ? p.slice(p.lastIndexOf(".") + 1) : p;
        groups.set(id, { id, path: p, label: n > 1 ? `${name} (call ${n})` : name, parent, members: [] });
        open.set(p, id);
      }
      groups.get(id)!.members.push(node.id);
      chain.push(id);
      parent = id;
    }
    chainOf.set(node.id, chain);
  }
  for (const node of nodes) {
    if (node.kind !== "leaf" || !node.module) continue;
    const first = consumers.get(node.id)?.[0];
    const chain = (first && chainOf.get(first)) || [];
    const own = chain.filter((g) => node.module === groups.get(g)!.path
      || node.module!.startsWith(groups.get(g)!.path + "."));
    own.forEach((g) => groups.get(g)!.members.push(node.id));
    chainOf.set(node.id, own);
  }
  return { groups, chainOf };
}

export function consumersOf(nodes: GraphNode[]): Map<string, string[]> {
  const consumers = new Map<string, string[]>();
  for (const n of nodes) {
    for (const src of n.inputs) {
      if (src === null) continue;
      const list = consumers.get(src);
      if (list) list.push(n.id);
      else consumers.set(src, [n.id]);
    }
  }
  return consumers;
}

/** Outermost module paths called at least FOLD_CALLS_FROM times: each path's call groups,
 * in call order. */
export function repeatedCalls(groups: Map<string, Group>): Map<string, string[]> {
  const byPath = new Map<string, string[]>();
  for (const g of groups.values()) {
    if (g.parent !== null) continue;
    const list = byPath.get(g.path);
    if (list) list.push(g.id);
    else byPath.set(g.path, [g.id]);
  }
  for (const [path, list] of byPath) if (list.length < FOLD_CALLS_FROM) byPath.delete(path);
  return byPath;
}

/** What a fold stands for: its module path and the calls in it (from 1). */
export function foldOf(id: string, repeats: Map<string, string[]>, calls: Map<string, number>): { path: string; first: number; last: number } | null {
  const m = /^f:(.*):(all|before|after)$/.exec(id);
  const list = m ? repeats.get(m[1]) : undefined;
  if (!m || !list) return null;
  const shown = calls.get(m[1]) ?? 0;
  if (m[2] === "all") return { path: m[1], first: 1, last: list.length };
  return m[2] === "before" ? { path: m[1], first: 1, last: shown - 1 } : { path: m[1], first: shown + 1, last: list.length };
}

/** The ids of every group, for "collapse all" and the default of large graphs. */
export function allGroupIds(nodes: GraphNode[]): Set<string> {
  return new Set(moduleGroups(nodes, consumersOf(nodes)).groups.keys());
}

export function defaultOptions(nodes: GraphNode[]): DisplayOptions {
  const large = nodes.length > LARGE_GRAPH;
  return {
    collapsed: nodes.length > COLLAPSE_ABOVE ? allGroupIds(nodes) : new Set(),
    splitShared: large,
    showConstants: !large,
    calls: new Map(),
    foldRepeats: true,
  };
}

function leafKind(node: GraphNode): ItemKind {
  return node.module || node.names.some((n) => n.includes(".")) ? "param" : "leaf";
}

/** A statement that failed before it made a tensor (an integer tensor asked to require
 * grad): drawn as a node of its own, so the mistake is on the graph even when the graph
 * is otherwise empty. */
export interface Failure {
  id: string;
  label: string;
  sub: string;
}

export function buildDisplay(
  nodes: GraphNode[],
  cutEdges: CutEdge[],
  roots: Set<string>,
  opts: DisplayOptions,
  failures: Failure[] = [],
): DisplayGraph {
  const consumers = consumersOf(nodes);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const { groups, chainOf } = moduleGroups(nodes, consumers);
  const repeats = opts.foldRepeats ? repeatedCalls(groups) : new Map<string, string[]>();
  /** Each repeated call's group: its path and its call number. */
  const callOf = new Map<string, [string, number]>();
  for (const [path, list] of repeats) list.forEach((g, k) => callOf.set(g, [path, k + 1]));
  const items: Item[] = [];
  const itemOf = new Map<string, string>();
  const edges: Edge[] = [];
  const seenEdge = new Set<string>();
  const shownGroups = new Set<string>();

  /** Where something in this chain of groups is drawn: a collapsed group, or itself inside its innermost expanded group. */
  const place = (chain: string[]): { folded: string | null; parent: string | null } => {
    let parent: string | null = null;
    for (const g of chain) {
      if (opts.collapsed.has(g)) return { folded: g, parent };
      parent = g;
    }
    return { folded: null, parent };
  };
  const addGroupItem = (g: string, parent: string | null): void => {
    if (shownGroups.has(g)) return;
    shownGroups.add(g);
    const group = groups.get(g)!;
    const sub = `${group.members.length} nodes ▸`;
    items.push({ id: g, kind: "group", label: group.label, sub, node: null, parent,
      w: itemWidth(group.label, sub) + 10, h: ITEM_H + 6 });
  };
  const addEdge = (from: string, to: string, src: string, dst: string | null, dashed = false): void => {
    if (from === to) return;
    const key = `${from}>${to}`;
    if (seenEdge.has(key)) return;
    seenEdge.add(key);
    edges.push({ from, to, dashed, src, dst });
  };

  /** The fold a node is drawn in: all of its module's calls, those before the call
   * opened or those after it; null when it is drawn itself. */
  const foldFor = (n: GraphNode, chain: string[]): string | null => {
    const call = chain.length ? callOf.get(chain[0]) : undefined;
    if (!call) return null;
    const [path, k] = call;
    const shown = opts.calls.get(path);
    if (shown === undefined) return `f:${path}:all`;
    if (n.kind === "leaf" || k === shown) return null;  // the module's own parameters: beside the call opened
    return k < shown ? `f:${path}:before` : `f:${path}:after`;
  };
  const addFold = (id: string): void => {
    if (shownGroups.has(id)) return;
    shownGroups.add(id);
    const f = foldOf(id, repeats, opts.calls)!;
    const name = f.path.slice(f.path.lastIndexOf(".") + 1);
    const count = f.last - f.first + 1;
    const label = id.endsWith(":all") ? `${name} ×${count}` : `${name} ×${count} (calls ${f.first}–${f.last})`;
    const sub = `call ${id.endsWith(":after") ? f.first : f.last} ▸`;
    items.push({ id, kind: "group", label, sub, node: null, parent: null, w: itemWidth(label, sub) + 10, h: ITEM_H + 6 });
  };

  const isSplit = (n: GraphNode): boolean => n.kind === "leaf"
    && (consumers.get(n.id)?.length ?? 0) > 1
    && (opts.splitShared || (consumers.get(n.id)?.length ?? 0) > SPLIT_USES_ABOVE);

  for (const n of nodes) {
    let chain = chainOf.get(n.id) ?? [];
    const fold = foldFor(n, chain);
    if (fold) {
      addFold(fold);
      itemOf.set(n.id, fold);
      continue;
    }
    if (n.kind === "leaf" && chain.length && callOf.has(chain[0])) chain = [];  // beside the call opened
    const { folded, parent } = place(chain);
    if (isSplit(n)) continue;
    if (folded) {
      addGroupItem(folded, parent);
      itemOf.set(n.id, folded);
      continue;
    }
    const kind: ItemKind = n.kind === "leaf" ? leafKind(n)
      : roots.has(n.id) || !consumers.has(n.id) ? "output" : "op";
    const label = n.kind === "leaf" ? (n.names[0] ?? n.label)
      : n.names.length ? `${n.label} → ${n.names[n.names.length - 1]}` : n.label;
    const sub = nodeText(n.value);
    items.push({ id: n.id, kind, label, sub, node: n.id, parent, w: itemWidth(label, sub), h: ITEM_H });
    itemOf.set(n.id, n.id);
  }

  for (const n of nodes) {
    const to = itemOf.get(n.id);
    if (to === undefined) continue;
    const { parent } = to.startsWith("f:") ? { parent: null } : place(chainOf.get(n.id) ?? []);
    n.inputs.forEach((src, slot) => {
      if (src === null) {
        if (!opts.showConstants || to !== n.id) return;
        const id = `c:${n.id}:${slot}`;
        items.push({ id, kind: "const", label: "const", sub: "", node: null, parent, w: 44, h: 22 });
        addEdge(id, to, id, n.id);
        return;
      }
      const producer = itemOf.get(src);
      if (producer) {
        addEdge(producer, to, src, n.id);
        return;
      }
      const leaf = byId.get(src);
      if (!leaf || !isSplit(leaf)) return;
      if (to !== n.id) return; // the copy sits inside a collapsed group
      const id = `${src}@${n.id}`;
      const label = leaf.names[0] ?? leaf.label;
      const sub = nodeText(leaf.value);
      items.push({ id, kind: leafKind(leaf), label, sub, node: src, parent, w: itemWidth(label, sub), h: ITEM_H });
      addEdge(id, to, src, n.id);
    });
  }

  const parentOf = new Map(items.map((it) => [it.id, it.parent]));
  cutEdges.forEach((cut, i) => {
    const from = itemOf.get(cut.source);
    if (!from) return;
    const id = `x:${i}`;
    const label = cut.reason === "no_grad" ? `no_grad: ${cut.op}` : cut.op;
    const parent = parentOf.get(from) ?? null;
    items.push({ id, kind: "cut", label, sub: "", node: null, parent, w: itemWidth(label, ""), h: 24 });
    addEdge(from, id, cut.source, null, true);
  });

  for (const f of failures) {
    items.push({ id: f.id, kind: "output", label: f.label, sub: f.sub, node: f.id, parent: null, w: itemWidth(f.label, f.sub), h: ITEM_H });
  }

  const boxes = [...groups.values()].filter((g) => {
    if (opts.collapsed.has(g.id)) return false;
    let top = g;
    while (top.parent) top = groups.get(top.parent)!;
    const call = callOf.get(top.id);
    if (call && opts.calls.get(call[0]) !== call[1]) return false;  // inside a fold
    for (let p = g.parent; p; p = groups.get(p)!.parent) if (opts.collapsed.has(p)) return false;
    return true;
  });
  return { items, edges, boxes, groups, itemOf, repeats };
}
