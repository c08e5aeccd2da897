"use strict";
/* The upload form: photo (drop or picker) with preview, style gallery or own style, options, submit. */
(() => {
  const form = document.getElementById("job-form");
  const photo = document.getElementById("photo");
  const drop = document.getElementById("drop");
  const photoPreview = document.getElementById("photo-preview");
  const styles = document.getElementById("styles");
  const ownLabel = styles.querySelector(".own");
  const ownPicker = document.getElementById("own-picker");
  const styleImage = document.getElementById("style_image");
  const strength = document.getElementById("strength");
  const strengthValue = document.getElementById("strength-value");
  const errorBox = document.getElementById("form-error");
  const submit = document.getElementById("submit");
  let maxUpload = 20 * 1048576;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function preview(input, img, hideWhenShown) {
    const file = input.files && input.files[0];
    if (!file) return;
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    if (hideWhenShown) hideWhenShown.hidden = true;
    showError(file.size > maxUpload ? `${file.name} is larger than ${percept.mib(maxUpload)}; choose a smaller image` : "");
  }

  photo.addEventListener("change", () => { preview(photo, photoPreview); drop.classList.add("has-image"); });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("dragging"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      photo.files = event.dataTransfer.files;
      photo.dispatchEvent(new Event("change"));
    }
  });

  function styleChoice() {
    const checked = form.querySelector('input[name="style_choice"]:checked');
    return checked ? checked.value : "";
  }

  styles.addEventListener("change", () => {
    const own = styleChoice() === "upload";
    ownPicker.hidden = !own;
    if (own && !styleImage.files.length) styleImage.focus();
  });
  styleImage.addEventListener("change", () => {
    preview(styleImage, document.getElementById("own-preview"), document.getElementById("own-text"));
  });
  strength.addEventListener("input", () => { strengthValue.textContent = `${Math.round(strength.value * 100)} %`; });

  async function loadStyles() {
    try {
      const list = await percept.api("/styles");
      list.forEach((style, index) => {
        const label = document.createElement("label");
        label.className = "style";
        const input = Object.assign(document.createElement("input"), {
          type: "radio", name: "style_choice", value: style.id, className: "visually-hidden", checked: index === 0});
        const thumb = document.createElement("span");
        thumb.className = "thumb";
        const img = Object.assign(document.createElement("img"), {
          src: style.thumbnail_url, alt: "", loading: "lazy", width: 160, height: 160});
        thumb.append(img);
        const caption = document.createElement("span");
        caption.className = "caption";
        caption.append(Object.assign(document.createElement("strong"), {textContent: style.title}),
                       ` ${style.artist}, ${style.year}`);
        label.append(input, thumb, caption);
        styles.insertBefore(label, ownLabel);
      });
    } catch (error) {
      showError(`Could not load the styles: ${error.message}`);
    }
  }

  async function loadLimits() {
    try {
      const {limits} = await percept.api("/health");
      maxUpload = limits.max_upload_bytes;
      for (const el of document.querySelectorAll(".limit-upload")) el.textContent = percept.mib(maxUpload);
      for (const option of document.getElementById("size").options) {
        if (Number(option.value) > limits.max_size) option.remove();
      }
    } catch (_) { /* the server checks the limits anyway */ }
  }

  function askNotificationPermission() {
    if (!("Notification" in window) || Notification.permission !== "default") return Promise.resolve();
    return Promise.race([Notification.requestPermission().catch(() => null),
                         new Promise((resolve) => setTimeout(resolve, 10000))]);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const choice = styleChoice();
    if (!photo.files.length) { showError("Choose a photo first (step 1)."); photo.focus(); return; }
    if (!choice) { showError("Choose a style (step 2)."); return; }
    if (choice === "upload" && !styleImage.files.length) {
      showError("Choose your style image, or pick one of the paintings."); styleImage.focus(); return;
    }
    const tooLarge = [photo, styleImage].find((input) => input.files.length && input.files[0].size > maxUpload
                                               && (input === photo || choice === "upload"));
    if (tooLarge) {
      showError(`${tooLarge.files[0].name} is larger than ${percept.mib(maxUpload)}; choose a smaller image`);
      return;
    }
    const data = new FormData();
    data.append("photo", photo.files[0]);
    if (choice === "upload") data.append("style_image", styleImage.files[0]);
    else data.append("style_id", choice);
    data.append("method", form.elements.method.value);
    data.append("size", document.getElementById("size").value);
    data.append("strength", strength.value);
    data.append("preserve_color", document.getElementById("preserve_color").checked ? "true" : "false");
    for (const name of ["email", "seed"]) {
      const value = document.getElementById(name).value.trim();
      if (value) data.append(name, value);
    }
    showError("");
    submit.disabled = true;
    submit.textContent = "Uploading…";
    const permission = askNotificationPermission();  // asked now: browsers allow it only after a click
    try {
      const job = await percept.api("/jobs", {method: "POST", body: data});
      percept.remember(job.id, job.cancel_token);
      await permission;
      location.assign(job.page_url);
    } catch (error) {
      showError(error.message);
      submit.disabled = false;
      submit.textContent = "Paint it";
    }
  });

  loadLimits();
  loadStyles();
})();
