// Reads from the Tally API (same origin). Errors carry the API's own `detail`.

class ApiError extends Error {}

export async function getJSON(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  const url = query.size ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const detail = typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`;
    throw new ApiError(detail);
  }
  return response.json();
}

/** Every site the dashboard may show, with camera status and 24-hour totals. */
export async function listSites() {
  return (await getJSON('/api/v1/sites')).sites;
}
