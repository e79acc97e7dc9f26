// A student's run of a published template: the form, the streamed answer, follow-ups, quota.
(function () {
  "use strict";
  const root = document.getElementById("run");
  if (!root) return;
  const { gettext, errorMessage, streamAnswer, refreshQuota, el } = window.CAIPI;
  const { sourceList, linkCitations } = window.CAIPICitations;
  const citationWords = { sources: gettext("Sources from the lecture notes"), page: gettext("page %(page)s") };
  const $ = (id) => document.getElementById(id);
  const csrf = root.dataset.csrf;
  const url = `/api/prompts/templates/${root.dataset.templateId}/run/`;
  const conversation = $("conversation");
  let inputs = null, history = [], lastAnswer = "", controller = null, lastFollowUp = null;

  function collect() {
    const values = {};
    for (const field of $("run-form").querySelectorAll("[data-kind]")) {
      const kind = field.dataset.kind;
      if (kind === "yes_no") values[field.name] = field.checked;
      else if (field.value === "") continue;
      else values[field.name] = kind === "number" ? Number(field.value) : field.value;
    }
    return values;
  }

  function check() {
    for (const field of $("run-form").querySelectorAll("[data-kind]")) {
      field.removeAttribute("aria-invalid");
      if (!field.checkValidity()) {
        field.setAttribute("aria-invalid", "true");
        $("form-error").textContent = (field.labels[0] ? field.labels[0].textContent.trim() + ": " : "") + field.validationMessage;
        field.focus();
        return false;
      }
    }
    $("form-error").textContent = "";
    return true;
  }

  function bubble(role, text) {
    const item = el("div", { class: "bubble " + role });
    item.textContent = text;
    conversation.append(item);
    return item;
  }

  function busy(on) {
    conversation.setAttribute("aria-busy", on ? "true" : "false");
    $("stop").hidden = !on;
    for (const id of ["run-button", "follow-button", "regenerate"]) $(id).disabled = on;
  }

  async function ask(followUp) {
    const answer = bubble("assistant answer streaming", "…");
    controller = new AbortController();
    busy(true);
    $("stop").focus();
    const payload = { inputs, history };
    if (followUp) payload.follow_up = followUp;
    let ok = false, citations = [];
    try {
      const result = await streamAnswer(url, payload, csrf, {
        onText: (text) => { answer.textContent = text; },
        onHtml: (html, final) => {
          answer.innerHTML = html; // rendered and sanitized by the server
          if (final && citations.length) linkCitations(answer, citations);
        },
        onCitations: (found) => { citations = found; answer.after(sourceList(found, citationWords)); },
      }, controller.signal);
      lastAnswer = result.text;
      if (followUp) history.push({ role: "user", content: followUp });
      history.push({ role: "assistant", content: result.text });
      ok = true;
    } catch (err) {
      answer.classList.add("error");
      if (err.name === "AbortError") answer.append(" " + gettext("[stopped]"));
      else answer.textContent = errorMessage(err.status, err.error);
    } finally {
      answer.classList.remove("streaming");
      controller = null;
      busy(false);
      $("answer-heading").focus();
      refreshQuota($("quota"), root.dataset.courseId);
    }
    return ok;
  }

  $("run-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (controller || !check()) return;
    inputs = collect();
    history = [];
    conversation.replaceChildren();
    $("answer-section").hidden = false;
    lastFollowUp = null;
    ask(null);
  });
  $("follow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("follow-up").value.trim();
    if (!text || controller || inputs === null) return;
    $("follow-up").value = "";
    bubble("user", text);
    lastFollowUp = text;
    ask(text);
  });
  $("regenerate").addEventListener("click", () => {
    if (controller || inputs === null) return;
    if (conversation.lastElementChild && conversation.lastElementChild.classList.contains("sources")) {
      conversation.lastElementChild.remove();
    }
    const last = conversation.lastElementChild;
    if (last && last.classList.contains("assistant")) last.remove();
    if (history.length && history[history.length - 1].role === "assistant") history.pop();
    if (lastFollowUp && history.length && history[history.length - 1].role === "user") history.pop();
    ask(lastFollowUp);
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(lastAnswer);
      $("copy-status").textContent = gettext("Copied.");
    } catch (err) {
      $("copy-status").textContent = gettext("Copying is not allowed here; select the text instead.");
    }
  });
  for (const starter of document.querySelectorAll(".starter")) {
    starter.addEventListener("click", () => { $("follow-up").value = starter.textContent; $("follow-up").focus(); });
  }
  refreshQuota($("quota"), root.dataset.courseId);
})();
