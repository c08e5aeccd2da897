"use strict";
/* The job page: polls the API, shows progress, ETA and the current image, then the result and its download. */
(() => {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (name) => document.getElementById(name);
  const saved = percept.jobs()[id];
  const ACTIVE = ["queued", "running"];
  const WORDS = {queued: "Waiting in the queue…", running: "Painting…", done: "Done: your artwork is ready.",
                 failed: "The job failed.", cancelled: "Cancelled."};
  let shownVersion = null;
  let sawActive = false;
  let styleTitles = {};

  function showImage(url, version, alt) {
    if (version === shownVersion) return;
    const next = new Image();
    next.onload = () => {
      const img = $("image");
      img.src = next.src;
      img.alt = alt;
      img.hidden = false;
      shownVersion = version;
    };
    next.src = url;  // 404 while no preview exists yet: the old image stays
  }

  function showParams(params) {
    const rows = [
      ["Method", params.method === "quality" ? "best quality (optimisation)" : "instant (AdaIN)"],
      ["Style", styleTitles[params.style] || (params.style === "upload" ? "your own image" : params.style)],
      ["Size", params.size && `${params.size} px`],
      ["Style strength", params.strength !== undefined && `${Math.round(params.strength * 100)} %`],
      ["Keep colours", params.preserve_color ? "yes" : "no"],
      ["Seed", params.seed],
    ];
    const list = $("params");
    list.replaceChildren();
    for (const [name, value] of rows) {
      if (value === undefined || value === null || value === "") continue;
      list.append(Object.assign(document.createElement("dt"), {textContent: name}),
                  Object.assign(document.createElement("dd"), {textContent: String(value)}));
    }
  }

  function render(job) {
    const percent = Math.round(job.progress * 100);
    const active = ACTIVE.includes(job.status);
    $("status").textContent = job.status === "running" && job.message
      ? job.message[0].toUpperCase() + job.message.slice(1) : WORDS[job.status];
    $("status").dataset.status = job.status;
    $("progress").value = job.status === "done" ? 100 : percent;
    $("percent").textContent = `${job.status === "done" ? 100 : percent} %`;
    $("eta").textContent = job.status === "running" && job.eta_seconds != null
      ? `About ${percept.duration(job.eta_seconds)} left` : "";
    $("job-error").hidden = !job.error;
    $("job-error").textContent = job.error || "";
    $("cancel").hidden = !(active && saved && saved.token);
    document.title = `${active ? `${percent} % · ` : ""}Your artwork · percept`;
    if (job.status === "done") {
      $("title").textContent = "Your artwork is ready";
      showImage(job.result_url, "result", "The finished artwork");
      $("caption").textContent = "";
      const link = $("download");
      link.href = job.result_url;
      link.download = `percept-${job.id}.png`;
      link.hidden = false;
    } else if (job.status === "running" && job.progress > 0) {
      showImage(`${job.preview_url}?v=${Math.round(job.progress * 1000)}`, job.progress, "The artwork so far");
      $("caption").textContent = "The current state; it gets better with every step.";
    }
    showParams(job.params || {});
  }

  function notify(job) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const body = job.status === "done" ? "Your artwork is ready to download." : job.error || `The job is ${job.status}.`;
    new Notification(job.status === "done" ? "percept: done" : "percept: stopped", {body, icon: "/static/favicon.svg"});
  }

  async function poll() {
    let job;
    try {
      job = await percept.api(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) {
        $("title").textContent = "No such job";
        $("status").textContent = "There is no job with this id. Copy the whole link you were given.";
        $("progress").parentElement.hidden = true;
        return;
      }
      $("status").textContent = "Lost the connection to the server; retrying…";
      setTimeout(poll, 3000);
      return;
    }
    render(job);
    if (ACTIVE.includes(job.status)) {
      sawActive = true;
      setTimeout(poll, job.status === "queued" ? 1500 : 700);
    } else if (sawActive) {
      notify(job);  // only for a change seen on this page, not when a finished job is reopened
    }
  }

  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    try {
      render(await percept.api(`/jobs/${encodeURIComponent(id)}/cancel`, {
        method: "POST", headers: {"X-Cancel-Token": saved.token}}));
    } catch (error) {
      $("job-error").textContent = error.message;
      $("job-error").hidden = false;
    }
    $("cancel").disabled = false;
  });

  percept.styleTitles().then((titles) => { styleTitles = titles; }).finally(poll);
})();
