/**
 * The view in the URL hash — program, device, pass and step — so a link reopens it.
 * The program is UTF-8 in base64url: no server-side storage, nothing to expire.
 */

export interface SharedView {
  source: string;
  device: string | null;
  pass: number;
  step: number;
}

export function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(data: string): string {
  const b64 = data.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

export function encodeView(v: SharedView): string {
  const params = new URLSearchParams();
  params.set("p", toBase64Url(v.source));
  if (v.device) params.set("d", v.device);
  params.set("s", `${v.pass}.${v.step}`);
  return params.toString();
}

/** Reads a hash (with or without "#"); null when it holds no program or is malformed. */
export function decodeView(hash: string): SharedView | null {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const p = params.get("p");
  if (!p) return null;
  let source: string;
  try {
    source = fromBase64Url(p);
  } catch {
    return null;
  }
  const [pass, step] = (params.get("s") ?? "0.0").split(".").map((x) => Number.parseInt(x, 10));
  return {
    source,
    device: params.get("d"),
    pass: Number.isFinite(pass) && pass >= 0 ? pass : 0,
    step: Number.isFinite(step) && step >= 0 ? step : 0,
  };
}

/** A link to a Run kept on the server (`#r=<id>`, what an import answers): its id. */
export function decodeRunLink(hash: string): string | null {
  const id = new URLSearchParams(hash.replace(/^#/, "")).get("r");
  return id && /^[0-9a-f]{1,64}$/.test(id) ? id : null;
}
