// The typed failure codes of v1.LinkProcessingFailed (docs/API.md), in words a reader understands.

const WORDS = {
  "fetch:timeout": "the page took too long to answer",
  "fetch:dns": "the site's name could not be found",
  "fetch:blocked": "the address is not allowed (a private or local network address)",
  "fetch:connect": "the site could not be reached",
  "fetch:too_many_redirects": "the page redirected too many times",
  "fetch:too_large": "the page is too large to read",
  "fetch:unsupported_type": "the link is not a web page (it is not HTML)",
  "fetch:error": "the page could not be fetched",
  "parse:timeout": "reading the page took too long",
  "parse:error": "the page could not be read",
  "ai:timeout": "the summarizer took too long to answer",
  "ai:error": "the summarizer failed",
  "ai:invalid_output": "no valid summary could be written (the page may have too little text)",
  interrupted: "processing was interrupted too many times",
  internal: "an internal error stopped processing",
};

const STATUS_WORDS = {
  400: "the site refused the request",
  401: "the page needs a sign-in",
  403: "the site refused access",
  404: "the page was not found",
  410: "the page is gone",
  429: "the site asked us to slow down",
};

/** A failure code as a sentence fragment, e.g. "the page took too long to answer" for fetch:timeout. */
export function failureInWords(code) {
  if (!code) return "processing failed";
  if (code in WORDS) return WORDS[code];
  const status = /^fetch:(\d{3})$/.exec(code);
  if (status) {
    const number = Number(status[1]);
    const words = STATUS_WORDS[number] ?? (number >= 500 ? "the site had an error" : "the site answered with an error");
    return `${words} (HTTP ${number})`;
  }
  return "processing failed";
}
