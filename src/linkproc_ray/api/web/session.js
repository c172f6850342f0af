// The token: taken from the URL fragment once, kept in sessionStorage, never put in a URL again.

const KEY = "linkproc.token";

/** Move a `#token=…` fragment (what `linkproc up` prints) into sessionStorage and out of the address bar. */
export function takeTokenFromFragment() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  if (token === null) return;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  if (token.trim()) saveToken(token.trim());
}

export function savedToken() {
  return sessionStorage.getItem(KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** Why a token cannot work, read from its claims without verifying them (the server does that). */
export class TokenProblem extends Error {}

/** The token's claims; throws TokenProblem for something that is not a JWT of an org, or has expired. */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenProblem("That is not a token: a token has three parts separated by dots.");
  let claims;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), "=")), (c) =>
      c.charCodeAt(0),
    );
    claims = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new TokenProblem("That is not a token: its claims cannot be read.");
  }
  if (typeof claims !== "object" || claims === null || typeof claims.orgId !== "string" || !claims.orgId) {
    throw new TokenProblem("That token names no organization (orgId).");
  }
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
    throw new TokenProblem(`That token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Get a new one.`);
  }
  return claims;
}
