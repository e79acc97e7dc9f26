// The course assistant: streams an answer from /api/chat/ and shows the quota before and after.
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

  function showError(item, error) {
    item.classList.add("error");
    item.textContent = error.message || "The call failed.";
  }

  async function refreshQuota() {
    try {
      const response = await fetch("/api/quota/me?course=" + courseId, { credentials: "same-origin" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        quotaBox.textContent = (body.error && body.error.message) || "Quota unavailable.";
        return;
      }
      const body = await response.json();
      quotaBox.replaceChildren(...(body.limits || []).map(renderLimit));
      if (!(body.limits || []).length) quotaBox.textContent = "No limits apply to you here.";
    } catch (err) {
      quotaBox.textContent = "Quota unavailable.";
    }
  }

  function renderLimit(limit) {
    const row = document.createElement("div");
    row.className = "limit";
    const used = Math.min(limit.used, limit.size);
    const meter = document.createElement("meter");
    meter.min = 0; meter.max = limit.size; meter.value = used;
    meter.low = limit.size * 0.7; meter.high = limit.size * 0.9; meter.optimum = 0;
    const label = document.createElement("span");
    label.textContent = limit.limit + ": " + limit.remaining + " of " + limit.size + " left";
    const resets = document.createElement("small");
    resets.className = "muted";
    resets.textContent = "resets " + new Date(limit.resets_at).toLocaleString();
    row.append(label, meter, resets);
    return row;
  }

  async function readStream(response, target) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "";
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
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) { text += delta.content; target.textContent = text; }
        }
      }
      log.scrollTop = log.scrollHeight;
    }
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
      if (err.name === "AbortError") answer.textContent += " [stopped]";
      else showError(answer, { message: "The connection was lost." });
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
