/**
 * Where the user is in backward: a pass and a step within it, and what is known
 * at that point. A gradient the engine has not computed yet is "pending", never 0.
 */
import type { GraphNode, Pass, Step, TensorView } from "./wire";

export type GradState =
  | { kind: "known"; grad: TensorView | null; step: number }
  | { kind: "pending" }
  | { kind: "unreached" };

/** The steps of one pass, indexed by node id for O(1) lookups while stepping. */
export class PassIndex {
  readonly stepOf = new Map<string, number>();
  /** For each node: the contributions its consumers passed it, in engine order. */
  readonly contributions = new Map<string, { from: string; step: number; grad: TensorView | null }[]>();

  constructor(readonly pass: Pass, inputsOf: (id: string) => (string | null)[]) {
    pass.steps.forEach((s, i) => {
      if (!this.stepOf.has(s.node)) this.stepOf.set(s.node, i);
      inputsOf(s.node).forEach((src, slot) => {
        if (src === null) return;
        const list = this.contributions.get(src) ?? [];
        list.push({ from: s.node, step: i, grad: s.grad_inputs[slot] ?? null });
        this.contributions.set(src, list);
      });
    });
  }

  get length(): number {
    return this.pass.steps.length;
  }

  step(i: number): Step | undefined {
    return this.pass.steps[i];
  }

  /** A node's value in this pass: a leaf's as this pass's forward used it (an optimizer
   * may have stepped it since the node was first seen), any other node's own. */
  valueOf(node: GraphNode): TensorView | null {
    return this.pass.leaf_values?.[node.id] ?? node.value;
  }

  /** What the Nodes table and the inspector may say about a node's gradient at `cursor`. */
  gradAt(node: string, cursor: number): GradState {
    const i = this.stepOf.get(node);
    if (i === undefined) return { kind: "unreached" };
    if (i > cursor) return { kind: "pending" };
    return { kind: "known", grad: this.pass.steps[i].grad_output, step: i };
  }

  /** done: executed before the cursor; active: the cursor; ahead: not yet; out: not in this pass. */
  status(node: string, cursor: number): "done" | "active" | "ahead" | "out" {
    const i = this.stepOf.get(node);
    if (i === undefined) return "out";
    return i < cursor ? "done" : i === cursor ? "active" : "ahead";
  }
}

/** The cursor: which pass, which step; clamped so it always points at something real. */
export class StepCursor {
  pass = 0;
  step = 0;

  constructor(private readonly lengths: () => number[]) {}

  clamp(): void {
    const ls = this.lengths();
    if (ls.length === 0) {
      this.pass = 0;
      this.step = 0;
      return;
    }
    this.pass = Math.min(Math.max(this.pass, 0), ls.length - 1);
    this.step = Math.min(Math.max(this.step, 0), Math.max(ls[this.pass] - 1, 0));
  }

  first(): void {
    this.step = 0;
    this.clamp();
  }

  last(): void {
    this.step = Number.MAX_SAFE_INTEGER;
    this.clamp();
  }

  next(): boolean {
    const before = this.step;
    this.step++;
    this.clamp();
    return this.step !== before;
  }

  prev(): boolean {
    const before = this.step;
    this.step--;
    this.clamp();
    return this.step !== before;
  }

  goto(pass: number, step: number): void {
    this.pass = pass;
    this.step = step;
    this.clamp();
  }

  get atEnd(): boolean {
    const ls = this.lengths();
    return ls.length === 0 || this.step >= ls[this.pass] - 1;
  }
}
