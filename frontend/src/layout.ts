/** The main thread's side of the layout worker: one request in flight, the newest wins. */
import type { DisplayGraph } from "./graph";
import { layered } from "./layered";
import type { LayoutResult } from "./layered";
import type { LayoutRequest } from "./layout.worker";
import { spawnLayoutWorker } from "./spawn";

export class LayoutClient {
  private worker: Worker;
  private seq = 0;
  private waiting = new Map<number, (r: LayoutResult) => void>();
  private last: { key: string; result: LayoutResult } | null = null;

  constructor() {
    this.worker = spawnLayoutWorker();
    this.worker.onmessage = (ev: MessageEvent<LayoutResult & { seq: number }>) => {
      const resolve = this.waiting.get(ev.data.seq);
      this.waiting.delete(ev.data.seq);
      resolve?.(ev.data);
    };
  }

  /**
   * A quick layout on the main thread, for previews while a run streams in: it never
   * waits behind the worker (which may still be compiling ELK, or busy with a big graph).
   */
  preview(graph: DisplayGraph): LayoutResult {
    ++this.seq;
    return layered(graph.items, graph.edges, graph.boxes);
  }

  /** Loads and compiles ELK in the worker now, so the first Run does not wait for it. */
  warm(): void {
    const items = [{ id: "a", w: 40, h: 20, parent: null }, { id: "b", w: 40, h: 20, parent: null }];
    this.worker.postMessage({ seq: 0, items, edges: [{ from: "a", to: "b" }], boxes: [] });
  }

  /**
   * Lays out a display graph; resolves to null when a newer request superseded it.
   * The same items and edges as last time reuse the last layout (a run's final
   * graph is usually the one already drawn when backward began).
   */
  async layout(graph: DisplayGraph, engine?: "elk" | "layered"): Promise<LayoutResult | null> {
    const key = layoutKey(graph);
    const seq = ++this.seq;
    if (this.last?.key === key) return this.last.result;
    const req: LayoutRequest = {
      seq,
      engine,
      items: graph.items.map(({ id, w, h, parent }) => ({ id, w, h, parent })),
      edges: graph.edges.map(({ from, to }) => ({ from, to })),
      boxes: graph.boxes.map(({ id, parent, label }) => ({ id, parent, label })),
    };
    const result = await new Promise<LayoutResult>((resolve) => {
      this.waiting.set(seq, resolve);
      this.worker.postMessage(req);
    });
    this.last = { key, result };
    return seq === this.seq ? result : null;
  }
}

function layoutKey(g: DisplayGraph): string {
  const parts: string[] = [];
  for (const it of g.items) parts.push(`${it.id}:${it.w}:${it.h}:${it.parent ?? ""}`);
  for (const e of g.edges) parts.push(`${e.from}>${e.to}`);
  return parts.join("|");
}
