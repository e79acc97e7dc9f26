// The template editor: inputs and tests builders, live preview, try-out, tests, versions, diff.
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const { gettext, fmt, api, errorMessage, streamAnswer, el } = window.CAIPI;
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const form = $("editor-form");
  const version = data.version || {
    engine: "plain", system_prompt: "", user_prompt: "", variables: [], model: data.models[0] || "",
    params: { temperature: 0.3, max_tokens: 512 }, use_notes: false, notes_count: 5, starters: [], tests: [],
  };
  let lastPrompt = $("f-user");
  const CHECK_KINDS = ["contains", "not_contains", "regex", "length", "json", "rubric"];
  const KIND_LABELS = {
    short_text: gettext("Short text"), long_text: gettext("Long text"), choice: gettext("Choice"), number: gettext("Number"), yes_no: gettext("Yes/no"),
    contains: gettext("contains"), not_contains: gettext("does not contain"), regex: gettext("matches the pattern"),
    length: gettext("length in characters"), json: gettext("is valid JSON"), rubric: gettext("meets the rubric (judged by a model)"),
  };
  let uid = 0;
  const id = (prefix) => prefix + "-" + (++uid);

  // --- fields -------------------------------------------------------------------------------
  function fill() {
    const template = data.template || { name: "", description: "", audience: "learners" };
    $("f-name").value = template.name;
    $("f-description").value = template.description;
    $("f-audience").replaceChildren(...data.audiences.map((a) => el("option", { value: a.value, text: a.label })));
    $("f-audience").value = template.audience;
    form.querySelector(`input[name=engine][value=${version.engine}]`).checked = true;
    $("f-system").value = version.system_prompt;
    $("f-user").value = version.user_prompt;
    const models = data.models.includes(version.model) || !version.model ? data.models : [version.model, ...data.models];
    $("f-model").replaceChildren(...models.map((m) => el("option", { value: m, text: m })));
    $("f-model").value = version.model;
    $("f-temperature").value = version.params.temperature ?? "";
    $("f-max-tokens").value = version.params.max_tokens ?? "";
    $("f-use-notes").checked = version.use_notes;
    $("f-starters").value = (version.starters || []).join("\n");
    version.variables.forEach(addInput);
    (version.tests || []).forEach(addTest);
    stateLine();
  }

  function stateLine() {
    const template = data.template;
    if (!template) { $("state-line").textContent = gettext("Not saved yet."); return; }
    const published = data.versions.find((v) => v.id === data.published_version_id);
    $("state-line").textContent = published
      ? fmt(gettext("Published: version %(n)s. Newest: version %(m)s."), { n: published.number, m: data.versions[0].number })
      : fmt(gettext("Draft: not visible to students. Newest: version %(m)s."), { m: data.versions[0].number });
  }

  // --- student inputs -----------------------------------------------------------------------
  function field(labelText, input) {
    input.id = input.id || id("f");
    return el("div", { class: "field" }, el("label", { for: input.id, text: labelText }), input);
  }

  function addInput(spec) {
    spec = spec || { name: "", kind: "short_text", label: "", required: true, default: "" };
    const box = el("fieldset", { class: "row-box input-row" });
    const legend = el("legend", { text: gettext("Input") });
    const name = el("input", { value: spec.name || "", pattern: "[a-z][a-z0-9_]*", maxlength: 40, "data-key": "name" });
    const label = el("input", { value: spec.label || "", maxlength: 200, "data-key": "label" });
    const kind = el("select", { "data-key": "kind" }, ...Object.keys(KIND_LABELS).slice(0, 5).map((k) => el("option", { value: k, text: KIND_LABELS[k] })));
    kind.value = spec.kind;
    const required = el("input", { type: "checkbox", "data-key": "required" });
    required.checked = spec.required !== false;
    const extra = el("div", { class: "inline-fields" });
    const remove = el("button", { type: "button", class: "secondary small", text: gettext("Remove this input") });
    function kindFields() {
      const k = kind.value;
      const rows = [field(gettext("Default"), el("input", { value: spec.default ?? "", "data-key": "default" }))];
      if (k === "short_text" || k === "long_text") rows.push(field(gettext("Most characters"), el("input", { type: "number", min: 1, value: spec.max_length ?? (k === "short_text" ? 200 : 4000), "data-key": "max_length" })));
      if (k === "choice") rows.push(field(gettext("Choices (separated by commas)"), el("input", { value: (spec.choices || []).join(", "), "data-key": "choices" })));
      if (k === "number") {
        rows.push(field(gettext("Smallest"), el("input", { type: "number", value: spec.min ?? "", "data-key": "min" })));
        rows.push(field(gettext("Largest"), el("input", { type: "number", value: spec.max ?? "", "data-key": "max" })));
      }
      extra.replaceChildren(...rows);
    }
    kind.addEventListener("change", () => { kindFields(); changed(); });
    remove.addEventListener("click", () => { box.remove(); changed(); $("add-input").focus(); });
    kindFields();
    box.append(legend, el("div", { class: "inline-fields" }, field(gettext("Name (for {{ input.name }})"), name), field(gettext("Label shown to students"), label), field(gettext("Kind"), kind)),
      el("label", { class: "check" }, required, " " + gettext("Required")), extra, remove);
    $("inputs-list").append(box);
    if (!spec.name) name.focus();
  }

  function collectInputs() {
    return [...document.querySelectorAll(".input-row")].map((box) => {
      const get = (key) => box.querySelector(`[data-key=${key}]`);
      const kind = get("kind").value;
      const spec = { name: get("name").value.trim(), kind, label: get("label").value.trim(), required: get("required").checked };
      let def = get("default").value;
      if (kind === "number") def = def === "" ? null : Number(def);
      if (kind === "yes_no") def = def === "" ? null : ["yes", "ja", "true", "1"].includes(def.toLowerCase());
      spec.default = def === "" ? null : def;
      if (get("max_length")) spec.max_length = Number(get("max_length").value) || null;
      if (get("choices")) spec.choices = get("choices").value.split(",").map((c) => c.trim()).filter(Boolean);
      if (get("min")) { spec.min = get("min").value === "" ? null : Number(get("min").value); spec.max = get("max").value === "" ? null : Number(get("max").value); }
      return spec;
    });
  }

  // --- test cases ---------------------------------------------------------------------------
  function addCheck(list, check) {
    check = check || { kind: "contains", value: "" };
    const row = el("div", { class: "check-row inline-fields" });
    const kind = el("select", { "data-key": "kind" }, ...CHECK_KINDS.map((k) => el("option", { value: k, text: KIND_LABELS[k] })));
    kind.value = check.kind;
    const rest = el("div", { class: "inline-fields" });
    function kindFields() {
      const k = kind.value;
      if (k === "length") rest.replaceChildren(field(gettext("At least"), el("input", { type: "number", min: 0, value: check.min ?? "", "data-key": "min" })), field(gettext("At most"), el("input", { type: "number", min: 0, value: check.max ?? "", "data-key": "max" })));
      else if (k === "json") rest.replaceChildren();
      else rest.replaceChildren(field(k === "rubric" ? gettext("Rubric") : k === "regex" ? gettext("Pattern") : gettext("Text"), el("input", { value: check.value || "", "data-key": "value" })));
    }
    kind.addEventListener("change", kindFields);
    kindFields();
    const remove = el("button", { type: "button", class: "secondary small", text: gettext("Remove check"), onclick: () => row.remove() });
    row.append(field(gettext("The answer"), kind), rest, remove);
    list.append(row);
  }

  function addTest(test) {
    test = test || { name: "", inputs: {}, checks: [] };
    const box = el("fieldset", { class: "row-box test-row" }, el("legend", { text: gettext("Test case") }));
    const name = el("input", { value: test.name, maxlength: 200, "data-key": "name" });
    const inputs = el("div", { class: "inline-fields test-inputs" });
    box.dataset.inputs = JSON.stringify(test.inputs || {});
    const checks = el("div", { class: "checks" });
    (test.checks || []).forEach((c) => addCheck(checks, c));
    box.append(field(gettext("Name"), name), inputs, checks,
      el("button", { type: "button", class: "secondary small", text: gettext("Add a check"), onclick: () => addCheck(checks) }), " ",
      el("button", { type: "button", class: "secondary small", text: gettext("Remove this test case"), onclick: () => { box.remove(); $("add-test").focus(); } }));
    $("tests-list").append(box);
    testInputs(box);
    if (!test.name) name.focus();
  }

  function testInputs(box) {
    const values = JSON.parse(box.dataset.inputs || "{}");
    const holder = box.querySelector(".test-inputs");
    for (const input of holder.querySelectorAll("input")) values[input.dataset.name] = input.value;
    holder.replaceChildren(...collectInputs().filter((s) => s.name).map((spec) =>
      field(fmt(gettext("Input “%(name)s”"), { name: spec.label || spec.name }), el("input", { value: values[spec.name] ?? "", "data-name": spec.name }))));
  }

  function typed(spec, raw) {
    if (raw === "" || raw === undefined) return undefined;
    if (spec.kind === "number") return Number(raw);
    if (spec.kind === "yes_no") return ["yes", "ja", "true", "1"].includes(String(raw).toLowerCase());
    return raw;
  }

  function collectTests() {
    const specs = collectInputs();
    return [...document.querySelectorAll(".test-row")].map((box) => {
      const inputs = {};
      for (const input of box.querySelectorAll(".test-inputs input")) {
        const spec = specs.find((s) => s.name === input.dataset.name);
        const value = spec ? typed(spec, input.value) : undefined;
        if (value !== undefined) inputs[input.dataset.name] = value;
      }
      const checks = [...box.querySelectorAll(".check-row")].map((row) => {
        const get = (key) => row.querySelector(`[data-key=${key}]`);
        const check = { kind: get("kind").value };
        if (get("value")) check.value = get("value").value;
        if (get("min")) { check.min = get("min").value === "" ? null : Number(get("min").value); check.max = get("max").value === "" ? null : Number(get("max").value); }
        return check;
      });
      return { name: box.querySelector("[data-key=name]").value.trim(), inputs, checks };
    });
  }

  function collectContent() {
    const params = {};
    if ($("f-temperature").value !== "") params.temperature = Number($("f-temperature").value);
    if ($("f-max-tokens").value !== "") params.max_tokens = Number($("f-max-tokens").value);
    return {
      engine: form.querySelector("input[name=engine]:checked").value,
      system_prompt: $("f-system").value, user_prompt: $("f-user").value,
      variables: collectInputs(), model: $("f-model").value, params,
      use_notes: $("f-use-notes").checked, notes_count: version.notes_count || 5,
      starters: $("f-starters").value.split("\n").map((s) => s.trim()).filter(Boolean),
      tests: collectTests(),
    };
  }

  // --- variable helper ----------------------------------------------------------------------
  function variables() {
    const select = $("f-variable");
    const current = select.value;
    const inputs = collectInputs().filter((s) => s.name).map((s) => ({ name: "input." + s.name, help: fmt(gettext("The student's answer to “%(label)s”."), { label: s.label || s.name }) }));
    const all = [...inputs, ...data.builtins, { name: "launch.custom.week", help: gettext("A custom parameter of the LMS activity (here: week).") }];
    select.replaceChildren(...all.map((v) => el("option", { value: v.name, text: v.name, "data-help": v.help })));
    if (all.some((v) => v.name === current)) select.value = current;
    $("variable-help").textContent = select.selectedOptions[0] ? select.selectedOptions[0].dataset.help : "";
  }

  function insertVariable() {
    const text = "{{ " + $("f-variable").value + " }}";
    const area = lastPrompt;
    const start = area.selectionStart, end = area.selectionEnd;
    area.setRangeText(text, start, end, "end");
    area.focus();
    changed();
  }

  // --- live preview -------------------------------------------------------------------------
  let previewTimer = null, previewSeq = 0;
  function previewInputs() {
    const holder = $("preview-inputs");
    const values = {};
    for (const input of holder.querySelectorAll("input")) values[input.dataset.name] = input.value;
    holder.replaceChildren(...collectInputs().filter((s) => s.name).map((spec) => {
      const input = el("input", { value: values[spec.name] ?? (spec.default ?? ""), "data-name": spec.name });
      input.addEventListener("input", changed);
      return field(fmt(gettext("Sample answer for “%(name)s”"), { name: spec.label || spec.name }), input);
    }));
  }

  function sampleInputs() {
    const specs = collectInputs();
    const inputs = {};
    for (const input of $("preview-inputs").querySelectorAll("input")) {
      const spec = specs.find((s) => s.name === input.dataset.name);
      const value = spec ? typed(spec, input.value) : undefined;
      if (value !== undefined) inputs[input.dataset.name] = value;
    }
    return inputs;
  }

  function changed() {
    variables();
    previewInputs();
    document.querySelectorAll(".test-row").forEach(testInputs);
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 400);
  }

  function showProblems(problems) {
    const lists = ["system_prompt", "user_prompt", "variables", "tests", "other"];
    const byList = Object.fromEntries(lists.map((name) => [name, []]));
    for (const p of problems) {
      const key = p.field.startsWith("variables") ? "variables" : p.field.startsWith("tests") ? "tests" : lists.includes(p.field) ? p.field : "other";
      byList[key].push(p);
    }
    for (const name of lists) {
      $("problems-" + name).replaceChildren(...byList[name].map((p) => {
        const where = p.line ? fmt(gettext("line %(line)s"), { line: p.line }) + (p.column ? ", " + fmt(gettext("column %(column)s"), { column: p.column }) : "") : p.field;
        const item = el("li", {});
        if (p.line && (name === "system_prompt" || name === "user_prompt")) {
          item.append(el("button", { type: "button", class: "link", text: where, onclick: () => goTo(name, p.line, p.column || 1) }), ": " + p.message);
        } else item.textContent = (where ? where + ": " : "") + p.message;
        return item;
      }));
    }
    const area = { system_prompt: $("f-system"), user_prompt: $("f-user") };
    for (const [name, node] of Object.entries(area)) node.setAttribute("aria-invalid", byList[name].length ? "true" : "false");
  }

  function goTo(name, line, column) {
    const area = name === "system_prompt" ? $("f-system") : $("f-user");
    const lines = area.value.split("\n");
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    offset += column - 1;
    area.focus();
    area.setSelectionRange(offset, offset);
  }

  async function preview() {
    const seq = ++previewSeq;
    $("preview-status").textContent = gettext("Updating the preview…");
    try {
      const answer = await api("POST", `/api/prompts/courses/${data.course_id}/preview/`, { content: collectContent(), inputs: sampleInputs() }, csrf);
      if (seq !== previewSeq) return;
      showProblems(answer.problems);
      $("preview-system").textContent = answer.system ?? "";
      $("preview-user").textContent = answer.user ?? "";
      $("preview-status").textContent = answer.problems.length
        ? fmt(gettext("%(n)s problem(s) to fix before saving."), { n: answer.problems.length })
        : gettext("No problems found.");
    } catch (err) {
      if (seq === previewSeq) $("preview-status").textContent = errorMessage(err.status, err.error);
    }
  }

  // --- saving -------------------------------------------------------------------------------
  async function save(event) {
    event.preventDefault();
    const status = $("save-status");
    status.textContent = gettext("Saving…");
    const meta = { name: $("f-name").value.trim(), description: $("f-description").value, audience: $("f-audience").value };
    if (!meta.name) { status.textContent = gettext("Give the template a name."); $("f-name").focus(); return; }
    try {
      if (!data.template) {
        const created = await api("POST", `/api/prompts/courses/${data.course_id}/templates/`, { ...meta, note: $("f-note").value, content: collectContent() }, csrf);
        window.location.assign(`/prompts/${created.id}/edit/`);
        return;
      }
      await api("PATCH", `/api/prompts/templates/${data.template.id}/`, meta, csrf);
      await api("POST", `/api/prompts/templates/${data.template.id}/versions/`, { ...collectContent(), note: $("f-note").value }, csrf);
      window.location.reload();
    } catch (err) {
      if (err.error && err.error.problems) showProblems(err.error.problems);
      status.textContent = errorMessage(err.status, err.error);
    }
  }

  // --- try-out (streamed) -------------------------------------------------------------------
  let controller = null;
  async function tryIt() {
    if (!data.template || !data.versions.length) { $("try-answer").textContent = gettext("Save the template first."); return; }
    const answer = $("try-answer");
    controller = new AbortController();
    $("try-stop").hidden = false; $("try").disabled = true;
    $("try-stop").focus();
    answer.setAttribute("aria-busy", "true");
    answer.classList.add("streaming");
    answer.textContent = "…";
    const url = `/api/prompts/templates/${data.template.id}/versions/${data.versions[0].id}/try/`;
    try {
      await streamAnswer(url, { inputs: sampleInputs() }, csrf, {
        onText: (text) => { answer.textContent = text; },
        onHtml: (html) => { answer.innerHTML = html; }, // sanitized by the server (nh3)
      }, controller.signal);
    } catch (err) {
      if (err.name === "AbortError") answer.append(" " + gettext("[stopped]"));
      else answer.textContent = errorMessage(err.status, err.error);
    } finally {
      controller = null;
      answer.setAttribute("aria-busy", "false");
      answer.classList.remove("streaming");
      $("try-stop").hidden = true; $("try").disabled = false;
      $("try-heading").focus();
    }
  }

  // --- tests --------------------------------------------------------------------------------
  function showRun(run) {
    const done = run.status === "passed" || run.status === "failed" || run.status === "error";
    $("tests-progress").hidden = done;
    $("tests-bar").max = run.total || 1; $("tests-bar").value = run.done;
    $("tests-count").textContent = fmt(gettext("%(done)s of %(total)s"), run);
    const verdict = { queued: gettext("queued"), running: gettext("running"), passed: gettext("all passed"), failed: gettext("some failed"), error: gettext("could not run") }[run.status];
    $("tests-summary").textContent = fmt(gettext("Last test run of version %(n)s: %(verdict)s (%(passed)s of %(total)s passed)."), { n: run.version_number, verdict, passed: run.passed, total: run.total });
    $("tests-summary").className = "small verdict-" + run.status;
    $("tests-results").replaceChildren(...run.results.map((r) => el("li", { class: r.passed ? "pass" : "fail" },
      el("strong", { text: (r.passed ? "✓ " : "✗ ") + r.case_name + " — " + (r.passed ? gettext("passed") : gettext("failed")) }),
      el("ul", {}, ...r.checks.map((c) => el("li", { text: (c.passed ? "✓ " : "✗ ") + (KIND_LABELS[c.kind] || c.kind) + ": " + c.detail }))),
      r.error ? el("p", { class: "error-text", text: r.error }) : null,
      r.answer ? el("details", {}, el("summary", { text: gettext("Answer") }), el("pre", { class: "prompt-box", text: r.answer })) : null)));
    return done;
  }

  async function follow(runId) {
    for (;;) {
      const run = await api("GET", `/api/prompts/test-runs/${runId}/`, undefined, csrf);
      if (showRun(run)) return;
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  }

  async function runTests() {
    if (!data.template) return;
    $("run-tests").disabled = true;
    try {
      const run = await api("POST", `/api/prompts/templates/${data.template.id}/test-runs/`, { version_id: data.versions[0].id }, csrf);
      showRun(run);
      await follow(run.id);
    } catch (err) {
      $("tests-summary").textContent = errorMessage(err.status, err.error);
    } finally {
      $("run-tests").disabled = false;
    }
  }

  // --- versions, publishing, diff ------------------------------------------------------------
  function versionRows() {
    $("versions").tBodies[0].replaceChildren(...data.versions.map((v) => {
      const published = v.id === data.published_version_id;
      const box = el("input", { type: "checkbox", value: v.id, "aria-label": fmt(gettext("Compare version %(n)s"), { n: v.number }) });
      const action = published
        ? el("span", { class: "badge state-published", text: gettext("published") })
        : el("button", { type: "button", class: "small", text: data.published_version_id && v.number < (data.versions.find((x) => x.id === data.published_version_id) || {}).number ? fmt(gettext("Roll back to version %(n)s"), { n: v.number }) : fmt(gettext("Publish version %(n)s"), { n: v.number }), onclick: () => publish(v) });
      return el("tr", {}, el("td", {}, box), el("th", { scope: "row", text: "v" + v.number }),
        el("td", {}, el("span", { text: v.note }), el("br"), el("small", { class: "muted", text: (v.author || "") + " · " + new Date(v.created_at).toLocaleString() })), el("td", {}, action));
    }));
    $("unpublish").hidden = !data.published_version_id;
  }

  async function publish(v) {
    try {
      const template = await api("POST", `/api/prompts/templates/${data.template.id}/publish/`, { version_id: v.id }, csrf);
      data.published_version_id = v.id;
      data.template = template;
      $("publish-status").textContent = fmt(gettext("Version %(n)s is now what students run."), { n: v.number });
    } catch (err) {
      $("publish-status").textContent = errorMessage(err.status, err.error);
    }
    versionRows(); stateLine();
  }

  async function unpublish() {
    try {
      await api("POST", `/api/prompts/templates/${data.template.id}/unpublish/`, {}, csrf);
      data.published_version_id = null;
      $("publish-status").textContent = gettext("Unpublished: students no longer see this template.");
    } catch (err) {
      $("publish-status").textContent = errorMessage(err.status, err.error);
    }
    versionRows(); stateLine(); $("versions-heading").focus();
  }

  async function compare() {
    const ticked = [...document.querySelectorAll("#versions input:checked")].map((b) => Number(b.value));
    if (ticked.length !== 2) { $("publish-status").textContent = gettext("Tick exactly two versions to compare."); return; }
    const [right, left] = ticked; // rows are newest first
    const diff = await api("GET", `/api/prompts/templates/${data.template.id}/diff/?left=${left}&right=${right}`, undefined, csrf);
    const number = (vid) => data.versions.find((v) => v.id === vid).number;
    $("diff-heading").textContent = fmt(gettext("Version %(a)s compared with version %(b)s"), { a: number(left), b: number(right) });
    const parts = [];
    for (const [name, rows] of Object.entries(diff.texts)) {
      parts.push(el("h4", { text: name === "system_prompt" ? gettext("System prompt") : gettext("User prompt") }));
      parts.push(el("table", { class: "diff" }, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "v" + number(left) }), el("th", { scope: "col", text: "v" + number(right) }))),
        el("tbody", {}, ...rows.map((r) => el("tr", { class: "diff-" + r.change },
          el("td", { text: r.left, "data-change": r.change === "added" ? "" : r.change }), el("td", { text: r.right, "data-change": r.change === "removed" ? "" : r.change }))))));
    }
    const values = Object.entries(diff.values);
    if (values.length) parts.push(el("h4", { text: gettext("Settings") }), el("ul", {}, ...values.map(([name, pair]) => el("li", { text: name + ": " + JSON.stringify(pair.left) + " → " + JSON.stringify(pair.right) }))));
    $("diff-body").replaceChildren(...parts);
    $("diff").hidden = false;
    $("diff-heading").focus();
  }

  // --- wiring -------------------------------------------------------------------------------
  fill();
  variables(); previewInputs(); preview();
  versionRows();
  if (!data.template) { $("try").disabled = true; $("run-tests").disabled = true; $("compare").hidden = true; }
  if (data.latest_test_run) follow(data.latest_test_run).catch(() => {});
  else $("tests-summary").textContent = gettext("No test run for the newest version yet.");
  form.addEventListener("input", (event) => { if (!event.target.closest("#preview-inputs")) changed(); });
  form.addEventListener("submit", save);
  $("f-system").addEventListener("focus", () => { lastPrompt = $("f-system"); });
  $("f-user").addEventListener("focus", () => { lastPrompt = $("f-user"); });
  $("f-variable").addEventListener("change", variables);
  $("insert-variable").addEventListener("click", insertVariable);
  $("add-input").addEventListener("click", () => { addInput(); changed(); });
  $("add-test").addEventListener("click", () => addTest());
  $("try").addEventListener("click", tryIt);
  $("try-stop").addEventListener("click", () => controller && controller.abort());
  $("run-tests").addEventListener("click", runTests);
  $("compare").addEventListener("click", () => compare().catch((err) => { $("publish-status").textContent = errorMessage(err.status, err.error); }));
  $("unpublish").addEventListener("click", unpublish);
})();
