/**
 * The wire schema of shared/API.md as TypeScript types: what the page receives.
 * The server's declarations (backend/chainlens/schema.py) are the source of truth;
 * these mirror the fields the page reads.
 */

/** A number where JSON may carry a non-finite value as "nan", "inf" or "-inf". */
export type Num = number | string;

export type Nested = Num | Nested[];

export interface Stats {
  min: Num | null;
  max: Num | null;
  mean: Num | null;
  std: Num | null;
  norm: Num | null;
  nan: number;
  inf: number;
  /** Counts in equal bins from min to max, for tensors sent without values (an extension). */
  hist?: number[] | null;
}

export interface TensorView {
  shape: number[];
  dtype: string;
  device: string;
  numel: number;
  values: Nested | null;
  stats: Stats | null;
}

export interface GraphNode {
  id: string;
  kind: "leaf" | "op";
  grad_fn: string;
  op: string | null;
  label: string;
  names: string[];
  line: number | null;
  module: string | null;
  /** Which call of the outermost module made the node (an extension of API.md). */
  call?: number | null;
  inputs: (string | null)[];
  value: TensorView | null;
  grad: TensorView | null;
  saved?: Record<string, TensorView> | null;
  /** The pass (from 0) whose backward freed this node's saved tensors, when a later one failed on it. */
  freed_by?: number | null;
}

/** Which tensor each letter of a formula stands for: an input's position or "out". */
export type Letters = Record<string, number | string>;

/** What every kind of formula carries (schema.FormulaBase). */
interface FormulaBase {
  latex: string;
  text: string;
  verified: boolean;
  note: string | null;
  letters: Letters | null;
}

/** An element-by-element step's element: upstream × local = downstream. */
export interface ElementLine {
  input: number;
  index: number[];
  upstream: Num;
  local: Num;
  downstream: Num;
}

/** A step's formula, by its kind (schema.Formula). */
export type Formula =
  | (FormulaBase & { kind: "rule"; steps: string[] | null; elements: ElementLine[] | null })
  | (FormulaBase & { kind: "jacobian"; jacobian: Nested[][] | null })
  | (FormulaBase & { kind: "accumulate" })
  | (FormulaBase & { kind: "custom"; code: string; check: { analytic: unknown[]; numeric: unknown[] } | null })
  | (FormulaBase & { kind: "none" });

export interface Step {
  node: string;
  grad_output: TensorView | null;
  grad_inputs: (TensorView | null)[];
  formula: Formula | null;
}

export interface Pass {
  index: number;
  root: string | null;
  gradient: TensorView | null;
  steps: Step[];
  line?: number | null;
  loss?: Num | null;
  recorded?: boolean;
  /** y.backward(v) on a small vector y: J, v and Jᵀv per leaf (an extension). */
  jacobian?: {
    v: number[];
    leaves: { node: string; jacobian: number[][]; vjp: Nested; verified: boolean }[];
  } | null;
  /** Leaves whose value when this pass's forward ran is not their node's `value` (a
   * parameter an optimizer stepped): that value, by node id (an extension). */
  leaf_values?: Record<string, TensorView>;
}

export interface CutEdge {
  source: string;
  op: string;
  line: number | null;
  reason: "no_grad" | "detach" | "non_differentiable";
}

export interface Diagnostic {
  code: string;
  severity: "error" | "warning" | "info";
  message: string;
  line: number | null;
  node: string | null;
  hint: string;
}

export interface RunError {
  code: string;
  type?: string | null;
  message: string;
  line: number | null;
  col: number | null;
}

export interface Variable {
  node: string | null;
  value: TensorView;
  grad: TensorView | null;
  is_leaf: boolean;
  requires_grad: boolean;
}

export interface Run {
  id: string;
  status: "ok" | "error";
  device: string;
  error: RunError | null;
  stdout: string;
  variables: Record<string, Variable>;
  nodes: GraphNode[];
  passes: Pass[];
  diagnostics: Diagnostic[];
  timings_ms: Record<string, number>;
  cut_edges?: CutEdge[];
  losses?: (Num | null)[];
}

export interface Example {
  id: string;
  title: string;
  description: string;
  source: string;
}

export interface Health {
  status: "ok";
  version: string;
  torch: string;
  devices: string[];
}

/** A node of a `done` delta that the stream sent: that node, with `changed` fields as they are now. */
export interface NodePatch {
  streamed: string;
  changed: Partial<GraphNode>;
}

/** `done` on `?done=delta`: the Run less what the stream carried. A pass whose `steps` is
 * null has the steps streamed for it. */
export interface RunDelta extends Omit<Run, "nodes" | "passes"> {
  nodes: (GraphNode | NodePatch)[];
  passes: (Omit<Pass, "steps"> & { steps: Step[] | null })[];
}

export type StreamEvent =
  | { type: "run"; id: string }
  | { type: "node"; node: GraphNode }
  | { type: "pass"; index: number; root: string | null; gradient: TensorView | null; leaf_values?: Record<string, TensorView> }
  | { type: "step"; pass: number; step: Step }
  | { type: "stdout"; text: string }
  | { type: "diagnostic"; diagnostic: Diagnostic }
  | { type: "done"; run: Run }
  | { type: "done"; delta: RunDelta }
  | { type: "error"; error: RunError; errors?: RunError[] };

/** POST /api/v1/runs/{id}/check: one gradient against finite differences. */
export interface CheckedElement {
  index: number[];
  analytic: Num;
  numeric: Num;
  kink: boolean;
  /** Within tolerance, allowing for rounding in the differences' type. */
  ok?: boolean | null;
}

export interface CheckedTensor {
  name: string;
  shape: number[];
  elements: CheckedElement[];
  max_error: Num;
  ok: boolean;
  /** Whether `analytic` is the run's own gradient here; null: nothing to compare. */
  matches_run?: boolean | null;
}

export interface GradCheck {
  run_id: string;
  node: string;
  kind: "leaf" | "step";
  pass: number;
  dtype: string;
  eps: number;
  tolerance: number;
  checked: CheckedTensor[];
  ok: boolean;
  note: string;
}
