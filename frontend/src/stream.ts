/** The WebSocket run: one request message out, events in as the engine produces them. */
import type { StreamEvent } from "./wire";

export interface RunRequest {
  source: string;
  device?: string;
  seed?: number;
}

/**
 * Streams a run; `onEvents` gets the events of one message (a batch of those the
 * worker had ready together), so the page redraws once per batch, not per event.
 */
export function streamRun(
  req: RunRequest,
  onEvents: (events: StreamEvent[]) => void,
  onClose: (clean: boolean) => void,
): () => void {
  // done=delta: the last message names what was streamed instead of sending it again
  // (an RNN unrolled 500 steps: 1.1 MB instead of 6.4 MB, parsed once).
  const url = new URL("/api/v1/stream?batch=1&done=delta", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  let ended = false;
  ws.onopen = () => ws.send(JSON.stringify(req));
  ws.onmessage = (m) => {
    const data = JSON.parse(m.data as string) as StreamEvent | { type: "batch"; events: StreamEvent[] };
    const events = data.type === "batch" ? data.events : [data];
    if (events.some((e) => e.type === "done" || e.type === "error")) ended = true;
    onEvents(events);
  };
  ws.onclose = () => onClose(ended);
  return () => {
    ended = true;
    ws.close();
  };
}

export async function getJSON<T>(path: string): Promise<T> {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return (await r.json()) as T;
}
