/** Server-sent events from arbitrary byte chunks: feed bytes, get complete `(event, data)` pairs. */

export interface SSEEvent {
  event: string;
  data: unknown;
}

/** Cuts a byte stream into events; only `event` and `data` fields are read, a partial event waits. */
export class SSEDecoder {
  private buffer = "";
  private readonly text = new TextDecoder();

  feed(chunk: Uint8Array): SSEEvent[] {
    // Normalised on the whole buffer: a CRLF may arrive split across two chunks.
    this.buffer = (this.buffer + this.text.decode(chunk, { stream: true })).replace(/\r\n/g, "\n");
    const events: SSEEvent[] = [];
    let end = this.buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length > 0) events.push({ event, data: JSON.parse(data.join("\n")) as unknown });
      end = this.buffer.indexOf("\n\n");
    }
    return events;
  }
}
