"use strict";
/* Helpers shared by the pages: API calls with one-line errors, the jobs this browser submitted, formatting. */
const percept = {
  API: "/api/v1",

  /** fetch an API path; resolves to the JSON body, rejects with the server's one-line error. */
  async api(path, options) {
    const response = await fetch(percept.API + path, options);
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const error = new Error((body && body.error) || `the server answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body;
  },

  /** {id: {token, created}} of the jobs submitted from this browser (kept in localStorage). */
  jobs() {
    try { return JSON.parse(localStorage.getItem("percept.jobs")) || {}; } catch (_) { return {}; }
  },

  remember(id, token) {
    const jobs = percept.jobs();
    jobs[id] = {token, created: Date.now()};
    try { localStorage.setItem("percept.jobs", JSON.stringify(jobs)); } catch (_) { /* private mode: fine */ }
  },

  duration(seconds) {
    if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  },

  mib(bytes) { return `${Math.round(bytes / 1048576 * 10) / 10} MiB`; },

  /** Style id -> title, for captions. */
  async styleTitles() {
    try {
      const styles = await percept.api("/styles");
      return Object.fromEntries(styles.map((s) => [s.id, `${s.title} (${s.artist})`]));
    } catch (_) { return {}; }
  },
};
