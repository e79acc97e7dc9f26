// The course assistant: streams an answer from /api/chat/ and shows the quota before and after.
// Answers from the lecture notes arrive after a {"caipi_citations": [...]} event: the sources are
// listed under the answer and its [n] markers become links that open the quoted passage.
// While the model starts, {"caipi_status": {position, eta}} events say where the question stands.
// The conversation lives only in this page; the server keeps no prompt text unless the course opted in.
(function () {
  "use strict";
  const root = document.getElementById("assistant");
  if (!root) return;
  const courseId = Number(root.dataset.courseId);
  const csrf = root.dataset.csrf;
  const log = document.getElementById("conversation");
  const form = document.getElementById("ask");
  const input = document.getElementById("prompt");
  const modelSelect = document.getElementById("model");
  const stopButton = document.getElementById("stop");
  const quotaBox = document.getElementById("quota");
  const t = JSON.parse(document.getElementById("assistant-strings").textContent);
  const { sourceList, linkCitations } = window.CAIPICitations; // prompts/citations.js
  const messages = [];
  let controller = null;
  // Routes the conversation's turns to the same engine (prefix cache); when the course keeps
  // conversations the server answers with the kept conversation's id, used from then on.
  let conversationId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now());

  function bubble(role, text) {
    const item = document.createElement("div");
    item.className = "bubble " + role;
    item.textContent = text;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  function showError(item, error) {
    item.classList.add("error");
    item.textContent = error.message || t.failed;
  }

  async function refreshQuota() {
    try {
      const response = await fetch("/api/quota/me?course=" + courseId, { credentials: "same-origin" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        quotaBox.textContent = (body.error && body.error.message) || t.quota_unavailable;
        return;
      }
      const body = await response.json();
      quotaBox.replaceChildren(...(body.limits || []).map(renderLimit));
      if (!(body.limits || []).length) quotaBox.textContent = t.no_limits;
    } catch (err) {
      quotaBox.textContent = t.quota_unavailable;
    }
  }

  // One limit in words ("9 of 10 requests left this minute"); the bar shows what is left.
  function renderLimit(limit) {
    const row = document.createElement("div");
    row.className = "limit";
    const left = Math.max(0, Math.min(limit.remaining, limit.size));
    const label = document.createElement("span");
    label.textContent = limit.summary + (limit.whose ? " (" + limit.whose + ")" : "");
    const meter = document.createElement("meter");
    meter.min = 0; meter.max = limit.size; meter.value = left;
    meter.low = limit.size * 0.2; meter.high = limit.size * 0.5; meter.optimum = limit.size;
    meter.setAttribute("aria-label", label.textContent);
    const resets = document.createElement("small");
    resets.className = "muted";
    resets.textContent = fill(t.resets, { when: new Date(limit.resets_at).toLocaleString() });
    row.append(label, meter, resets);
    return row;
  }

  async function readStream(response, target) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "", citations = [], rendered = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) { showError(target, chunk.error); return text; }
          if (chunk.caipi_status) { // the model is starting: where this question stands
            target.classList.add("waiting");
            target.textContent = fill(t.starting, chunk.caipi_status);
            continue;
          }
          if (chunk.caipi) {
            // The answer so far as HTML, rendered and sanitized by the server (Markdown).
            target.innerHTML = chunk.caipi.html;
            target.classList.add("answer");
            rendered = text;
            continue;
          }
          if (chunk.caipi_citations && chunk.caipi_citations.length) {
            citations = chunk.caipi_citations;
            target.after(sourceList(citations, t));
          }
          if (chunk.caipi_notes === "no_answer") target.classList.add("no-answer");
          if (chunk.caipi_notes === "none") {
            const notice = document.createElement("p");
            notice.className = "notice small"; notice.textContent = t.no_notes;
            target.before(notice);
          }
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) {
            text += delta.content;
            // Plain text until the first rendering arrives; then the text that is newer than
            // the last rendering is appended to it, as text.
            if (rendered === null) target.textContent = text;
            else target.lastElementChild
              ? target.lastElementChild.append(delta.content)
              : target.append(delta.content);
            target.classList.remove("waiting");
          }
        }
      }
      log.scrollTop = log.scrollHeight;
    }
    if (citations.length) linkCitations(target, citations);
    return text;
  }

  async function ask(prompt) {
    messages.push({ role: "user", content: prompt });
    bubble("user", prompt);
    const answer = bubble("assistant", "…");
    controller = new AbortController();
    stopButton.hidden = false;
    try {
      const response = await fetch("/api/chat/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({
          course_id: courseId, conversation_id: conversationId, model: modelSelect.value, messages, stream: true,
        }),
        signal: controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
        showError(answer, body.error || {});
        messages.pop();
        return;
      }
      const kept = response.headers.get("X-Conversation-Id");
      if (kept) conversationId = Number(kept);
      const text = await readStream(response, answer);
      messages.push({ role: "assistant", content: text });
    } catch (err) {
      if (err.name === "AbortError") answer.textContent += " " + t.stopped;
      else showError(answer, { message: t.lost });
    } finally {
      controller = null;
      stopButton.hidden = true;
      refreshQuota();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = input.value.trim();
    if (!prompt || controller) return;
    input.value = "";
    ask(prompt);
  });
  stopButton.addEventListener("click", () => controller && controller.abort());
  refreshQuota();
})();
