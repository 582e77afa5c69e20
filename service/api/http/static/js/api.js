// The HTTP API as the page calls it: the key from the page's field goes into the Authorization header.

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const keyField = () => document.getElementById("api-key");

export function apiKey() {
  return keyField().value.trim();
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("bad_answer", `HTTP ${response.status} without a JSON body`, response.status);
  }
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_error", message: `HTTP ${response.status}` };
    throw new ApiError(error.code, error.message, response.status);
  }
  return body;
}

export async function getJson(path) {
  let response;
  try {
    response = await fetch(path, { headers: headers() });
  } catch (error) {
    throw new ApiError("unreachable", `the service does not answer (${error.message})`, 0);
  }
  return answer(response);
}

// POST /v1/pose with the file as a raw body; options become query parameters (unset ones are left out)
export async function estimate(file, options) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options)) {
    if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
  }
  let response;
  try {
    response = await fetch(`/v1/pose?${query}`, {
      method: "POST",
      body: file,
      headers: headers({ "Content-Type": file.type || "application/octet-stream" }),
    });
  } catch (error) {
    throw new ApiError("unreachable", `the service does not answer (${error.message})`, 0);
  }
  return answer(response);
}
