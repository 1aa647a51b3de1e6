// The node's API, same origin: the browser sends the HttpOnly login cookie by itself, so no
// script here ever sees the token.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `request failed (${status})`);
    this.status = status;
    this.code = code;
  }
}

async function problemOf(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.code, body.detail);
  } catch {
    return new ApiError(response.status, "http-error", `${response.status} ${response.statusText}`);
  }
}

export async function request(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "offline", "the node is not answering (is `zion run` still running?)");
  }
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return null;
  return response.json();
}

export function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return request("GET", text ? `${path}?${text}` : path);
}

export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

/** Send a multipart form (POST unless `method` says otherwise), reporting upload progress
 * (fetch cannot): onProgress(0..1). */
export function upload(path, form, onProgress, method = "POST") {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.withCredentials = true;
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body.code, body.detail || `upload failed (${xhr.status})`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "offline", "the upload was cut off")));
    xhr.send(form);
  });
}

/** POST `body` and hand each line of the NDJSON answer to onItem as it arrives (drafts and
 * answers stream from an AI bridge). An error before the stream starts throws ApiError. */
export async function streamLines(path, body, onItem) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, "offline", "the node is not answering (is `zion run` still running?)");
  }
  if (!response.ok) throw await problemOf(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) onItem(JSON.parse(line));
      }
      if (done) return;
    }
  } catch (error) {
    reader.cancel().catch(() => {});  // stop the node's work on an answer no one reads
    throw error;
  }
}
