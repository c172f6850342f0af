// The list of links: newest first, loaded page by page, kept current in place by id (never a duplicate row).

import { ApiError } from "./api.js";
import { failureInWords } from "./failures.js";
import { fillRow, stateOf, titleOf } from "./render.js";

const FIRST_PAGE = 50;
const NEXT_PAGES = 200;

/** Does `link` pass the page's status filter (the same rule the server applies to `processing`)? */
function passesStatus(link, status) {
  return !status || stateOf(link) === status;
}

/** Does `link` contain every word of the text filter in what the row shows? */
export function passesText(link, text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const m = link.metadata ?? {};
  const haystack = [m.title, m.siteName, m.description, link.summary?.text, link.url, link.domain, ...(link.tags ?? [])]
    .concat(link.suggestedTags ?? [])
    .filter(Boolean)
    .join("\n")
    .toLowerCase();
  return words.every((word) => haystack.includes(word));
}

export class LinkList {
  /**
   * @param root the <ol> of rows; @param api an Api; @param ui callbacks:
   * announce(text), note(text), moreAvailable(bool), failed(error).
   */
  constructor(root, api, ui) {
    this.root = root;
    this.api = api;
    this.ui = ui;
    this.links = new Map();
    this.rows = new Map();
    this.cursor = null;
    this.complete = false;
    this.status = "";
    this.text = "";
    this.generation = 0;
    this.loading = null;
    this.fetching = new Map();
  }

  /** Forget every row and load the first page for the current status filter. */
  async reset() {
    this.generation += 1;
    this.links.clear();
    this.rows.clear();
    this.root.replaceChildren();
    this.cursor = null;
    this.complete = false;
    this.loading = null;
    await this.loadMore();
  }

  /** The next page (one load at a time); with a text filter, every page up to the end. */
  loadMore() {
    if (this.complete) return Promise.resolve();
    if (!this.loading) {
      const loading = this.loadPages().finally(() => {
        if (this.loading === loading) this.loading = null;
      });
      this.loading = loading;
    }
    return this.loading;
  }

  async loadPages() {
    const generation = this.generation;
    this.ui.note("Loading…");
    do {
      const limit = this.links.size ? NEXT_PAGES : FIRST_PAGE;
      const page = await this.api.list({ cursor: this.cursor, status: this.status, limit });
      if (generation !== this.generation) return;
      for (const link of page.links) {
        // A row already shown is kept current by the live feed; a page may be older than it.
        if (!this.links.has(link.id)) this.place(link, { append: true });
      }
      this.cursor = page.next_cursor;
      this.complete = page.next_cursor === null;
      this.refreshView();
      // User timing marks: benchmarks/web_page.py reads when rows showed and when the list was whole.
      performance.mark("linkproc:page-shown");
      if (this.complete) performance.mark("linkproc:list-complete");
    } while (this.text && !this.complete);
  }

  setStatus(status) {
    this.status = status;
    return this.reset();
  }

  setText(text) {
    this.text = text.trim();
    for (const [id, row] of this.rows) row.hidden = !passesText(this.links.get(id), this.text);
    this.refreshView();
    if (this.text && !this.complete) this.loadMore().catch((error) => this.ui.failed(error));
  }

  refreshView() {
    const shown = [...this.rows.values()].filter((row) => !row.hidden).length;
    let note = "";
    if (!this.rows.size && this.complete) {
      note = this.status ? `No ${this.status} links.` : "No links yet. Save one above.";
    } else if (this.text) {
      note = `${shown} of ${this.rows.size} loaded links match “${this.text}”${this.complete ? "" : " (loading more…)"}.`;
    } else if (!this.complete) {
      note = `Showing the newest ${this.rows.size} links.`;
    }
    this.ui.note(note);
    this.ui.moreAvailable(!this.complete);
  }

