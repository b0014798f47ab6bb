/**
 * A rule's formula in the program's names. The server writes each rule once with
 * generic letters (y = a ⊙ b) and says which tensor each letter stands for; here the
 * letters become the names the card uses (the program's variable, else the op's label),
 * so pow's input reads `y` where the program called it y, never an `x` that is really
 * some other tensor.
 */
import type { Letters } from "./wire";

/** Groups whose contents are words, not variables: `\text{ wins}` keeps its "a". */
const WORDS = new Set(["text", "operatorname", "mathrm", "mathbb", "texttt", "mathit", "mathbf", "begin", "end"]);

/** A command with its word group, any other command or escaped character, or a run of letters. */
const TOKEN = /\\([A-Za-z]+)(\s*\{[^{}]*\})?|\\[^A-Za-z]|[A-Za-z]+/g;

/** Any string as upright text in TeX, its special characters escaped. */
export function texText(s: string): string {
  return `\\text{${s.replace(/[\\{}_^#$%&~]/g, (c) => (c === "\\" ? "\\textbackslash{}" : c === "~" ? "\\textasciitilde{}" : c === "^" ? "\\textasciicircum{}" : `\\${c}`))}}`;
}

/** How a name is typeset: a single letter as math, anything longer as upright text. */
export function nameTex(name: string): string {
  return /^[A-Za-z]$/.test(name) ? name : texText(name);
}

/**
 * ``latex`` with each letter ``letters`` maps replaced by the name of what it stands for
 * (``nameOf(role)``: an input's position or "out"; null keeps the letter). A run of
 * letters is replaced only when every one of them is a mapped letter (``XW`` is X times
 * W; ``max`` is a word), and its names are set apart by a thin space.
 */
export function named(latex: string, letters: Letters | null | undefined, nameOf: (role: number | string) => string | null): string {
  if (!letters) return latex;
  const map = new Map<string, string>();
  for (const [letter, role] of Object.entries(letters)) {
    const name = nameOf(role);
    if (name !== null) map.set(letter, `{${nameTex(name)}}`);
  }
  if (map.size === 0) return latex;
  return latex.replace(TOKEN, (tok, command: string | undefined, group: string | undefined) => {
    if (command !== undefined) return group !== undefined && !WORDS.has(command) ? `\\${command}${named(group, letters, nameOf)}` : tok;
    if (tok.startsWith("\\")) return tok;
    const parts = [...tok].map((c) => map.get(c));
    return parts.every((p) => p !== undefined) ? parts.join(tok.length > 1 ? "\\," : "") : tok;
  });
}
