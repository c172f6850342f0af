// The REST API of docs/API.md. The token travels only in the Authorization header, never in a URL.

/** An error answer of the API: `{error, detail}` with its HTTP status. */
export class ApiError extends Error {
  constructor(status, code, detail, field) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.field = field;
  }

  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

/** The status filter of the page as the `processing` values of `GET /links`. */
export const STATUS_FILTERS = {
  pending: ["none", "reprocess_requested"],
  processing: ["pending"],
  completed: ["completed"],
  failed: ["failed"],
};

export class Api {
  constructor(token, org) {
    this.token = token;
    this.org = org;
    this.base = `/v1/orgs/${encodeURIComponent(org)}`;
  }

  async request(method, path, { body, params } = {}) {
    const query = params && params.toString() ? `?${params}` : "";
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`${this.base}${path}${query}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "offline", "The server cannot be reached.");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, data?.error, data?.detail, data?.field);
    }
    return { status: response.status, data };
  }

  /** The org's head: where the live socket starts following. */
  async head() {
    const { data } = await this.request("GET", "/events", { params: new URLSearchParams({ after: "0", limit: "1" }) });
    return data.head;
  }

  /** One page of links, newest first: `{links, next_cursor}`. */
  async list({ cursor = null, status = "", limit = 50 } = {}) {
    const params = new URLSearchParams({ limit: String(limit) });
    for (const value of STATUS_FILTERS[status] ?? []) params.append("processing", value);
    if (cursor !== null) params.set("cursor", cursor);
    return (await this.request("GET", "/links", { params })).data;
  }

  /** A link, or null when it is gone. */
  async get(id) {
    try {
      return (await this.request("GET", `/links/${encodeURIComponent(id)}`)).data;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }

  /** Save a URL: `{link, created}` (created is false when it was already saved). */
  async add(url) {
    const { status, data } = await this.request("POST", "/links", { body: { url } });
    return { link: data, created: status === 201 };
  }

  async remove(id) {
    return (await this.request("DELETE", `/links/${encodeURIComponent(id)}`)).data;
  }

  async reprocess(id) {
    return (await this.request("POST", `/links/${encodeURIComponent(id)}/reprocess`)).data;
  }

  /** The live socket's URL: browsers cannot set headers on a WebSocket, so its query is the one place for the token. */
  socketUrl(after) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ after: String(after), token: this.token });
    return `${scheme}//${window.location.host}${this.base}/sync?${params}`;
  }
}
