// Lecture-note citations under an answer, shared by the course assistant and the prompt run
// page (each loads this plain script before its own): the numbered source list and the [n]
// markers in the answer turned into links to the quoted passage. Everything is built as DOM
// nodes and text; no markup from the model, the notes or the server is parsed here.
// The page passes its translated words: { sources: "Sources from the lecture notes",
// page: "page %(page)s" }.
(function () {
  "use strict";

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  function link(url, text, attrs) {
    const node = document.createElement("a");
    node.href = url; node.target = "_blank"; node.rel = "noopener";
    node.textContent = text;
    if (attrs && attrs.className) node.className = attrs.className;
    if (attrs && attrs.title) node.title = attrs.title;
    return node;
  }

  // The numbered sources: document (a link to the quoted passage), where in it, the quote.
  function sourceList(citations, words) {
    const box = document.createElement("div");
    box.className = "sources";
    const title = document.createElement("p");
    title.className = "muted small"; title.textContent = words.sources;
    const list = document.createElement("ol");
    for (const c of citations) {
      const item = document.createElement("li");
      item.value = c.number;
      const where = [c.heading, c.page ? fill(words.page, { page: c.page }) : ""].filter(Boolean).join(" · ");
      const detail = document.createElement("span");
      detail.className = "muted small"; detail.textContent = where ? " — " + where : "";
      const quote = document.createElement("q");
      quote.className = "small"; quote.textContent = c.quote;
      item.append(link(c.url, c.document), detail, document.createElement("br"), quote);
      list.appendChild(item);
    }
    box.append(title, list);
    return box;
  }

  // Each [n] in the shown answer that names a citation becomes a link to its passage. Works
  // on the text nodes of the server-rendered (sanitized) HTML; code, pre and links are left alone.
  function linkCitations(target, citations) {
    const byNumber = new Map(citations.map((c) => [String(c.number), c]));
    const walker = document.createTreeWalker(target, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) if (/\[\d+\]/.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
    for (const node of nodes) {
      if (node.parentElement && node.parentElement.closest("code, pre, a")) continue;
      node.replaceWith(...node.nodeValue.split(/(\[\d+\])/).map((part) => {
        const match = /^\[(\d+)\]$/.exec(part);
        const c = match && byNumber.get(match[1]);
        if (!c) return document.createTextNode(part);
        return link(c.url, part, { className: "cite", title: c.document });
      }));
    }
  }

  window.CAIPICitations = { sourceList, linkCitations };
})();
