// The page: sign in, then the org's links, kept live over the sync socket.

import { Api, ApiError } from "./api.js";
import { LinkList } from "./links.js";
import { LiveFeed, linkIdOf } from "./live.js";
import { refreshTimes } from "./render.js";
import { claimsOf, forgetToken, savedToken, saveToken, TokenProblem, takeTokenFromFragment } from "./session.js";

const $ = (id) => document.getElementById(id);

let api = null;
let list = null;
let live = null;

function announce(text) {
  $("announcer").textContent = text;
}

function refusedMessage(error) {
  if (error.status === 403) return "That token is for another organization.";
  return `The server refused your token (${error.detail || "not valid"}). It may have expired: paste a new one.`;
}

function showSignIn(message) {
  live?.stop();
  api = list = live = null;
  forgetToken();
  for (const id of ["links-view", "sign-out", "org", "connection"]) $(id).hidden = true;
  $("links").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-message").textContent = message;
  $("token-input").value = "";
  $("token-input").focus();
}

/** What the page does with an error it did not expect: a refused token means signing in again. */
function failed(error) {
  if (error instanceof ApiError && error.isAuth) {
    showSignIn(refusedMessage(error));
    return;
  }
  const box = $("list-error");
  box.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error}`;
  box.hidden = false;
}

function clearFailure() {
  $("list-error").hidden = true;
}

function showConnection(state, seconds) {
  const box = $("connection");
  box.hidden = false;
  box.dataset.state = state;
  box.textContent = {
    connecting: "Connecting…",
    online: "Live",
    offline: `Offline: trying again in ${seconds} s`,
  }[state];
}

async function follow(from) {
  live = new LiveFeed((after) => api.socketUrl(after), {
    onEvents: (events) => {
      clearFailure();
      list.refetch(new Set(events.map(linkIdOf).filter(Boolean)));
    },
    onState: showConnection,
    onRefused: (reason) =>
      showSignIn(
        reason === "forbidden" ? "That token is for another organization." : "Your token has expired. Sign in again.",
      ),
    onBehind: () => restart().catch(failed),
  });
  live.start(from);
}

/** Load the list from the current head and follow from there (also after the server lost our position). */
async function restart() {
  live?.stop();
  const head = await api.head();
  await list.reset();
  await follow(head);
}

async function signIn(token) {
  let claims;
  try {
    claims = claimsOf(token);
  } catch (error) {
    if (error instanceof TokenProblem) return showSignIn(error.message);
    throw error;
  }
  api = new Api(token, claims.orgId);
  list = new LinkList($("links"), api, {
    announce,
    note: (text) => {
      $("list-note").textContent = text;
    },
    moreAvailable: (more) => {
      $("load-more").hidden = !more;
    },
    failed,
  });
  // Kept before the first answer, so a reload while the server is down tries again;
  // a refused token is forgotten (showSignIn).
  saveToken(token);
  $("sign-in").hidden = true;
  $("links-view").hidden = false;
  $("sign-out").hidden = false;
  $("org").hidden = false;
  $("org").textContent = claims.orgId;
  try {
    await restart();
    $("url-input").focus();
  } catch (error) {
    failed(error);
  }
}

function wireForms() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value.trim()).catch(failed);
  });

  $("sign-out").addEventListener("click", () => showSignIn("Signed out."));

  $("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("url-input");
    const error = $("add-error");
    const button = event.target.querySelector("button");
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    button.disabled = true;
    try {
      const { link, created } = await api.add(input.value.trim());
      list.upsert(link);
      input.value = "";
      announce(created ? `Saved ${link.url}` : `Already saved: ${link.url}`);
      if (!created) error.textContent = "That link is already saved.";
    } catch (problem) {
      if (problem instanceof ApiError && (problem.status === 400 || problem.status === 422)) {
        error.textContent = `Not saved: ${problem.detail}`;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } else {
        failed(problem);
      }
    } finally {
      button.disabled = false;
    }
  });

  $("links").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    button.disabled = true;
    list
      .act(button.closest("li").dataset.id, button.dataset.action)
      .catch(failed)
      .finally(() => {
        button.disabled = false;
      });
  });

  $("status-filter").addEventListener("change", (event) => list.setStatus(event.target.value).catch(failed));

  let typing = null;
  $("text-filter").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => list.setText(event.target.value), 150);
  });

  $("load-more").addEventListener("click", () => list.loadMore().catch(failed));
  // Incremental loading: the next page comes when the end of the list scrolls into view.
  new IntersectionObserver((entries) => {
    if (list && entries.some((entry) => entry.isIntersecting)) list.loadMore().catch(failed);
  }).observe($("load-more"));
}

wireForms();
setInterval(() => refreshTimes($("links")), 30_000);
takeTokenFromFragment();
const token = savedToken();
if (token) signIn(token).catch(failed);
else showSignIn("");
