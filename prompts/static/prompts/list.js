// The course's templates for staff: usage per template, import and copies from the library.
(function () {
  "use strict";
  const table = document.getElementById("templates");
  const { gettext, fmt, api, errorMessage } = window.CAIPI;
  const holder = document.querySelector("[data-csrf]");
  const csrf = holder ? holder.dataset.csrf : "";
  if (table && table.dataset.usageUrl) {
    api("GET", table.dataset.usageUrl).then((usage) => {
      for (const row of usage.templates) {
        const line = table.querySelector(`tr[data-template-id="${row.template_id}"]`);
        if (!line) continue;
        for (const key of ["runs", "students", "tokens"]) line.querySelector(`[data-usage=${key}]`).textContent = row[key].toLocaleString();
      }
    }).catch(() => {});
  }
  const importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = document.getElementById("import-status");
      const file = document.getElementById("import-file").files[0];
      if (!file) { status.textContent = gettext("Choose an export file."); return; }
      try {
        const data = JSON.parse(await file.text());
        const created = await api("POST", importForm.dataset.url, data, csrf);
        window.location.assign(`/prompts/${created.id}/edit/`);
      } catch (err) {
        status.textContent = err instanceof SyntaxError ? gettext("This file is not JSON.") : errorMessage(err.status, err.error);
      }
    });
  }
  for (const button of document.querySelectorAll("[data-propose]")) {
    button.addEventListener("click", async () => {
      const status = document.getElementById("row-status");
      try {
        await api("POST", `/api/prompts/templates/${button.dataset.propose}/library/`, {}, csrf);
        status.textContent = gettext("Offered to the site library: an administrator will review it.");
      } catch (err) {
        status.textContent = errorMessage(err.status, err.error);
      }
    });
  }
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const select = button.dataset.courseSelect && document.getElementById(button.dataset.courseSelect);
      const status = document.getElementById(select ? "row-status" : "copy-status");
      const courseId = Number(select ? select.value : button.dataset.course);
      try {
        const created = await api("POST", `/api/prompts/templates/${button.dataset.copy}/copy/`, { course_id: courseId }, csrf);
        status.textContent = fmt(gettext("Copied as a draft: %(name)s."), created);
        window.location.assign(`/prompts/${created.id}/edit/`);
      } catch (err) {
        status.textContent = errorMessage(err.status, err.error);
      }
    });
  }
})();