  /** Show `link` where it belongs (or drop it when it no longer belongs in this list). */
  upsert(link, { announce = false } = {}) {
    if (link === null || link.deletedAt !== null || !passesStatus(link, this.status)) {
      if (link) this.remove(link.id);
      return;
    }
    const previous = this.links.get(link.id);
    if (previous) {
      this.update(previous, link, announce);
      return;
    }
    // Newer than the oldest loaded row, or everything is loaded: it belongs in view.
    const rows = [...this.links.values()];
    const oldest = rows.length ? rows[rows.length - 1] : null;
    if (!this.complete && !(oldest && link.createdAt >= oldest.createdAt)) return; // it comes with a later page
    this.place(link, { append: false });
    if (announce) this.ui.announce(`Saved: ${titleOf(link)}`);
    this.refreshView();
  }

  update(previous, link, announce) {
    const row = this.rows.get(link.id);
    const focused = row.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    this.links.set(link.id, link);
    fillRow(row, link);
    row.hidden = !passesText(link, this.text);
    if (focused) row.querySelector(`[data-action="${focused}"]`)?.focus();
    const before = stateOf(previous);
    const after = stateOf(link);
    if (!announce || before === after) return;
    if (after === "completed") this.ui.announce(`Ready: ${titleOf(link)}`);
    else if (after === "failed") this.ui.announce(`Failed: ${titleOf(link)}: ${failureInWords(link.processing.error)}`);
    else if (after === "processing") this.ui.announce(`Processing: ${titleOf(link)}`);
  }

  place(link, { append }) {
    const row = document.createElement("li");
    row.className = "link";
    fillRow(row, link);
    row.hidden = !passesText(link, this.text);
    this.links.set(link.id, link);
    this.rows.set(link.id, row);
    if (append) {
      this.root.append(row);
    } else {
      // Newest first by creation time; ties keep the newer row above.
      const next = [...this.links.values()].find((other) => other.id !== link.id && other.createdAt <= link.createdAt);
      const nextRow = next ? this.rows.get(next.id) : null;
      if (nextRow && nextRow.parentNode === this.root) this.root.insertBefore(row, nextRow);
      else this.root.append(row);
      this.reorderMap();
    }
  }

  reorderMap() {
    // Keep the Map in the rows' order: "oldest loaded" is its last entry.
    const ordered = [...this.root.children].map((row) => row.dataset.id);
    const links = new Map(ordered.map((id) => [id, this.links.get(id)]));
    this.links = links;
  }

  remove(id) {
    const row = this.rows.get(id);
    if (!row) return;
    const hadFocus = row.contains(document.activeElement);
    const next = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    this.rows.delete(id);
    this.links.delete(id);
    if (hadFocus) next?.querySelector("a, button")?.focus();
    this.refreshView();
  }

  /** Re-read each link an event frame touched; one request per link at a time, the last one always after the last event. */
  refetch(ids) {
    for (const id of ids) {
      const state = this.fetching.get(id);
      if (state) {
        state.again = true;
        continue;
      }
      this.fetching.set(id, { again: false });
      this.fetchLoop(id).catch((error) => this.ui.failed(error));
    }
  }

  async fetchLoop(id) {
    const generation = this.generation;
    try {
      for (;;) {
        const link = await this.api.get(id);
        if (generation === this.generation) this.upsert(link ?? { id, deletedAt: "gone" }, { announce: true });
        const state = this.fetching.get(id);
        if (!state.again) break;
        state.again = false;
      }
    } finally {
      this.fetching.delete(id);
    }
  }

  /** Run a row's action (delete or reprocess) and show its answer at once. */
  async act(id, action) {
    const link = this.links.get(id);
    try {
      if (action === "delete") {
        await this.api.remove(id);
        this.remove(id);
        this.ui.announce(`Deleted: ${titleOf(link)}`);
      } else if (action === "reprocess") {
        this.upsert(await this.api.reprocess(id));
        this.ui.announce(`Reprocessing: ${titleOf(link)}`);
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.remove(id);
      else throw error;
    }
  }
}
