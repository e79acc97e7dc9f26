// The lecturer's lecture-notes page: upload with a progress bar (upload, then indexing,
// polled from the job), the document list from the API, delete with confirmation.
(function () {
  "use strict";
  const root = document.getElementById("notes");
  if (!root) return;
  const t = JSON.parse(document.getElementById("rag-strings").textContent);
  const csrf = root.dataset.csrf;
  const form = document.getElementById("upload");
  const filesInput = document.getElementById("files");
  const button = document.getElementById("upload-button");
  const syncButton = document.getElementById("sync");
  const jobBox = document.getElementById("job");
  const bar = document.getElementById("progress");
  const label = document.getElementById("progress-label");
  const fileList = document.getElementById("job-files");
  const tbody = document.querySelector("#documents tbody");

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : "")).replace(/%%/g, "%");
  }

  function setProgress(fraction, text) {
    bar.value = Math.round(fraction * 100);
    label.textContent = text;
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function visibility(doc) {
    if (!doc.visible) return t.hidden;
    const parts = [t.yes];
    if (doc.available_from) parts.push(fill(t.from, { date: new Date(doc.available_from).toLocaleDateString() }));
    if (doc.available_until) parts.push(fill(t.until, { date: new Date(doc.available_until).toLocaleDateString() }));
    return parts.join(", ");
  }

  function row(doc) {
    const tr = document.createElement("tr");
    tr.dataset.documentId = doc.id;
    const title = document.createElement("td");
    if (doc.url) {
      const link = document.createElement("a");
      link.href = doc.url; link.target = "_blank"; link.rel = "noopener"; link.textContent = doc.title;
      title.appendChild(link);
    } else title.textContent = doc.title;
    const file = document.createElement("div");
    file.className = "muted small";
    file.textContent = doc.filename + (doc.section ? " · " + doc.section : "");
    title.appendChild(file);
    const actions = document.createElement("td");
    const del = document.createElement("button");
    del.type = "button"; del.textContent = t.delete;
    del.addEventListener("click", () => remove(doc));
    actions.appendChild(del);
    tr.append(title, cell(doc.week ?? ""), cell(doc.pages || ""), cell(doc.chunk_count),
              cell(visibility(doc)), cell(doc.citations), actions);
    return tr;
  }

  async function loadDocuments() {
    const response = await fetch(root.dataset.documentsUrl, { credentials: "same-origin" });
    const body = await response.json();
    tbody.replaceChildren();
    if (!body.documents || !body.documents.length) {
      const tr = document.createElement("tr");
      const td = cell(t.no_documents); td.colSpan = 7; td.className = "muted";
      tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    for (const doc of body.documents) tbody.appendChild(row(doc));
  }

  async function remove(doc) {
    if (!window.confirm(fill(t.confirm_delete, { title: doc.title }))) return;
    const response = await fetch("/api/rag/documents/" + doc.id + "/", {
      method: "DELETE", credentials: "same-origin", headers: { "X-CSRFToken": csrf },
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      window.alert((body.error && body.error.message) || response.statusText);
    }
    loadDocuments();
  }

  function showFiles(files) {
    fileList.replaceChildren(...files.map((file) => {
      const li = document.createElement("li");
      li.className = file.status;
      li.textContent = file.status === "failed" ? file.error : file.name + " — " + (t[file.status] || file.status);
      return li;
    }));
  }

  async function follow(jobUrl) {
    for (;;) {
      let job;
      try {
        const response = await fetch(jobUrl, { credentials: "same-origin" });
        job = await response.json();
      } catch (err) {
        label.textContent = t.lost;
        return;
      }
      if (job.status === "queued") setProgress(0, t.queued);
      else setProgress(job.progress, fill(t.indexing, { name: job.current || "", percent: Math.round(job.progress * 100) }));
      if (job.status === "succeeded" || job.status === "failed") {
        bar.value = 100;
        showFiles(job.files.filter((f) => f.status !== "expanded"));
        const files = job.files.filter((f) => f.status !== "expanded");
        const ok = files.filter((f) => f.status === "indexed" || f.status === "unchanged" || f.status === "removed").length;
        label.textContent = job.status === "failed" ? fill(t.failed, { error: job.error }) : fill(t.done, { ok: ok, total: files.length });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
  }

  function finish() {
    button.disabled = false;
    if (syncButton) syncButton.disabled = false;
    loadDocuments();
  }

  function upload(files) {
    const data = new FormData();
    for (const file of files) data.append("files", file);
    const request = new XMLHttpRequest();
    request.open("POST", root.dataset.documentsUrl);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        const percent = Math.round((event.loaded / event.total) * 100);
        setProgress(event.loaded / event.total, fill(t.uploading, { percent: percent }));
      }
    });
    request.addEventListener("load", async () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (err) { /* not JSON */ }
      if (request.status !== 202) {
        label.textContent = (body.error && body.error.message) || request.statusText;
        bar.value = 0;
        finish();
        return;
      }
      setProgress(0, t.queued);
      await follow(request.getResponseHeader("Location"));
      finish();
    });
    request.addEventListener("error", () => { label.textContent = t.lost; finish(); });
    request.send(data);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!filesInput.files.length) return;
    button.disabled = true;
    if (syncButton) syncButton.disabled = true;
    jobBox.hidden = false;
    fileList.replaceChildren();
    setProgress(0, fill(t.uploading, { percent: 0 }));
    upload(Array.from(filesInput.files));
    form.reset();
  });

  if (syncButton) {
    syncButton.addEventListener("click", async () => {
      button.disabled = true; syncButton.disabled = true;
      jobBox.hidden = false; fileList.replaceChildren(); setProgress(0, t.queued);
      const response = await fetch(root.dataset.syncUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Content-Type": "application/json" },
        body: JSON.stringify({ lms: "moodle" }),
      });
      if (response.status !== 202) {
        const body = await response.json().catch(() => ({}));
        label.textContent = (body.error && body.error.message) || response.statusText;
        finish();
        return;
      }
      await follow(response.headers.get("Location"));
      finish();
    });
  }

  loadDocuments();
})();
