// One link as a list row, built with DOM calls only: page-derived text is always text, never HTML.

import { failureInWords } from "./failures.js";

/** The URL if it is an absolute http(s) URL, else null: javascript:, data: and the rest never become links or images. */
export function safeHttpUrl(value) {
  if (typeof value !== "string" || !value) return null;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

/** The badge of a link: pending (not started, or asked again), processing, completed, failed or cancelled. */
export function stateOf(link) {
  switch (link.processing.status) {
    case null:
    case "reprocess_requested":
      return "pending";
    case "pending":
      return "processing";
    default:
      return link.processing.status;
  }
}

export function titleOf(link) {
  return link.metadata?.title || link.url;
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [7, "day"],
  [4.35, "week"],
  [12, "month"],
  [Number.POSITIVE_INFINITY, "year"],
];

/** "5 minutes ago" for an ISO date. */
export function ago(iso, now = Date.now()) {
  let amount = (Date.parse(iso) - now) / 1000;
  if (Math.abs(amount) < 45) return "just now";
  for (const [size, unit] of STEPS) {
    if (Math.abs(amount) < size) return RELATIVE.format(Math.round(amount), unit);
    amount /= size;
  }
  return iso;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function favicon(link) {
  const src = safeHttpUrl(link.metadata?.favicon);
  const name = link.metadata?.siteName || link.domain || "?";
  const fallback = element("span", "favicon favicon-letter", name.charAt(0).toUpperCase());
  fallback.setAttribute("aria-hidden", "true");
  if (!src) return fallback;
  const img = element("img", "favicon");
  img.alt = "";
  img.width = 20;
  img.height = 20;
  img.loading = "lazy";
  img.referrerPolicy = "no-referrer";
  img.addEventListener("error", () => img.replaceWith(fallback), { once: true });
  img.src = src;
  return img;
}

function heading(link) {
  const h = element("h2", "title");
  const href = safeHttpUrl(link.url);
  if (href) {
    const a = element("a", null, titleOf(link));
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    h.append(a);
  } else {
    h.append(element("span", null, titleOf(link)));
    h.append(element("span", "unsafe", " (not an http(s) link: not opened)"));
  }
  return h;
}

function badge(link) {
  const state = stateOf(link);
  return element("span", `badge badge-${state}`, state);
}

function metaLine(link) {
  const line = element("p", "meta");
  const site = element("span", "site", link.metadata?.siteName || link.domain);
  const saved = element("time", "saved", `saved ${ago(link.createdAt)}`);
  saved.dateTime = link.createdAt;
  saved.title = new Date(link.createdAt).toLocaleString();
  line.append(badge(link), site, saved);
  return line;
}

function tagList(link) {
  const tags = [...(link.tags ?? []).map((name) => [name, false]), ...(link.suggestedTags ?? []).map((n) => [n, true])];
  if (!tags.length) return null;
  const list = element("ul", "tags");
  list.setAttribute("aria-label", "Tags");
  for (const [name, suggested] of tags) {
    const item = element("li", suggested ? "tag tag-suggested" : "tag", name);
    if (suggested) item.title = "suggested by the summarizer";
    list.append(item);
  }
  return list;
}

function actions(link) {
  const box = element("div", "actions");
  const name = titleOf(link);
  const reprocess = element("button", "reprocess", "Reprocess");
  reprocess.type = "button";
  reprocess.dataset.action = "reprocess";
  reprocess.setAttribute("aria-label", `Reprocess ${name}`);
  const remove = element("button", "delete", "Delete");
  remove.type = "button";
  remove.dataset.action = "delete";
  remove.setAttribute("aria-label", `Delete ${name}`);
  box.append(reprocess, remove);
  return box;
}

/** The row's content for `link` (the <li> itself stays, so focus and position survive an update). */
export function fillRow(row, link) {
  const state = stateOf(link);
  row.dataset.id = link.id;
  row.dataset.state = state;
  row.setAttribute("aria-busy", String(state === "pending" || state === "processing"));
  const body = element("div", "body");
  body.append(heading(link), metaLine(link));
  if (state === "failed") {
    const failure = element("p", "failure");
    failure.append(
      element("span", "failure-words", `Failed: ${failureInWords(link.processing.error)}`),
      element("code", "failure-code", link.processing.error || ""),
    );
    body.append(failure);
  }
  const summary = link.summary?.text || link.metadata?.description;
  if (summary) body.append(element("p", link.summary ? "summary" : "summary description", summary));
  const tags = tagList(link);
  if (tags) body.append(tags);
  const children = [favicon(link), body];
  const image = safeHttpUrl(link.metadata?.image);
  if (image) {
    const thumb = element("img", "thumb");
    thumb.alt = "";
    thumb.loading = "lazy";
    thumb.referrerPolicy = "no-referrer";
    thumb.addEventListener("error", () => thumb.remove(), { once: true });
    thumb.src = image;
    children.push(thumb);
  }
  children.push(actions(link));
  row.replaceChildren(...children);
}

/** Refresh the "saved … ago" texts. */
export function refreshTimes(root) {
  for (const node of root.querySelectorAll("time.saved")) node.textContent = `saved ${ago(node.dateTime)}`;
}
