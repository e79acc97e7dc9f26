// Batch runs: start over a CSV or the roster, follow the progress, cancel, download results.
(function () {
  "use strict";
  const root = document.getElementById("batches");
  if (!root) return;
  const { gettext, fmt, api, errorMessage, el } = window.CAIPI;
  const $ = (id) => document.getElementById(id);
  const csrf = root.dataset.csrf;
  const base = `/api/prompts/templates/${root.dataset.templateId}/batches/`;
  const STATUS = { queued: gettext("Queued"), running: gettext("Running"), succeeded: gettext("Finished"), failed: gettext("Failed"), cancelled: gettext("Cancelled") };

  function render(item, batch) {
    const finished = ["succeeded", "failed", "cancelled"].includes(batch.status);
    const barId = "bar-" + batch.id;
    item.replaceChildren(...[
      el("h3", { text: fmt(gettext("Batch %(id)s · version %(n)s · %(status)s"), { id: batch.id, n: batch.version_number, status: STATUS[batch.status] || batch.status }) }),
      el("div", { class: "progress-row" },
        el("label", { for: barId, text: gettext("Progress") }), " ",
        el("progress", { id: barId, max: batch.total || 1, value: batch.done }), " ",
        el("span", { text: fmt(gettext("%(done)s of %(total)s done, %(failed)s failed"), batch) })),
      batch.error ? el("p", { class: "error-text", text: batch.error }) : null,
      el("div", { class: "actions" },
        finished ? el("a", { class: "button", href: `/api/prompts/batches/${batch.id}/results.csv`, download: "", text: gettext("Download the results (CSV)") }) : null,
        !finished ? el("button", { type: "button", class: "secondary", text: gettext("Cancel"), onclick: () => cancel(batch.id, item) }) : null,
        batch.purge_after ? el("small", { class: "muted", text: " " + fmt(gettext("Results are deleted %(when)s."), { when: new Date(batch.purge_after).toLocaleString() }) }) : null),
    ].filter(Boolean));
    return finished;
  }

  async function follow(item, id) {
    for (;;) {
      const batch = await api("GET", `/api/prompts/batches/${id}/`, undefined, csrf);
      if (render(item, batch)) return;
      await new Promise((resolve) => setTimeout(resolve, 800));
    }
  }

  async function cancel(id, item) {
    await api("POST", `/api/prompts/batches/${id}/cancel/`, {}, csrf);
    follow(item, id);
  }

  async function start(body) {
    $("batch-error").textContent = "";
    try {
      const batch = await api("POST", base, body, csrf);
      const empty = document.querySelector("#batch-list [data-empty]");
      if (empty) empty.remove();
      const item = el("li", { "data-batch-id": batch.id });
      $("batch-list").prepend(item);
      render(item, batch);
      item.querySelector("h3").setAttribute("tabindex", "-1");
      item.querySelector("h3").focus();
      follow(item, batch.id);
    } catch (err) {
      $("batch-error").textContent = errorMessage(err.status, err.error);
    }
  }

  const csvForm = $("csv-form");
  if (csvForm) {
    csvForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = $("csv-file").files[0];
      if (!file) { $("batch-error").textContent = gettext("Choose a CSV file."); $("csv-file").focus(); return; }
      const body = new FormData();
      body.append("file", file);
      body.append("source", "csv");
      start(body);
    });
    $("roster-form").addEventListener("submit", (event) => { event.preventDefault(); start({ source: "roster" }); });
  }
  for (const item of document.querySelectorAll("#batch-list [data-batch-id]")) follow(item, item.dataset.batchId);
})();
