// The chat page: POST the question, read the Server-Sent Events stream (fetch + ReadableStream,
// since EventSource cannot POST), render deltas, stop, regenerate, copy, feedback.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root) { return; }
  var form = document.getElementById("ask-form");
  var turns = document.getElementById("turns");
  var sendButton = document.getElementById("send");
  var stopButton = document.getElementById("stop");
  var statusLine = document.getElementById("ask-status");
  var csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var current = null; // {controller, messageId}
  var t = function (key) { return root.getAttribute("data-i18n-" + key) || key; };

  function urlFor(template, id) { return root.getAttribute(template).replace(/\/0\//, "/" + id + "/"); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function setBusy(busy) {
    if (sendButton) { sendButton.disabled = busy; }
    if (stopButton) { stopButton.hidden = !busy; }
  }

  function newAnswerNode() {
    var article = el("article", "turn assistant status-streaming");
    var meta = el("div", "turn-meta");
    var reasoning = el("details", "reasoning");
    reasoning.hidden = true;
    reasoning.appendChild(el("summary", "", t("reasoning")));
    var reasoningText = el("div", "reasoning-text");
    reasoning.appendChild(reasoningText);
    var body = el("div", "answer-body streaming");
    article.appendChild(meta);
    article.appendChild(reasoning);
    article.appendChild(body);
    turns.appendChild(article);
    return {article: article, meta: meta, reasoning: reasoning, reasoningText: reasoningText, body: body, raw: ""};
  }

  function renderSources(node, citations) {
    if (!citations || !citations.length) { return; }
    var aside = el("aside", "sources-panel");
    aside.appendChild(el("h4", "", t("sources")));
    var list = el("ol", "sources-list");
    citations.forEach(function (c) {
      var li = el("li");
      li.value = c.n;
      var a = el("a", "source-link", c.title);
      a.href = c.url;
      li.appendChild(a);
      var extra = " · " + t("version") + " " + c.version_number;
      if (c.heading_path && c.heading_path.length) { extra += " · " + c.heading_path.join(" › "); }
      li.appendChild(el("span", "muted", extra));
      if (!c.supported) { li.appendChild(el("span", "badge danger", t("unsupported"))); }
      list.appendChild(li);
    });
    aside.appendChild(list);
    node.article.appendChild(aside);
  }

  function addActions(node, messageId) {
    var actions = el("div", "answer-actions");
    var copy = el("button", "link copy-answer", root.getAttribute("data-i18n-copy") || "Copy");
    copy.type = "button";
    actions.appendChild(copy);
    var regen = el("button", "link regenerate", root.getAttribute("data-i18n-regenerate") || "Regenerate");
    regen.type = "button";
    regen.setAttribute("data-url", urlFor("data-regenerate-url-template", messageId));
    actions.appendChild(regen);
    [["1", "👍"], ["-1", "👎"]].forEach(function (pair) {
      var b = el("button", "link rate", pair[1]);
      b.type = "button";
      b.setAttribute("data-rating", pair[0]);
      actions.appendChild(b);
    });
    node.article.appendChild(actions);
    var fb = el("form", "feedback-form form");
    fb.hidden = true;
    fb.setAttribute("data-url", urlFor("data-feedback-url-template", messageId));
    var label = el("label", "field", root.getAttribute("data-i18n-correction") || "Corrected answer (optional)");
    var area = el("textarea");
    area.name = "correction";
    area.rows = 3;
    label.appendChild(area);
    fb.appendChild(label);
    var submit = el("button", "primary", root.getAttribute("data-i18n-send-feedback") || "Send feedback");
    submit.type = "submit";
    fb.appendChild(submit);
    var st = el("span", "feedback-status help");
    st.setAttribute("role", "status");
    fb.appendChild(st);
    node.article.appendChild(fb);
  }

  function handle(node, type, data) {
    if (type === "start") {
      node.messageId = data.message_id;
      node.article.setAttribute("data-message", data.message_id);
      if (current) { current.messageId = data.message_id; }
      if (data.conversation_url && window.history && window.location.search.indexOf("c=") < 0) {
        window.history.replaceState(null, "", data.conversation_url);
        if (form && !form.querySelector("input[name=conversation]")) {
          var hidden = el("input");
          hidden.type = "hidden";
          hidden.name = "conversation";
          hidden.value = data.conversation_id;
          form.appendChild(hidden);
        }
      }
    } else if (type === "sources") {
      if (statusLine) { statusLine.textContent = ""; }
    } else if (type === "reasoning") {
      node.reasoning.hidden = false;
      node.reasoningText.textContent += data.text;
    } else if (type === "answer") {
      node.raw += data.text;
      node.body.textContent = node.raw;
    } else if (type === "done") {
      node.done = true;
      node.article.className = "turn assistant status-" + data.status;
      node.body.className = "answer-body";
      node.body.innerHTML = data.html; // sanitized on the server (nh3), citation links added there
      if (data.extractive) { node.meta.appendChild(el("span", "badge extractive-label", t("extractive"))); }
      if (data.status === "stopped") { node.meta.appendChild(el("span", "badge status-badge", t("stopped"))); }
      renderSources(node, data.citations);
      if (data.timings && root.getAttribute("data-show-timings") === "1") {
        var parts = Object.keys(data.timings).map(function (k) { return k + " " + data.timings[k]; });
        node.article.appendChild(el("p", "timings help", "ms: " + parts.join(" · ")));
      }
      addActions(node, data.message_id);
    } else if (type === "error") {
      node.done = true;
      node.article.className = "turn assistant status-failed";
      node.body.className = "answer-body";
      node.article.appendChild(el("p", "errors", data.message));
      if (data.message_id) { addActions(node, data.message_id); }
    }
  }

  function parseBlock(block) {
    var type = "message", data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) { type = line.slice(6).trim(); }
      else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
    });
    return {type: type, data: data ? JSON.parse(data) : {}};
  }

  function stream(url, body) {
    var node = newAnswerNode();
    var controller = new AbortController();
    current = {controller: controller, messageId: null};
    setBusy(true);
    if (statusLine) { statusLine.textContent = t("retrieved"); }
    node.article.scrollIntoView({block: "end"});
    fetch(url, {method: "POST", body: body, headers: {"X-CSRFToken": csrf, "Accept": "text/event-stream"},
                signal: controller.signal, credentials: "same-origin"})
      .then(function (response) {
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (result) {
            if (result.done) { return; }
            buffer += decoder.decode(result.value, {stream: true});
            var index;
            while ((index = buffer.indexOf("\n\n")) >= 0) {
              var block = buffer.slice(0, index);
              buffer = buffer.slice(index + 2);
              if (block.trim() && block.charAt(0) !== ":") {
                var event = parseBlock(block);
                handle(node, event.type, event.data);
              }
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") {
          node.article.className = "turn assistant status-stopped";
          node.meta.appendChild(el("span", "badge status-badge", t("stopped")));
          if (node.messageId) { addActions(node, node.messageId); }
        } else if (!node.done) {
          node.article.appendChild(el("p", "errors", t("network")));
        }
      })
      .then(function () {
        current = null;
        setBusy(false);
        if (statusLine) { statusLine.textContent = ""; }
      });
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var question = form.question.value.trim();
      if (!question || current) { return; }
      var hint = turns.querySelector(".empty-hint");
      if (hint) { hint.remove(); }
      var user = el("article", "turn user");
      user.appendChild(el("div", "user-text", question));
      turns.appendChild(user);
      var body = new FormData(form);
      form.question.value = "";
      stream(root.getAttribute("data-ask-url"), body);
    });
    form.question.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  }

  if (stopButton) {
    stopButton.addEventListener("click", function () {
      if (!current) { return; }
      var id = current.messageId;
      var controller = current.controller;
      if (id) {
        var body = new FormData();
        fetch(urlFor("data-stop-url-template", id), {method: "POST", body: body, headers: {"X-CSRFToken": csrf},
                                                     credentials: "same-origin"})
          .finally(function () { controller.abort(); });
      } else {
        controller.abort();
      }
    });
  }

  turns.addEventListener("click", function (event) {
    var target = event.target;
    var article = target.closest ? target.closest("article.turn.assistant") : null;
    if (!article) { return; }
    if (target.matches(".copy-answer")) {
      var text = article.querySelector(".answer-body").innerText;
      if (navigator.clipboard) { navigator.clipboard.writeText(text).catch(function () {}); }
      target.textContent = t("copied");
    } else if (target.matches(".regenerate")) {
      if (current) { return; }
      var body = new FormData();
      var select = document.getElementById("assistant-select");
      if (select) { body.append("assistant", select.value); }
      stream(target.getAttribute("data-url"), body);
    } else if (target.matches(".rate")) {
      var formNode = article.querySelector(".feedback-form");
      article.querySelectorAll(".rate").forEach(function (b) { b.classList.remove("chosen"); });
      target.classList.add("chosen");
      formNode.setAttribute("data-rating", target.getAttribute("data-rating"));
      formNode.hidden = false;
      if (target.getAttribute("data-rating") === "1") { send(formNode); }
    }
  });

  function send(formNode) {
    var body = new FormData(formNode);
    body.append("rating", formNode.getAttribute("data-rating"));
    fetch(formNode.getAttribute("data-url"), {method: "POST", body: body, headers: {"X-CSRFToken": csrf},
                                              credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        formNode.querySelector(".feedback-status").textContent = data.message || data.error || "";
      });
  }

  turns.addEventListener("submit", function (event) {
    if (event.target.matches(".feedback-form")) {
      event.preventDefault();
      send(event.target);
    }
  });
})();
