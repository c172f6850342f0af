// Following the org's log over `WS /v1/orgs/{org}/sync`: from a seq, reconnecting with backoff, resuming where it stopped.

const CLOSE_POLICY = 1008;
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;

/** Exponential delays with jitter, as the server's and the SDK's Backoff: 1 s doubling to 30 s, each in [ceiling/2, ceiling]. */
export function backoffDelay(attempt, { initial = 1000, maximum = 30_000, factor = 2 } = {}) {
  const ceiling = Math.min(maximum, initial * factor ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** The id of the link an event is about, or null (events about tags alone). */
export function linkIdOf(event) {
  const args = event.args ?? {};
  if (typeof args.linkId === "string") return args.linkId;
  const kind = event.name.slice(event.name.indexOf(".") + 1);
  return kind.startsWith("Link") && typeof args.id === "string" ? args.id : null;
}

/**
 * One live follower. Callbacks:
 * onEvents(events) for each events frame, in order, never a gap or a repeat;
 * onState(state, detail) with "connecting", "online" or "offline" (detail: seconds until the next try);
 * onRefused(reason) when the token is refused (the follower stops);
 * onBehind() when the server no longer has the position (the page reloads its list).
 */
export class LiveFeed {
  constructor(socketUrl, { onEvents, onState, onRefused, onBehind }) {
    this.socketUrl = socketUrl;
    this.callbacks = { onEvents, onState, onRefused, onBehind };
    this.cursor = 0;
    this.attempt = 0;
    this.socket = null;
    this.stopped = true;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.onOnline = () => this.retryNow();
  }

  start(after) {
    this.cursor = after;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.clearPing();
    if (this.socket) this.socket.close(1000, "page closed");
    this.socket = null;
  }

  /** While waiting to reconnect, try at once (the browser says it is online again). */
  retryNow() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    if (this.socket === null) this.connect();
  }

  connect() {
    this.callbacks.onState("connecting");
    const socket = new WebSocket(this.socketUrl(this.cursor));
    this.socket = socket;
    socket.addEventListener("open", () => this.schedulePing());
    socket.addEventListener("message", (message) => this.receive(message));
    socket.addEventListener("close", (close) => this.closed(socket, close));
  }

  receive(message) {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.type === "events") {
      this.attempt = 0;
      this.callbacks.onState("online");
      const fresh = frame.events.filter((event) => event.seq > this.cursor);
      if (fresh.length) {
        this.cursor = fresh[fresh.length - 1].seq;
        this.callbacks.onEvents(fresh);
      }
    } else if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
      this.schedulePing();
    }
  }

  schedulePing() {
    this.clearPing();
    this.pingTimer = setTimeout(() => {
      if (this.socket?.readyState !== WebSocket.OPEN) return;
      this.socket.send(JSON.stringify({ type: "ping" }));
      // No answer: the connection is dead though no close arrived (a cut cable, a sleeping laptop).
      this.pongTimer = setTimeout(() => this.socket?.close(4000, "no pong"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  clearPing() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  closed(socket, close) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.clearPing();
    if (this.stopped) return;
    if (close.code === CLOSE_UNAUTHORIZED || close.code === CLOSE_FORBIDDEN) {
      this.stop();
      this.callbacks.onRefused(close.code === CLOSE_FORBIDDEN ? "forbidden" : close.reason || "unauthorized");
      return;
    }
    if (close.code === CLOSE_POLICY) {
      // The page sends only pings, so the refused part is its position: the log is
      // shorter than what it saw (a restored backup). Start again from the server's view.
      this.stop();
      this.callbacks.onBehind();
      return;
    }
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.callbacks.onState("offline", Math.round(delay / 1000));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
