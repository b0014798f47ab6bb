/**
 * The layout Web Worker: ELK's layered algorithm (with module groups as compound
 * nodes) for graphs it lays out quickly, our own layered layout past that. Runs off
 * the main thread so the page stays responsive while a large graph is placed.
 */
import ELK from "elkjs/lib/elk.bundled.js";
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api";
import { BOX_HEAD, BOX_PAD, layered } from "./layered";
import type { LayoutBox, LayoutEdge, LayoutItem, LayoutResult } from "./layered";

/** ELK above this many items takes longer than our targets allow (0.7 s at 500). */
export const ELK_MAX_ITEMS = 250;

export interface LayoutRequest {
  seq: number;
  items: LayoutItem[];
  edges: LayoutEdge[];
  boxes: LayoutBox[];
  engine?: "elk" | "layered";
}

const elk = new ELK();

const ELK_OPTIONS: Record<string, string> = {
  "elk.algorithm": "layered",
  "elk.direction": "RIGHT",
  "elk.hierarchyHandling": "INCLUDE_CHILDREN",
  "elk.layered.spacing.nodeNodeBetweenLayers": "30",
  "elk.spacing.nodeNode": "14",
  "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
  "elk.layered.thoroughness": "4",
  "elk.padding": `[top=${BOX_PAD + BOX_HEAD},left=${BOX_PAD},bottom=${BOX_PAD},right=${BOX_PAD}]`,
};

async function elkLayout(req: LayoutRequest): Promise<LayoutResult> {
  const t0 = performance.now();
  const nodes = new Map<string, ElkNode>();
  const root: ElkNode = { id: "root", layoutOptions: { ...ELK_OPTIONS, "elk.padding": "[top=0,left=0,bottom=0,right=0]" }, children: [], edges: [] };
  for (const b of req.boxes) nodes.set(b.id, { id: b.id, children: [], layoutOptions: ELK_OPTIONS });
  for (const b of req.boxes) (b.parent && nodes.get(b.parent) || root).children!.push(nodes.get(b.id)!);
  for (const it of req.items) {
    const node: ElkNode = { id: it.id, width: it.w, height: it.h };
    nodes.set(it.id, node);
    (it.parent && nodes.get(it.parent) || root).children!.push(node);
  }
  root.edges = req.edges.map((e, i): ElkExtendedEdge => ({ id: `e${i}`, sources: [e.from], targets: [e.to] }));
  const out = await elk.layout(root);
  const pos: Record<string, [number, number]> = {};
  const boxes: Record<string, [number, number, number, number]> = {};
  const isBox = new Set(req.boxes.map((b) => b.id));
  const walk = (n: ElkNode, ox: number, oy: number): void => {
    for (const c of n.children ?? []) {
      const x = ox + (c.x ?? 0);
      const y = oy + (c.y ?? 0);
      if (isBox.has(c.id)) boxes[c.id] = [x, y, c.width ?? 0, c.height ?? 0];
      else pos[c.id] = [x, y];
      walk(c, x, y);
    }
  };
  walk(out, 0, 0);
  return { pos, boxes, engine: "elk", ms: performance.now() - t0 };
}

export async function layout(req: LayoutRequest): Promise<LayoutResult> {
  const engine = req.engine ?? (req.items.length <= ELK_MAX_ITEMS ? "elk" : "layered");
  if (engine === "elk") {
    try {
      return await elkLayout(req);
    } catch {
      // ELK refuses some hierarchy shapes; the plain layout always succeeds.
    }
  }
  return layered(req.items, req.edges, req.boxes);
}

if (typeof self !== "undefined" && "postMessage" in self && typeof window === "undefined") {
  self.onmessage = async (ev: MessageEvent<LayoutRequest>) => {
    const result = await layout(ev.data);
    (self as unknown as Worker).postMessage({ seq: ev.data.seq, ...result });
  };
}
