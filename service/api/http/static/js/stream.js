// The WebSocket stream (/v1/stream) as docs/streams.md describes it: a JSON config, then binary frames
// (16-byte little-endian header: uint64 frame_id, float64 timestamp; then the JPEG), answers as JSON in frame order.
// The key travels in the subprotocol list ("bearer." + base64url(key)), never in the URL.

const SUBPROTOCOL = "pose.v1";

function bearerSubprotocol(key) {
  const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(key)));
  return "bearer." + base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export class PoseStream {
  // handlers: onAnswer(answer), onError(code, message), onClose()
  constructor(config, key, handlers) {
    this.handlers = handlers;
    this.opened = false;
    this.failed = false;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const protocols = key ? [SUBPROTOCOL, bearerSubprotocol(key)] : [SUBPROTOCOL];
    this.socket = new WebSocket(`${scheme}://${location.host}/v1/stream`, protocols);
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("open", () => {
      this.opened = true;
      this.socket.send(JSON.stringify(config));
    });
    this.socket.addEventListener("message", (event) => this.receive(event.data));
    this.socket.addEventListener("close", (event) => this.closed(event));
    this.socket.addEventListener("error", () => {}); // the close event that follows says what happened
  }

  get open() {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(frameId, timestamp, jpeg) {
    const message = new Uint8Array(16 + jpeg.byteLength);
    const header = new DataView(message.buffer);
    header.setBigUint64(0, BigInt(frameId), true);
    header.setFloat64(8, timestamp, true);
    message.set(new Uint8Array(jpeg), 16);
    this.socket.send(message);
  }

  // no more frames: the service answers what it took, then closes (1000)
  end() {
    if (this.open) this.socket.send(new Uint8Array(0));
  }

  close() {
    this.failed = true; // a close we asked for is no error
    this.socket.close(1000);
  }

  receive(data) {
    const message = JSON.parse(data);
    if (message.frame_id === undefined && message.error) {
      this.failed = true;
      this.handlers.onError(message.error.code, message.error.message);
      return;
    }
    this.handlers.onAnswer(message);
  }

  closed(event) {
    if (!this.failed && !this.opened) {
      this.handlers.onError("handshake", `the WebSocket closed before it opened (${event.code})`);
    } else if (!this.failed && event.code !== 1000) {
      this.handlers.onError("closed", `the stream closed with ${event.code} ${event.reason}`.trim());
    }
    this.handlers.onClose();
  }
}
