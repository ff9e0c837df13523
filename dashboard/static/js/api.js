// Calls to the Tally API (same origin, session cookie). Errors carry the API's own `detail`.

const LOGIN = '/api/v1/auth/login';
let csrfToken = null;
let signedOut = () => {};

/** An API refusal: `status`, a readable message, and per-field messages of a 422. */
export class ApiError extends Error {
  constructor(status, detail) {
    const fields = {};
    let text = typeof detail === 'string' ? detail : `HTTP ${status}`;
    if (Array.isArray(detail)) {
      // pydantic's loc is ["body" | "query", field, ...]; the field names the form control.
      for (const problem of detail) fields[String(problem.loc?.[1] ?? '')] = problem.msg;
      text = detail.map((problem) => `${problem.loc?.slice(1).join('.') || 'request'}: ${problem.msg}`).join('; ');
    }
    super(text);
    this.status = status;
    this.detail = detail;
    this.fields = fields;
  }
}

/** Remember the signed-in user's CSRF token (null when signed out). */
export function useSession(me) {
  csrfToken = me?.csrf_token ?? null;
}

/** Called whenever the API answers 401: the session is gone (or never was). */
export function onSignedOut(handler) {
  signedOut = handler;
}

function urlOf(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  return query.size ? `${path}?${query}` : path;
}

/** One API call; state-changing ones send the CSRF token and a JSON content type. */
export async function call(method, path, { params = {}, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  }
  const response = await fetch(urlOf(path, params), {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const error = new ApiError(response.status, problem.detail);
    if (response.status === 401 && path !== LOGIN) signedOut(error);
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

export const getJSON = (path, params = {}) => call('GET', path, { params });

/** Every site the dashboard may show, with camera status and 24-hour totals. */
export async function listSites() {
  return (await getJSON('/api/v1/sites')).sites;
}
