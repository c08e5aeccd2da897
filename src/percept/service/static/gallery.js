"use strict";
/* The gallery: finished works (all of them on a local server, those of this browser on a public one). */
(() => {
  const works = document.getElementById("works");

  async function load() {
    let list;
    try {
      list = (await percept.api("/jobs?limit=100")).jobs;
      document.getElementById("scope").textContent = "Every finished work on this server, newest first.";
    } catch (error) {
      if (error.status !== 403) throw error;
      const ids = Object.keys(percept.jobs()).slice(-100);
      list = ids.length ? (await percept.api(`/jobs?ids=${ids.map(encodeURIComponent).join(",")}`)).jobs : [];
      document.getElementById("scope").textContent = "Your finished works (those submitted from this browser).";
    }
    const titles = await percept.styleTitles();
    for (const job of list) {
      const item = document.createElement("li");
      const link = Object.assign(document.createElement("a"), {href: job.page_url});
      const style = titles[job.params.style] || (job.params.style === "upload" ? "your own style" : job.params.style);
      link.append(Object.assign(document.createElement("img"), {
        src: job.result_url, alt: `Artwork in the style of ${style}`, loading: "lazy"}));
      const caption = document.createElement("span");
      caption.className = "caption";
      caption.append(Object.assign(document.createElement("strong"), {textContent: style}),
                     ` ${new Date(job.finished * 1000).toLocaleString()}`);
      link.append(caption);
      item.append(link);
      works.append(item);
    }
    document.getElementById("empty").hidden = list.length > 0;
  }

  load().catch((error) => {
    const box = document.getElementById("gallery-error");
    box.textContent = `Could not load the gallery: ${error.message}`;
    box.hidden = false;
  });
})();
