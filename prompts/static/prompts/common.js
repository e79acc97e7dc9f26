// Shared by the prompts pages: translated strings, JSON calls, reading a streamed answer, quota.
// Answers are shown as plain text while they stream and then as the HTML the server rendered
// and sanitized (Markdown, code, math); nothing the model or a student wrote is parsed as HTML here.
(function () {
  "use strict";
  const gettext = (s) => (window.gettext ? window.gettext(s) : s);
  const fmt = (s, values) => (window.interpolate ? window.interpolate(s, values, true) : s);

  async function api(method, url, body, csrf) {
    const options = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf } };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw { status: response.status, error: data.error || { message: response.statusText } };
    return data;
  }

  function errorMessage(status, error) {
    error = error || {};
    if (status === 429 && error.resets_at) {
      return fmt(gettext("You have used up your quota (%(limit)s). It resets %(when)s."),
        { limit: error.limit || "", when: new Date(error.resets_at).toLocaleString() });
    }
    if (error.code === "policy_not_accepted") return gettext("Please accept the usage policy first: reload the page.");
    if (status === 503) return gettext("The model is not available right now. Try again in a moment.");
    if (status === 401) return gettext("Your session has ended. Open CAIPI again from your course.");
    if (error.problems && error.problems.length) {
      return error.problems.map((p) => (p.field ? p.field.replace(/^inputs\./, "") + ": " : "") + p.message).join(" ");
    }
    return error.message || gettext("Something went wrong.");
  }

  // POST ``payload`` and read the SSE answer: onText(text so far), onHtml(html, final, runId),
  // onCitations(the numbered lecture-note passages the prompt held; before the answer).
  // While the model starts, onText gets the queue status ({"caipi_status": ...} events).
  async function streamAnswer(url, payload, csrf, handlers, signal) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", signal,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw { status: response.status, error: body.error || { message: response.statusText } };
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "", runId = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
          const chunk = JSON.parse(line.slice(6));
          if (chunk.error) throw { status: 502, error: chunk.error };
          if (chunk.caipi_status) { // the model is starting: where this run stands
            handlers.onText(fmt(gettext("The model is starting — you are number %(position)s in the queue, about %(eta)s s."), chunk.caipi_status));
            continue;
          }
          if (chunk.caipi_citations) {
            if (handlers.onCitations) handlers.onCitations(chunk.caipi_citations);
            continue;
          }
          if (chunk.caipi) {
            if (chunk.caipi.run_id) runId = chunk.caipi.run_id;
            handlers.onHtml(chunk.caipi.html, chunk.caipi.final);
            continue;
          }
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) { text += delta.content; handlers.onText(text); }
        }
      }
    }
    return { text, runId };
  }

  function renderQuota(box, limits) {
    if (!limits.length) { box.textContent = gettext("No limits apply to you here."); return; }
    box.replaceChildren(...limits.map((limit) => {
      const row = document.createElement("div");
      row.className = "limit";
      const label = document.createElement("span");
      label.textContent = limit.summary + (limit.whose ? " (" + limit.whose + ")" : "");
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = limit.size; meter.value = Math.max(0, Math.min(limit.remaining, limit.size));
      meter.low = limit.size * 0.2; meter.high = limit.size * 0.5; meter.optimum = limit.size;
      meter.setAttribute("aria-label", label.textContent);
      const resets = document.createElement("small");
      resets.className = "muted";
      resets.textContent = fmt(gettext("resets %(when)s"), { when: new Date(limit.resets_at).toLocaleString() });
      row.append(label, meter, resets);
      return row;
    }));
  }

  async function refreshQuota(box, courseId) {
    try {
      const response = await fetch("/api/quota/me?course=" + courseId, { credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { box.textContent = errorMessage(response.status, body.error); return; }
      renderQuota(box, body.limits || []);
    } catch (err) {
      box.textContent = gettext("Quota unavailable.");
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  window.CAIPI = {
    gettext, fmt, api, errorMessage, streamAnswer, renderQuota, refreshQuota, el,
  };
})();
