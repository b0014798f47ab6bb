/**
 * The run as the page knows it: built up from stream events as they arrive, and
 * replaced by the whole Run when `done` comes (rebuilt from what was streamed and the
 * delta `done` carries). Everything drawn reads from here.
 */
import type { CutEdge, Diagnostic, GraphNode, Pass, Run, RunDelta, RunError, StreamEvent } from "./wire";

export class RunModel {
  id: string | null = null;
  nodes: GraphNode[] = [];
  byId = new Map<string, GraphNode>();
  passes: Pass[] = [];
  stdout = "";
  diagnostics: Diagnostic[] = [];
  cutEdges: CutEdge[] = [];
  /** Set when the program was refused before running (the 400 cases): the first reason. */
  rejected: RunError | null = null;
  /** Every reason it was refused, by line (the server finds them all at once). */
  refusals: RunError[] = [];
  run: Run | null = null;
  /** Bumped whenever the set of nodes changes, so the graph knows to re-lay out. */
  graphVersion = 0;

  get finished(): boolean {
    return this.run !== null || this.rejected !== null;
  }

  get stepCount(): number {
    return this.passes.reduce((n, p) => n + p.steps.length, 0);
  }

  /** Applies one stream event; returns what changed, for the caller to redraw. */
  apply(event: StreamEvent): "graph" | "steps" | "output" | "done" | "none" {
    switch (event.type) {
      case "run":
        this.id = event.id;
        return "none";
      case "node":
        this.addNode(event.node);
        return "graph";
      case "pass":
        this.passes.push({ index: event.index, root: event.root, gradient: event.gradient, steps: [],
          leaf_values: event.leaf_values });
        return "steps";
      case "step": {
        const pass = this.passes.find((p) => p.index === event.pass);
        if (pass) pass.steps.push(event.step);
        return "steps";
      }
      case "stdout":
        this.stdout += event.text;
        return "output";
      case "diagnostic":
        this.diagnostics.push(event.diagnostic);
        return "output";
      case "done":
        this.load("delta" in event ? this.rebuild(event.delta) : event.run);
        return "done";
      case "error":
        this.rejected = event.error;
        this.refusals = event.errors ?? [event.error];
        return "done";
    }
  }

  /** Replaces everything with a finished Run (the `done` event, or GET /runs/{id}). */
  load(run: Run): void {
    this.run = run;
    this.id = run.id;
    this.nodes = run.nodes;
    this.byId = new Map(run.nodes.map((n) => [n.id, n]));
    this.passes = run.passes;
    this.stdout = run.stdout;
    this.diagnostics = run.diagnostics;
    this.cutEdges = run.cut_edges ?? [];
    this.graphVersion++;
  }

  /** The whole Run from a `done` delta and what the stream sent before it
   * (`chainlens.delta.rebuild` on the server's side). */
  private rebuild(delta: RunDelta): Run {
    const streamed = (id: string): GraphNode => {
      const node = this.byId.get(id);
      if (!node) throw new Error(`the stream did not send node ${id}`);
      return node;
    };
    const steps = new Map(this.passes.map((p) => [p.index, p.steps]));
    return {
      ...delta,
      nodes: delta.nodes.map((n) => ("streamed" in n ? { ...streamed(n.streamed), ...n.changed } : n)),
      passes: delta.passes.map((p) => ({ ...p, steps: p.steps ?? steps.get(p.index) ?? [] })),
    };
  }

  private addNode(node: GraphNode): void {
    if (this.byId.has(node.id)) return;
    this.nodes.push(node);
    this.byId.set(node.id, node);
    this.graphVersion++;
  }

  /** Every pass's loss, recorded or not: what the loss curve draws. */
  losses(): (number | null)[] {
    const raw = this.run?.losses ?? this.passes.map((p) => p.loss ?? null);
    return raw.map((v) => (typeof v === "number" ? v : null));
  }
}
